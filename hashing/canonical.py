"""Canonical JSON bytes (RFC 8785 JCS) for anything that gets hashed into the log.

Events are almost always plain: string keys in ASCII, strings, small integers, lists, objects.
For those, orjson with sorted keys writes exactly the RFC 8785 bytes (same key order, same
string escapes, integers as-is) about 50 times faster than the pure-Python ``rfc8785``; the
tests check the two agree. Anything else (floats, large integers, non-ASCII keys, whose order
RFC 8785 defines by UTF-16 units) goes through ``rfc8785`` itself.
"""

from typing import Any, cast

import orjson
import rfc8785

from hashing.errors import CanonicalEncodingError

_SAFE_INT = 2**53 - 1
# The plain-value check leaves deeper values to rfc8785, so a cyclic value cannot make it loop.
_PLAIN_MAX_DEPTH = 32


def canonical_json(value: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of ``value``.

    Accepts None, bool, int (within +/-(2**53 - 1)), finite float, str, list,
    tuple and dict with str keys. Anything else raises CanonicalEncodingError.
    """
    if _is_plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: rfc8785 below reports it
    try:
        return rfc8785.dumps(cast(Any, value))
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalEncodingError(f"cannot encode as RFC 8785 JSON: {exc}") from exc
    except UnicodeError as exc:
        # rfc8785 sorts keys by their UTF-16 form before checking them, so a
        # lone surrogate in a key surfaces as a codec error.
        raise CanonicalEncodingError(
            f"cannot encode as RFC 8785 JSON: a string is not valid Unicode ({exc})"
        ) from exc
    except RecursionError as exc:
        raise CanonicalEncodingError(
            "cannot encode as RFC 8785 JSON: the value is cyclic or nested too deeply"
        ) from exc


def _is_plain(value: object, depth: int = 0) -> bool:
    """True when ``value`` holds only types whose orjson form is already canonical."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_SAFE_INT <= cast(int, value) <= _SAFE_INT
    if depth > _PLAIN_MAX_DEPTH:
        return False  # also ends the walk of a cyclic value; rfc8785 then reports it
    if kind is dict:
        for key, item in cast(dict[object, object], value).items():
            if type(key) is not str or not key.isascii():
                return False
            if type(item) is not str and not _is_plain(item, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        for item in cast(list[object], value):
            if type(item) is not str and not _is_plain(item, depth + 1):
                return False
        return True
    return False
