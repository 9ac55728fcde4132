"""What may become a leaf: the event kinds the platform logs and their canonical leaf encoding.

A leaf's data is the RFC 8785 canonical JSON of ``{"kind": ..., "data": {...}}``, so the same event
always hashes the same and an auditor can re-derive every leaf hash from what the log serves.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from hashing import CanonicalEncodingError, canonical_json, leaf_hash

from .errors import InvalidEventError

EVENT_KINDS: frozenset[str] = frozenset(
    {
        "consent.granted",
        "consent.narrowed",
        "consent.revoked",
        "access.decided",
        "access.released",
        "access.refused",
        "breakglass.justified",
        "subject.erased",
        "institution.registered",
        "institution.key_rotated",
        "institution.revoked",
    }
)


class EncodedEvent(NamedTuple):
    """An event checked and encoded, ready to be sequenced (a tuple: cheap on the hot path)."""

    kind: str
    leaf_data: bytes
    leaf_hash: bytes


def encode_event(
    kind: object, data: object, *, max_bytes: int, position: int | None = None
) -> EncodedEvent:
    """Check an event and encode it as leaf data; raise InvalidEventError, never write."""
    if not isinstance(kind, str) or kind not in EVENT_KINDS:
        known = ", ".join(sorted(EVENT_KINDS))
        raise InvalidEventError(
            f"unknown event kind {kind!r}; known kinds: {known}", position=position
        )
    if not isinstance(data, dict):
        raise InvalidEventError("event data must be a JSON object", position=position)
    try:
        encoded = canonical_json({"kind": kind, "data": data})
    except CanonicalEncodingError as exc:
        raise InvalidEventError(
            f"event data is not canonical JSON: {exc}", position=position
        ) from exc
    if len(encoded) > max_bytes:
        raise InvalidEventError(
            f"event is {len(encoded)} bytes encoded, more than the limit of {max_bytes}",
            position=position,
        )
    return EncodedEvent(kind, encoded, leaf_hash(encoded))


def parse_event_line(line: str | bytes, *, max_bytes: int, position: int) -> EncodedEvent:
    """Parse one JSON line ``{"kind": ..., "data": {...}}`` as the CLI and bulk loaders take it."""
    if len(line) > 4 * max_bytes:
        raise InvalidEventError(f"line is longer than {4 * max_bytes} bytes", position=position)
    try:
        value: Any = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEventError(f"not JSON: {exc}", position=position) from exc
    if not isinstance(value, dict) or set(value) != {"kind", "data"}:
        raise InvalidEventError(
            'each line must be an object with exactly the keys "kind" and "data"', position=position
        )
    return encode_event(value["kind"], value["data"], max_bytes=max_bytes, position=position)


def decode_leaf(leaf_data: bytes) -> tuple[str, dict[str, Any]]:
    """Read back kind and data from stored leaf data."""
    value = json.loads(leaf_data)
    return value["kind"], value["data"]
