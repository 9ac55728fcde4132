"""A small HTTP client for the service's public log endpoints (``/v1/log/...``).

It decodes what the service sends and checks only the shape of it; whether any of it is true
is for ``auditor.integrity`` to decide. Leaves are paged by the auditor's own cursor, never by
following the ``next`` URL a page offers: a link from the party under audit could lead anywhere.
Non-2xx answers raise ``ApiStatusError``, bodies that are not what the endpoint documents raise
``MalformedResponseError``, and transport failures ``ApiUnreachableError``.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import orjson

from hashing.checkpoint import decode_base64_strict

from .errors import ApiStatusError, ApiUnreachableError, MalformedResponseError

DEFAULT_TIMEOUT_S = 30.0
ANCHORS_PAGE = 100


@dataclass(frozen=True, slots=True)
class ServedLeaf:
    leaf_index: int
    leaf_data: bytes


@dataclass(frozen=True, slots=True)
class AnchorClaim:
    """One entry of ``/v1/log/anchors``: what the service says it anchored (a hint only)."""

    tree_size: int
    checkpoint: str
    anchor: dict[str, Any]


class LogClient:
    """Reads one service's log endpoints; counts requests and leaves fetched."""

    def __init__(
        self,
        api_url: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.base_url = api_url.rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self.requests = 0
        self.leaves_fetched = 0

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> LogClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- endpoints ------------------------------------------------------------------------------

    def key(self) -> str:
        """The verifier key (C2SP vkey text) the service says signs its checkpoints."""
        return self._get("/v1/log/key").text.strip()

    def latest_checkpoint(self) -> str | None:
        """The latest signed checkpoint note, or None when the service has sealed none (404)."""
        return self._note("/v1/log/checkpoint")

    def checkpoint(self, tree_size: int) -> str | None:
        """The signed checkpoint note of exactly ``tree_size``, or None when there is none (404)."""
        return self._note(f"/v1/log/checkpoints/{tree_size}")

    def leaves(self, start: int, end: int) -> Iterator[ServedLeaf]:
        """Leaves ``start <= leaf_index < end`` as served, page by page, in increasing order.

        Stops early when the service has no more. A gap in the indices is passed on (it is
        evidence about the log); indices that go backwards or out of the range are malformed.
        Each page is checked whole before its first leaf is passed on.
        """
        # Measured: fetching the next page in a thread while the caller works did not pay, on
        # two cores (the thread waits for the GIL after every read of the socket).
        for page in self._pages(start, end):
            self.leaves_fetched += len(page)
            yield from page

    def _pages(self, start: int, end: int) -> Iterator[list[ServedLeaf]]:
        position = start
        while position < end:
            url, page = self._json("/v1/log/leaves", {"start": position, "end": end}, fast=True)
            items = _member(url, page, "leaves", list)
            if not items:
                return
            leaves = _page_of_leaves(url, items, position - 1, start, end)
            yield leaves
            position = leaves[-1].leaf_index + 1

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """The sibling hashes the service offers for ``leaf_index`` in the tree of ``tree_size``."""
        params = {"leaf_index": leaf_index, "tree_size": tree_size}
        url, body = self._json("/v1/log/proof/inclusion", params)
        _echo(url, body, params)
        return _hashes(url, _member(url, body, "proof", list))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The hashes the service offers to prove the tree of ``size2`` extends ``size1``."""
        params = {"size1": size1, "size2": size2}
        url, body = self._json("/v1/log/proof/consistency", params)
        _echo(url, body, params)
        return _hashes(url, _member(url, body, "proof", list))

    def anchors(self, after: int = -1) -> Iterator[AnchorClaim]:
        """Every anchor the service lists with a tree size above ``after``, oldest first."""
        while True:
            url, body = self._json("/v1/log/anchors", {"after": after, "limit": ANCHORS_PAGE})
            if not isinstance(body, list):
                raise MalformedResponseError(url, "the body is not a JSON list")
            for item in body:
                claim = _claim(url, item)
                if claim.tree_size <= after:
                    raise MalformedResponseError(
                        url, f"anchor of size {claim.tree_size} listed after size {after}"
                    )
                after = claim.tree_size
                yield claim
            if len(body) < ANCHORS_PAGE:
                return

    # -- plumbing -------------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, int] | None = None) -> httpx.Response:
        url = self.base_url + path
        try:
            response = self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise ApiUnreachableError(url, f"{type(exc).__name__}: {exc}") from exc
        self.requests += 1
        if not response.is_success:
            raise ApiStatusError(str(response.url), response.status_code, _detail(response))
        return response

    def _note(self, path: str) -> str | None:
        try:
            return self._get(path).text
        except ApiStatusError as exc:
            if exc.status == 404:
                return None
            raise

    def _json(self, path: str, params: dict[str, int], *, fast: bool = False) -> tuple[str, Any]:
        response = self._get(path, params)
        try:
            # orjson for the bulk of an audit, the leaf pages: it rejects a little more than
            # the json module (numbers beyond 64 bits), which no leaf page holds.
            return str(response.url), orjson.loads(response.content) if fast else response.json()
        except ValueError as exc:  # orjson.JSONDecodeError is one
            raise MalformedResponseError(str(response.url), "the body is not JSON") from exc


def _detail(response: httpx.Response) -> str:
    """The ``detail`` of an RFC 9457 problem body, else the start of the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])[:200]
    return response.text[:200]


def _member(url: str, body: Any, name: str, kind: type) -> Any:
    if not isinstance(body, dict):
        raise MalformedResponseError(url, "the body is not a JSON object")
    value = body.get(name)
    # bool is an int in Python, never in these documents.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedResponseError(url, f"{name!r} is missing or not a {kind.__name__}")
    return value


def _echo(url: str, body: Any, params: dict[str, int]) -> None:
    for name, wanted in params.items():
        got = _member(url, body, name, int)
        if got != wanted:
            raise MalformedResponseError(url, f"{name} is {got}, the request asked for {wanted}")


def _base64(url: str, what: str, text: Any) -> bytes:
    if not isinstance(text, str):
        raise MalformedResponseError(url, f"{what} is not a string")
    try:
        return decode_base64_strict(text)
    except ValueError as exc:  # binascii.Error is one
        raise MalformedResponseError(url, f"{what} is not canonical base64") from exc


def _hashes(url: str, items: list[Any]) -> list[bytes]:
    return [_base64(url, f"proof[{n}]", item) for n, item in enumerate(items)]


def _page_of_leaves(
    url: str, items: list[Any], last: int, start: int, end: int
) -> list[ServedLeaf]:
    """The leaves of one page, checked: increasing indices within ``[start, end)`` after
    ``last``, leaf data in canonical base64."""
    leaves = []
    a2b, b2a = binascii.a2b_base64, binascii.b2a_base64
    for item in items:
        # The common case inline (about 4x faster than ``_leaf``): an object with an int index
        # and a string that is the canonical base64 of what it decodes to. Anything else goes
        # through ``_leaf``, which names what is wrong.
        try:
            index, text = item["leaf_index"], item["leaf_data"]
            if type(index) is not int or type(text) is not str:
                raise TypeError
            data = a2b(text)
            if b2a(data, newline=False) != text.encode("ascii"):
                raise ValueError
            leaf = ServedLeaf(index, data)
        except (KeyError, TypeError, ValueError):
            leaf = _leaf(url, item)
        if not last < leaf.leaf_index < end:
            raise MalformedResponseError(
                url, f"leaf_index {leaf.leaf_index} after {last} in a page for [{start}, {end})"
            )
        last = leaf.leaf_index
        leaves.append(leaf)
    return leaves


def _leaf(url: str, item: Any) -> ServedLeaf:
    index = _member(url, item, "leaf_index", int)
    return ServedLeaf(index, _base64(url, f"leaf_data of leaf {index}", item.get("leaf_data")))


def _claim(url: str, item: Any) -> AnchorClaim:
    return AnchorClaim(
        tree_size=_member(url, item, "tree_size", int),
        checkpoint=_member(url, item, "checkpoint", str),
        anchor=_member(url, item, "anchor", dict),
    )
