"""Paging of list endpoints: ``limit`` and a leaf-index cursor ``after``, the next page by Link.

A list is in log order, so its cursor is the leaf index of the last item served: the next page
is ``leaf_index > after``, read from an index that ends with ``leaf_index`` (``records``). The
response body stays the plain list (or FHIR Bundle) it always was; when there may be more, a
``Link: <url>; rel="next"`` header (RFC 8288) gives the URL of the next page, which is the
request's own URL with ``after`` set. The last page has no such link.

Every such URL starts with the configured ``public_url``, never with the request's ``Host``
header, which any client may set to send the next reader elsewhere (``public_url_of``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Final, TypeVar

from fastapi import Query, Request, Response

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
MAX_CURSOR: Final = 2**63 - 1
"""Leaf indices are 64-bit signed integers in the database."""

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
]
After = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_CURSOR,
        description="Cursor: the leaf index of the last item of the previous page (the "
        'Link rel="next" URL carries it).',
    ),
]

LINK_HEADER: Final[dict[str, Any]] = {
    "Link": {
        "description": 'RFC 8288 `<url>; rel="next"`: the next page, if there may be one.',
        "schema": {"type": "string"},
    }
}

T = TypeVar("T")


def paged_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a paged list: its 200 with the Link header (FastAPI documents
    the 422 of a bad ``limit`` or ``after`` itself)."""
    return {200: {"description": description, "headers": LINK_HEADER}}


def public_base(request: Request) -> str:
    """The service's public base URL, ending with a slash (never taken from ``Host``)."""
    base: str = request.app.state.settings.public_url
    return base.rstrip("/") + "/"


def public_url_of(request: Request, **params: int) -> str:
    """The request's path and query (``params`` set) under the service's public base URL."""
    base: str = request.app.state.settings.public_url
    url = request.url.include_query_params(**params) if params else request.url
    query = f"?{url.query}" if url.query else ""
    return f"{base.rstrip('/')}{url.path}{query}"


def next_url(request: Request, after: int) -> str:
    """The request's URL with the cursor moved to ``after`` (its other parameters kept)."""
    return public_url_of(request, after=after)


def split_page(items: Sequence[T], limit: int) -> tuple[Sequence[T], bool]:
    """The first ``limit`` of ``items`` (read as ``limit + 1``), and whether there are more."""
    return items[:limit], len(items) > limit


def link_next(request: Request, response: Response, last_leaf_index: int | None) -> None:
    """Say where the next page starts, if there is one (``last_leaf_index`` not None)."""
    if last_leaf_index is not None:
        response.headers["Link"] = f'<{next_url(request, last_leaf_index)}>; rel="next"'
