"""Strict Ed25519: the checks a verifier makes on keys and signatures it did not make.

OpenSSL (under ``cryptography``) verifies RFC 8032 signatures but accepts a public key of small
order: with the identity point as key (``01 00..00``, or ``00..00``), a signature whose R is
that point and whose S is 0 verifies for every message, with no private key at all. It also
accepts keys in non-canonical encodings (the identity as y = p + 1, or with the sign bit set),
under which the same forgery verifies. So everything here that verifies a signature someone
else made first passes the key and the signature through these functions:

* a public key (and a signature's R) must encode y < p and must not have small order: its y
  is none of the five y values of the eight small-order points, which refuses those points in
  every encoding, canonical or not (a "negative zero" x exists only for two of them); a public
  key must also be a point on the curve;
* a signature's S must be below the group order L (no S + L twin of a valid signature).

Pure integer arithmetic over GF(2^255 - 19): a signature's check is a comparison and a set
look-up; a key's adds one modular exponentiation (Euler's criterion). The tests hold the
small-order test to a reference that multiplies each point by 8.
"""

from __future__ import annotations

from typing import Final

from hashing.errors import SignatureError, WeakKeyError

P: Final = 2**255 - 19
"""The field prime."""
L: Final = 2**252 + 27742317777372353535851937790883648493
"""The order of the prime-order subgroup (and the bound on a signature's S)."""
_D: Final = (-121665 * pow(121666, -1, P)) % P
POINT_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64

SMALL_ORDER_Y: Final = frozenset(
    {
        0,  # (+-sqrt(-1), 0): order 4
        1,  # the identity: order 1
        P - 1,  # (0, -1): order 2
        # The two y of the four points of order 8 (libsodium's blocklist has them too).
        0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,
        0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,
    }
)
"""The y of every point of small order: small order iff its y is one of these (y < p)."""


def point_problem(encoded: bytes, *, on_curve: bool = True) -> str | None:
    """Why ``encoded`` is not a strict Ed25519 point (a public key or a signature's R), or None.

    Refused: a length other than 32, y >= p, any point of small order (order 1, 2, 4 or 8,
    in either sign: ``SMALL_ORDER_Y``), and, when ``on_curve``, a y no point has. A signature's
    R is checked with ``on_curve`` False: an R off the curve never verifies anyway, since the
    verifier compares R's bytes with the canonical encoding of a point it computes.
    """
    if len(encoded) != POINT_SIZE:
        return f"a point has 32 bytes, not {len(encoded)}"
    value = int.from_bytes(encoded, "little")
    y = value & ((1 << 255) - 1)
    if y >= P:
        return "the point's y is not reduced modulo p (a non-canonical encoding)"
    if y in SMALL_ORDER_Y:
        return "the point has small order (it signs for anyone)"
    if on_curve and not _on_curve(y):
        return "the encoding is not a point on the curve"
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
    r_problem = point_problem(signature[:POINT_SIZE], on_curve=False)
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


def _on_curve(y: int) -> bool:
    """Whether some x has (x, y) on the curve: x^2 = (y^2 - 1) / (d y^2 + 1) has a root mod p
    (Euler's criterion). x = 0 happens only for y = 1 or p - 1, both of small order."""
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, P) % P
    return x2 == 0 or pow(x2, (P - 1) // 2, P) == 1
