"""Refuse JSON request bodies that are ambiguous or unsafe before any route reads them (422).

FastAPI reads a JSON body with ``json.loads``, which lets the last of two equal keys win, takes
``NaN`` and ``Infinity``, and keeps lone surrogates and NUL characters in strings (which no
UTF-8 log leaf or PostgreSQL text column can hold). A signed, logged request must mean one
thing only, so ``StrictJson`` reads every body FastAPI would parse as JSON (no content type,
``application/json`` or ``application/*+json``) once more, strictly, and answers a problem
document naming what it refused; a body that is not JSON at all passes on, for the route's
own 422. Nesting is bounded too (``MAX_JSON_DEPTH``), so no body reaches a recursive reader
deep enough to exhaust its stack.

A JSON body must be UTF-8 without a byte order mark (RFC 8259 section 8.1): one with a BOM, one
that is not UTF-8 (UTF-16 or UTF-32, surrogate bytes) and one holding a NUL byte (which JSON
text never holds, and ``json.loads`` on bytes takes as the sign of UTF-16 or UTF-32) is refused
(``not-utf8``) rather than passed on, since the route's reader would detect its encoding and
read it leniently. What passes on is exactly the text judged here.
"""

from __future__ import annotations

import json
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_answer

_TITLE: Final = "The body is not one unambiguous JSON value"

_BOM: Final = b"\xef\xbb\xbf"
MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of arrays and objects in a request body (a deepest consent needs ~30)."""


class JsonRefused(ValueError):
    """The body parses, but not to one unambiguous value every later step can store."""

    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail


def strict_loads(body: bytes) -> object:
    """``body`` as JSON, refusing duplicate keys, non-finite numbers, depth beyond
    ``MAX_JSON_DEPTH``, and strings no UTF-8 store can keep (``JsonRefused``).

    A body not in BOM-less UTF-8 is refused too; one that is UTF-8 but not JSON raises
    ``json.JSONDecodeError``.
    """
    text = _utf8_text(body)
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (JsonRefused, json.JSONDecodeError):
        raise
    except RecursionError as error:
        raise JsonRefused("too-deep", f"the body nests deeper than {MAX_JSON_DEPTH}") from error
    except ValueError as error:  # an integer of more digits than Python converts, say
        raise JsonRefused("bad-json", f"the body cannot be read: {error}") from error
    _check_tree(value)
    return value


def _utf8_text(body: bytes) -> str:
    if body.startswith(_BOM):
        raise JsonRefused("not-utf8", "the body starts with a byte order mark: send UTF-8 without")
    if b"\x00" in body:
        raise JsonRefused("not-utf8", "the body holds a NUL byte: JSON is sent in UTF-8 only")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonRefused(
            "not-utf8", f"the body is not UTF-8 (byte {error.start}): JSON is sent in UTF-8 only"
        ) from error


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, value in pairs:
        if key in found:
            raise JsonRefused("duplicate-key", f'the key "{key}" appears twice in one object')
        found[key] = value
    return found


def _no_constant(name: str) -> object:
    raise JsonRefused("bad-json", f"{name} is not a JSON number")


def _check_tree(value: object) -> None:
    """Depth and strings, walked without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise JsonRefused("too-deep", f"the body nests deeper than {MAX_JSON_DEPTH}")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_string(key)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise JsonRefused("bad-json", "a string holds a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise JsonRefused("bad-json", "a string holds a lone surrogate (not Unicode)") from error


def _is_json(scope: Scope) -> bool:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"content-type":
            media = value.decode("latin-1").split(";", 1)[0].strip().lower()
            kind, _, subtype = media.partition("/")
            return kind == "application" and (subtype == "json" or subtype.endswith("+json"))
    return True  # FastAPI reads a body without a content type as JSON


class StrictJson:
    """ASGI middleware: a JSON body ``strict_loads`` refuses gets 422, before any route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to judge
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            try:
                strict_loads(body)
            except JsonRefused as refused:
                await send_answer(scope, receive, send, 422, refused.slug, _TITLE, refused.detail)
                return
            except json.JSONDecodeError:  # UTF-8, not JSON: the route says so in its own words
                pass
        replayed: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([replayed], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replayed
