"""Witness cosignatures on checkpoints: C2SP tlog-cosignature, the timestamped Ed25519 type.

A cosignature is a signed-note signature line whose key ID is
SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4] and whose signature is
``u64 timestamp (big-endian) || Ed25519 signature`` over the message
"cosignature/v1\\ntime <timestamp>\\n" followed by the whole checkpoint body.
Keys are vkeys of signature type 0x04; signer keys read
"PRIVATE+KEY+<name>+<key id hex>+<base64(0x04 || seed)>", as the log's own do with 0x01.

Reading cosignatures follows the signed-note rules: lines from unknown keys are ignored, a
line whose name and key ID match a known key must verify, else the note is rejected.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from hashing.checkpoint import decode_base64_strict, encode_base64
from hashing.errors import KeyFormatError, NoteContentError, NoteFormatError, SignatureError
from hashing.note import _is_valid_key_name, _note_bytes, _parse_signature_line

COSIGNATURE_TYPE = b"\x04"
_HEADER = b"cosignature/v1\n"
_MAX_TIMESTAMP = 2**63 - 1
_SIGNATURE_SIZE = 8 + 64
_MAX_SIGNATURES = 100


def cosignature_key_id(name: str, public_raw: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 cosigner (signature type 0x04)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + COSIGNATURE_TYPE + public_raw).digest()[:4]


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """The bytes a cosigner signs: header line, time line, then the checkpoint body."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteContentError(f"timestamp {timestamp} is not in [0, 2**63)")
    if not body.endswith(b"\n"):
        raise NoteContentError("checkpoint body must end with a newline")
    return _HEADER + b"time " + str(timestamp).encode("ascii") + b"\n" + body


def _decode_vkey(text: str) -> tuple[str, bytes]:
    name, _, rest = text.strip().partition("+")
    id_text, _, key_text = rest.partition("+")
    if not _is_valid_key_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")
    if len(id_text) != 8 or any(char not in "0123456789abcdefABCDEF" for char in id_text):
        raise KeyFormatError("key ID must be 8 hex digits")
    try:
        key = decode_base64_strict(key_text)
    except ValueError as exc:
        raise KeyFormatError("key data is not canonical base64") from exc
    if key[:1] != COSIGNATURE_TYPE or len(key) != 33:
        raise KeyFormatError(
            f"{name!r} is not a cosignature key (signature type 0x04, 32-byte Ed25519 key)"
        )
    return name, key[1:]


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One verified cosignature: who, when (POSIX seconds), and its signature line."""

    name: str
    timestamp: int
    line: str


class CosignatureVerifier:
    """A witness's Ed25519 cosigning key with its name."""

    __slots__ = ("_key_id", "_name", "_public_key", "_public_raw")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _is_valid_key_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        self._name = name
        self._public_key = public_key
        self._public_raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = cosignature_key_id(name, self._public_raw)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_raw(self) -> bytes:
        return self._public_raw

    @classmethod
    def from_vkey(cls, text: str) -> CosignatureVerifier:
        """Parse "<name>+<key id hex8>+<base64(0x04 || public key)>", checking the key ID."""
        name, raw = _decode_vkey(text)
        try:
            public_key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise KeyFormatError(f"invalid Ed25519 public key for {name!r}") from exc
        verifier = cls(name, public_key)
        if verifier.key_id.hex() != text.strip().split("+")[1].lower():
            raise KeyFormatError(f"key ID does not match the key of {name!r}")
        return verifier

    def to_vkey(self) -> str:
        key_text = encode_base64(COSIGNATURE_TYPE + self._public_raw)
        return f"{self._name}+{self._key_id.hex()}+{key_text}"

    def verify(self, body: bytes, signature: bytes) -> int:
        """Verify a signature (the bytes after the key ID) on ``body``; return its timestamp.

        Raises SignatureError.
        """
        if len(signature) != _SIGNATURE_SIZE:
            raise SignatureError(
                f"cosignature by {self._name} has {len(signature)} bytes, want {_SIGNATURE_SIZE}"
            )
        (timestamp,) = struct.unpack(">Q", signature[:8])
        if timestamp > _MAX_TIMESTAMP:
            raise SignatureError(f"cosignature by {self._name} has a timestamp past 2**63 - 1")
        try:
            self._public_key.verify(signature[8:], cosigned_message(body, timestamp))
        except InvalidSignature as exc:
            raise SignatureError(f"invalid cosignature by {self._name}") from exc
        return int(timestamp)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CosignatureVerifier):
            return NotImplemented
        return (self._name, self._public_raw) == (other._name, other._public_raw)

    def __hash__(self) -> int:
        return hash((self._name, self._public_raw))

    def __repr__(self) -> str:
        return f"CosignatureVerifier.from_vkey({self.to_vkey()!r})"


class CosignatureSigner:
    """A witness's Ed25519 cosigning key; signs checkpoint bodies with a timestamp."""

    __slots__ = ("_private_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._verifier = CosignatureVerifier(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, text: str) -> CosignatureSigner:
        """Parse "PRIVATE+KEY+<name>+<key id hex8>+<base64(0x04 || seed)>"."""
        prefix = "PRIVATE+KEY+"
        if not text.startswith(prefix):
            raise KeyFormatError('signer key does not start with "PRIVATE+KEY+"')
        name, seed = _decode_vkey(text[len(prefix) :])
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.verifier().key_id.hex() != text[len(prefix) :].split("+")[1].lower():
            raise KeyFormatError(f"key ID does not match the key of {name!r}")
        return signer

    def to_skey(self) -> str:
        seed = self._private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key_id = self._verifier.key_id.hex()
        return f"PRIVATE+KEY+{self.name}+{key_id}+{encode_base64(COSIGNATURE_TYPE + seed)}"

    @property
    def name(self) -> str:
        return self._verifier.name

    def verifier(self) -> CosignatureVerifier:
        return self._verifier

    def cosign(self, body: bytes, timestamp: int) -> str:
        """The signature line (ending in a newline) cosigning ``body`` at ``timestamp``."""
        if timestamp <= 0:
            raise NoteContentError("a witness cosignature must carry a non-zero timestamp")
        signature = self._private_key.sign(cosigned_message(body, timestamp))
        blob = self._verifier.key_id + struct.pack(">Q", timestamp) + signature
        return f"\u2014 {self.name} {encode_base64(blob)}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note split into its text (ending in a newline) and its signature lines."""

    text: bytes
    lines: tuple[str, ...]

    def note(self) -> str:
        return self.text.decode("utf-8") + "\n" + "".join(line + "\n" for line in self.lines)


def split_note(note_text: str | bytes) -> SignedNote:
    """Split a signed note; raises NoteFormatError if it is malformed. Verifies nothing."""
    message = _note_bytes(note_text)
    split = message.rfind(b"\n\n")
    if split < 0:
        raise NoteFormatError("note has no blank line before its signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith(b"\n"):
        raise NoteFormatError("note signatures are missing or do not end with a newline")
    raw_lines = block[:-1].split(b"\n")
    if len(raw_lines) > _MAX_SIGNATURES:
        raise NoteFormatError(f"note has {len(raw_lines)} signatures, more than {_MAX_SIGNATURES}")
    for line in raw_lines:
        _parse_signature_line(line)
    return SignedNote(text, tuple(line.decode("utf-8") for line in raw_lines))


def parse_cosignature_lines(text: str | bytes) -> tuple[str, ...]:
    """Parse an add-checkpoint response body: one or more signature lines, each ending in \\n."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if not raw.endswith(b"\n") or raw.startswith(b"\n"):
        raise NoteFormatError("signature lines must each end with a newline")
    lines = raw[:-1].split(b"\n")
    for line in lines:
        _parse_signature_line(line)
    try:
        return tuple(line.decode("utf-8") for line in lines)
    except UnicodeDecodeError as exc:
        raise NoteFormatError("signature lines are not valid UTF-8") from exc


def add_signature_lines(note_text: str, lines: Iterable[str]) -> str:
    """``note_text`` with the signature ``lines`` appended, each once, in the order given."""
    note = split_note(note_text)
    kept = list(note.lines)
    for line in lines:
        line = line.rstrip("\n")
        _parse_signature_line(line.encode("utf-8"))
        if line not in kept:
            kept.append(line)
    return SignedNote(note.text, tuple(kept)).note()


def verify_cosignatures(
    note_text: str | bytes, verifiers: Iterable[CosignatureVerifier]
) -> dict[CosignatureVerifier, Cosignature]:
    """The cosignatures on a note by each of ``verifiers`` that cosigned it.

    Lines from other keys are ignored; a line whose name and key ID match one of ``verifiers``
    but does not verify raises SignatureError (the whole note is rejected, as the spec asks).
    The log's own signature is not checked here: open the note with the log key for that.
    """
    note = split_note(note_text)
    known = {(v.name, v.key_id): v for v in verifiers}
    found: dict[CosignatureVerifier, Cosignature] = {}
    for line in note.lines:
        name, key_id, signature = _parse_signature_line(line.encode("utf-8"))
        verifier = known.get((name, key_id))
        if verifier is None:
            continue
        timestamp = verifier.verify(note.text, signature)
        if verifier not in found or found[verifier].timestamp < timestamp:
            found[verifier] = Cosignature(name, timestamp, line)
    return found
