"""Strict Ed25519: the checks a verifier makes on keys and signatures it did not make.

OpenSSL (under ``cryptography``) verifies RFC 8032 signatures but accepts a public key of small
order: with the identity point as key (``01 00..00``, or ``00..00``), a signature whose R is
that point and whose S is 0 verifies for every message, with no private key at all. It also
accepts keys and R values in non-canonical encodings. So everything here that verifies a
signature someone else made first passes the key and the signature through these functions:

* a public key (and a signature's R) must be the canonical encoding of a point on the curve
  (y < p, no "negative zero" x) and must not have small order (its 8-multiple is not the
  identity): that refuses all eight small-order points in every encoding;
* a signature's S must be below the group order L (no S + L twin of a valid signature).

Pure integer arithmetic over GF(2^255 - 19); only three point doublings per check, so it costs
far less than the signature verification it guards.
"""

from __future__ import annotations

from typing import Final

from hashing.errors import SignatureError, WeakKeyError

P: Final = 2**255 - 19
"""The field prime."""
L: Final = 2**252 + 27742317777372353535851937790883648493
"""The order of the prime-order subgroup (and the bound on a signature's S)."""
_D: Final = (-121665 * pow(121666, -1, P)) % P
_SQRT_M1: Final = pow(2, (P - 1) // 4, P)
POINT_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64

_Point = tuple[int, int]
_IDENTITY: Final[_Point] = (0, 1)


def point_problem(encoded: bytes) -> str | None:
    """Why ``encoded`` is not a strict Ed25519 point (a public key or a signature's R), or None.

    Refused: a length other than 32, y >= p, x = 0 with the sign bit set, no point with that y,
    and any point of small order (order 1, 2, 4 or 8).
    """
    if len(encoded) != POINT_SIZE:
        return f"a point has 32 bytes, not {len(encoded)}"
    value = int.from_bytes(encoded, "little")
    sign, y = value >> 255, value & ((1 << 255) - 1)
    if y >= P:
        return "the point's y is not reduced modulo p (a non-canonical encoding)"
    x = _recover_x(y, sign)
    if x is None:
        return "the encoding is not a point on the curve"
    if x == 0 and sign:
        return "the point's x is 0 with the sign bit set (a non-canonical encoding)"
    point = (x, y)
    for _ in range(3):
        point = _add(point, point)
    if point == _IDENTITY:
        return "the point has small order (it signs for anyone)"
    return None


def check_public_key(encoded: bytes) -> None:
    """Raise WeakKeyError unless ``encoded`` is a strict Ed25519 public key."""
    problem = point_problem(encoded)
    if problem is not None:
        raise WeakKeyError(f"refused Ed25519 public key: {problem}")


def signature_problem(signature: bytes) -> str | None:
    """Why ``signature`` is not strictly encoded (R a strict point, S < L), or None."""
    if len(signature) != SIGNATURE_SIZE:
        return f"an Ed25519 signature has 64 bytes, not {len(signature)}"
    r_problem = point_problem(signature[:POINT_SIZE])
    if r_problem is not None:
        return f"its R is refused: {r_problem}"
    if int.from_bytes(signature[POINT_SIZE:], "little") >= L:
        return "its S is not below the group order (a non-canonical S)"
    return None


def check_signature(signature: bytes) -> None:
    """Raise SignatureError unless ``signature`` is strictly encoded."""
    problem = signature_problem(signature)
    if problem is not None:
        raise SignatureError(f"refused Ed25519 signature: {problem}")


def _recover_x(y: int, sign: int) -> int | None:
    """The x of the point with ``y`` and x's low bit ``sign`` (RFC 8032, 5.1.3), or None."""
    u = (y * y - 1) % P
    v = (_D * y * y + 1) % P
    x2 = u * pow(v, -1, P) % P
    if x2 == 0:
        return 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * _SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def _add(a: _Point, b: _Point) -> _Point:
    """Twisted Edwards addition (a = -1), complete since d is not a square."""
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, -1, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P
    return x3, y3
