"""RFC 9162 section 2.1 hash functions: SHA-256 with 0x00 / 0x01 domain separation."""

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

#: MTH({}) = SHA-256(""), the root of the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return MTH({d}) = SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), the hash of an interior node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def check_hash_lengths(hashes: Sequence[bytes], name: str, error: type[Exception]) -> None:
    """Raise ``error`` naming the first of ``hashes`` that is not HASH_SIZE bytes long."""
    # Collecting the lengths runs in C; the Python-level walk only happens on bad input.
    if not set(map(len, hashes)) - {HASH_SIZE}:
        return
    bad = next(i for i, value in enumerate(hashes) if len(value) != HASH_SIZE)
    raise error(f"{name}[{bad}] has {len(hashes[bad])} bytes, want {HASH_SIZE}")
