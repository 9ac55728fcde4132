"""A second, deliberately naive reading of C2SP tlog-cosignature (Ed25519, type 0x04).

Written from the spec's text alone and importing nothing of ``hashing``: the interop tests
check that ``hashing.cosignature`` produces the very same bytes.

From c2sp.org/tlog-cosignature:
- key ID = SHA-256(<name> || "\\n" || 0x04 || 32-byte Ed25519 public key)[:4]
- signature = timestamped_signature: u64 big-endian timestamp || 64-byte Ed25519 signature
- signed message = "cosignature/v1\\n" "time <decimal timestamp>\\n" <whole checkpoint body>
- the line = "\u2014 " <name> " " base64(key ID || signature) "\\n" (c2sp.org/signed-note)
- a vkey = <name> "+" hex(key ID) "+" base64(0x04 || public key)
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def public_key(seed: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + bytes([0x0A, 0x04]) + public).digest()[0:4]


def vkey(name: str, public: bytes) -> str:
    return (
        name + "+" + key_id(name, public).hex() + "+" + base64.b64encode(b"\x04" + public).decode()
    )


def message(body: str, timestamp: int) -> bytes:
    return ("cosignature/v1\n" + "time " + str(timestamp) + "\n" + body).encode()


def line(seed: bytes, name: str, body: str, timestamp: int) -> str:
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(message(body, timestamp))
    blob = key_id(name, public_key(seed)) + timestamp.to_bytes(8, "big") + signature
    return "\u2014 " + name + " " + base64.b64encode(blob).decode() + "\n"


def check(public: bytes, name: str, body: str, sig_line: str) -> int:
    """The timestamp of a valid cosignature line; raises on any mismatch."""
    prefix = "\u2014 " + name + " "
    assert sig_line.startswith(prefix)
    assert sig_line.endswith("\n")
    blob = base64.b64decode(sig_line[len(prefix) : -1], validate=True)
    assert len(blob) == 4 + 8 + 64
    assert blob[0:4] == key_id(name, public)
    timestamp = int.from_bytes(blob[4:12], "big")
    Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message(body, timestamp))
    return timestamp
