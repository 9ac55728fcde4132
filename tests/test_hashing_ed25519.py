"""Strict Ed25519: small-order and non-canonical keys and R, S >= L, as a table of named vectors.

Also replays the forgery these checks close: OpenSSL alone verifies a trivial signature under
the identity point as public key, for any message.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hashing import (
    Checkpoint,
    KeyFormatError,
    NoteVerifier,
    SignatureError,
    leaf_hash,
    open_checkpoint,
)
from hashing.ed25519 import (
    SMALL_ORDER_Y,
    L,
    P,
    WeakKeyError,
    check_public_key,
    check_signature,
    point_problem,
    signature_problem,
)

_SIGN = 1 << 255


def _enc(y: int, sign: int = 0) -> bytes:
    return (y | (_SIGN if sign else 0)).to_bytes(32, "little")


_Y8A = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
_Y8B = int.from_bytes(
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), "little"
)

SMALL_ORDER_CANONICAL = {
    "identity (order 1)": _enc(1),
    "(0, -1) (order 2)": _enc(P - 1),
    "y = 0, x even (order 4)": _enc(0),
    "y = 0, x odd (order 4)": _enc(0, 1),
    "order 8, first y, x even": _enc(_Y8A),
    "order 8, first y, x odd": _enc(_Y8A, 1),
    "order 8, second y, x even": _enc(_Y8B),
    "order 8, second y, x odd": _enc(_Y8B, 1),
}
SMALL_ORDER_NON_CANONICAL = {
    "identity with the sign bit (x = -0)": _enc(1, 1),
    "(0, -1) with the sign bit (x = -0)": _enc(P - 1, 1),
    "identity as y = p + 1": _enc(P + 1),
    "identity as y = p + 1, sign bit": _enc(P + 1, 1),
    "y = 0 as y = p": _enc(P),
    "y = 0 as y = p, sign bit": _enc(P, 1),
}


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


GOOD_KEY = Ed25519PrivateKey.generate()
GOOD_RAW = _raw(GOOD_KEY.public_key())


# -- a naive reference: decode the point (RFC 8032, 5.1.3) and multiply it by 8 -------------

_D = (-121665 * pow(121666, -1, P)) % P


def reference_decode(encoded: bytes) -> tuple[int, int] | None:
    """The point ``encoded`` names if it is a canonical encoding of one, else None."""
    value = int.from_bytes(encoded, "little")
    sign, y = value >> 255, value & ((1 << 255) - 1)
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    if (x * x - x2) % P:
        return None
    if x == 0 and sign:
        return None
    return (P - x if x & 1 != sign else x), y


def reference_times_8_is_identity(point: tuple[int, int]) -> bool:
    for _ in range(3):
        (x1, y1) = point
        t = _D * x1 * x1 * y1 * y1 % P
        point = (2 * x1 * y1 * pow(1 + t, -1, P) % P, (y1 * y1 + x1 * x1) * pow(1 - t, -1, P) % P)
    return point == (0, 1)


def reference_is_strict_key(encoded: bytes) -> bool:
    point = reference_decode(encoded)
    return point is not None and not reference_times_8_is_identity(point)


def test_the_table_holds_eight_distinct_small_order_points() -> None:
    assert len(set(SMALL_ORDER_CANONICAL.values())) == 8
    for name, encoded in SMALL_ORDER_CANONICAL.items():
        point = reference_decode(encoded)
        assert point is not None, name
        assert reference_times_8_is_identity(point), name
    assert {
        int.from_bytes(e, "little") & ((1 << 255) - 1) for e in SMALL_ORDER_CANONICAL.values()
    } == SMALL_ORDER_Y


@pytest.mark.parametrize("seed", range(64))
def test_the_key_check_agrees_with_the_reference(seed: int) -> None:
    """Generated keys, their small-order twins (key + a torsion point has large order still),
    each y < 64 in both signs, and the table: strict exactly when the reference says so."""
    candidates = [
        _enc(seed),
        _enc(seed, 1),
        _enc(P - seed),
        _raw(Ed25519PrivateKey.generate().public_key()),
        *SMALL_ORDER_CANONICAL.values(),
        *SMALL_ORDER_NON_CANONICAL.values(),
    ]
    for encoded in candidates:
        assert (point_problem(encoded) is None) == reference_is_strict_key(encoded), encoded.hex()


def test_openssl_alone_accepts_a_forgery_under_the_identity_key() -> None:
    # What the checks are for: this passes without them, for any message.
    forged = _enc(1) + bytes(32)
    Ed25519PublicKey.from_public_bytes(_enc(1)).verify(forged, b"any message at all")


@pytest.mark.parametrize(
    "encoded",
    [*SMALL_ORDER_CANONICAL.values(), *SMALL_ORDER_NON_CANONICAL.values()],
    ids=[*SMALL_ORDER_CANONICAL, *SMALL_ORDER_NON_CANONICAL],
)
def test_small_order_points_are_refused_as_keys_and_as_r(encoded: bytes) -> None:
    assert point_problem(encoded) is not None
    with pytest.raises(WeakKeyError):
        check_public_key(encoded)
    with pytest.raises(SignatureError, match="R is refused"):
        check_signature(encoded + bytes(32))


NON_CANONICAL_LARGE_ORDER = {
    # y >= p encodes y - p: a second encoding of the same point when y - p is on the curve.
    f"y = p + {k}": _enc(P + k)
    for k in range(2, 19)
    if point_problem(_enc(k)) is None
}


@pytest.mark.parametrize(
    "encoded", NON_CANONICAL_LARGE_ORDER.values(), ids=list(NON_CANONICAL_LARGE_ORDER)
)
def test_non_canonical_encodings_of_large_order_points_are_refused(encoded: bytes) -> None:
    assert NON_CANONICAL_LARGE_ORDER  # some y < 19 are on the curve: the table is not empty
    assert "non-canonical" in (point_problem(encoded) or "")


def test_a_generated_key_and_its_signature_pass() -> None:
    check_public_key(GOOD_RAW)
    signature = GOOD_KEY.sign(b"m")
    check_signature(signature)
    assert signature_problem(signature) is None


BAD_SIGNATURES = {
    "S + L": lambda s: s[:32] + (int.from_bytes(s[32:], "little") + L).to_bytes(32, "little"),
    "S = L": lambda s: s[:32] + L.to_bytes(32, "little"),
    "S = 2^256 - 1": lambda s: s[:32] + b"\xff" * 32,
    "R the identity": lambda s: _enc(1) + s[32:],
    "R of order 8": lambda s: _enc(_Y8A, 1) + s[32:],
    "R as y = p + 1": lambda s: _enc(P + 1) + s[32:],
    "truncated": lambda s: s[:63],
    "extended": lambda s: s + b"\x00",
}


@pytest.mark.parametrize("name", BAD_SIGNATURES)
def test_bad_signature_encodings_are_refused(name: str) -> None:
    signature = BAD_SIGNATURES[name](GOOD_KEY.sign(b"m"))
    assert signature_problem(signature) is not None
    with pytest.raises(SignatureError):
        check_signature(signature)


def test_not_a_point_and_wrong_length_are_refused() -> None:
    assert "not a point" in (point_problem(_enc(2)) or "")
    assert "32 bytes" in (point_problem(bytes(31)) or "")


# -- the forgery replayed against signed notes -------------------------------------------------


def _vkey(name: str, raw: bytes) -> str:
    key = b"\x01" + raw
    key_hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    return f"{name}+{key_hash.hex()}+{base64.b64encode(key).decode()}"


@pytest.mark.parametrize(
    "raw",
    [*SMALL_ORDER_CANONICAL.values(), *SMALL_ORDER_NON_CANONICAL.values()],
    ids=[*SMALL_ORDER_CANONICAL, *SMALL_ORDER_NON_CANONICAL],
)
def test_a_verifier_key_of_small_order_is_refused(raw: bytes) -> None:
    with pytest.raises(KeyFormatError):
        NoteVerifier.from_vkey(_vkey("log.example", raw))


def test_a_forged_checkpoint_under_the_identity_key_is_refused() -> None:
    """Even a verifier built around such a key (not from a vkey) never accepts the forgery."""
    body = Checkpoint("log.example", 7, leaf_hash(b"x")).body()
    name = "log.example"
    verifier_key = b"\x01" + _enc(1)
    key_hash = hashlib.sha256(name.encode() + b"\n" + verifier_key).digest()[:4]
    blob = base64.b64encode(key_hash + _enc(1) + bytes(32)).decode()
    note = body.decode() + f"\n\u2014 {name} {blob}\n"
    with pytest.raises(KeyFormatError):
        NoteVerifier(name, Ed25519PublicKey.from_public_bytes(_enc(1)))
    with pytest.raises(KeyFormatError):
        open_checkpoint(note, NoteVerifier.from_vkey(_vkey(name, _enc(1))))


def test_a_checkpoint_signature_with_s_plus_l_is_refused() -> None:
    from hashing import NoteSigner

    signer = NoteSigner("log.example", GOOD_KEY)
    note = signer.sign(Checkpoint("log.example", 7, leaf_hash(b"x")))
    text, _, line = note.rstrip("\n").rpartition("\n")
    prefix, _, blob = line.rpartition(" ")
    raw = base64.b64decode(blob)
    s = int.from_bytes(raw[4 + 32 :], "little") + L
    malleated = raw[: 4 + 32] + s.to_bytes(32, "little")
    forged = f"{text}\n{prefix} {base64.b64encode(malleated).decode()}\n"
    with pytest.raises(SignatureError):
        open_checkpoint(forged, signer.verifier())
    open_checkpoint(note, signer.verifier())  # the original still opens
