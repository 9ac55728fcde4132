"""Canonical JSON bytes (RFC 8785 JCS) for anything that gets hashed into the log."""

from typing import Any, cast

import rfc8785

from hashing.errors import CanonicalEncodingError


def canonical_json(value: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of ``value``.

    Accepts None, bool, int (within +/-(2**53 - 1)), finite float, str, list,
    tuple and dict with str keys. Anything else raises CanonicalEncodingError.
    """
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
