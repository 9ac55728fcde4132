"""Signed checkpoints: C2SP signed notes with Ed25519 keys, and their key text formats.

Follows c2sp.org/signed-note and golang.org/x/mod/sumdb/note: key IDs are
SHA-256(name || 0x0A || 0x01 || public key)[:4], signer keys read
"PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>" and verifier keys
"<name>+<hash>+<base64(0x01 || public key)>". Opening a note verifies every
signature from the trusted key and ignores all others, as the spec requires. Verification is
strict (``hashing.ed25519``): no verifier holds a small-order or non-canonical key, and no
signature with a small-order R or S >= L verifies.
"""

import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from hashing.checkpoint import Checkpoint, decode_base64_strict, encode_base64
from hashing.ed25519 import check_public_key, signature_problem
from hashing.errors import KeyFormatError, NoteContentError, NoteFormatError, SignatureError

_ALG_ED25519 = b"\x01"
_SIGNATURE_PREFIX = "\u2014 ".encode()  # EM DASH, space
_ED25519_SIGNATURE_SIZE = 64
# As golang.org/x/mod/sumdb/note; the spec asks for at least 16.
_MAX_SIGNATURES = 100
_KEY_HASH_HEX = re.compile(r"[0-9a-fA-F]{8}")
_FORBIDDEN_IN_NOTE = re.compile(r"[\x00-\x09\x0b-\x1f]")


def _is_valid_key_name(name: str) -> bool:
    # As the spec: non-empty UTF-8 without "+" or Unicode spaces; control
    # characters could never appear in a note anyway.
    if not name or "+" in name or any(char.isspace() or char < " " for char in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key_hash(name: str, encoded_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + encoded_key).digest()[:4]


def _parse_key_hash(text: str) -> bytes:
    if not _KEY_HASH_HEX.fullmatch(text):
        raise KeyFormatError("key hash must be 8 hex digits")
    return bytes.fromhex(text)


def _decode_key(text: str) -> bytes:
    try:
        key = decode_base64_strict(text)
    except ValueError as exc:
        raise KeyFormatError("key data is not canonical base64") from exc
    if key[:1] != _ALG_ED25519:
        raise KeyFormatError("key is not an Ed25519 (algorithm 0x01) key")
    if len(key) != 33:
        raise KeyFormatError(f"Ed25519 key data has {len(key) - 1} bytes, want 32")
    return key


class NoteVerifier:
    """An Ed25519 public key with its note key name; verifies signatures on note text."""

    __slots__ = ("_key_hash", "_name", "_public_key", "_public_raw")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _is_valid_key_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        self._name = name
        self._public_key = public_key
        self._public_raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        # A key of small order would verify signatures nobody made (hashing.ed25519).
        check_public_key(self._public_raw)
        self._key_hash = _key_hash(name, _ALG_ED25519 + self._public_raw)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key ID that prefixes each signature by this key."""
        return self._key_hash

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public_key

    @classmethod
    def from_vkey(cls, text: str) -> "NoteVerifier":
        """Parse "<name>+<hash hex8>+<base64(0x01 || public key)>"."""
        name, _, rest = text.partition("+")
        hash_text, _, key_text = rest.partition("+")
        if not _is_valid_key_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        expected_hash = _parse_key_hash(hash_text)
        key = _decode_key(key_text)
        if _key_hash(name, key) != expected_hash:
            raise KeyFormatError(f"key hash {hash_text} does not match the key of {name!r}")
        try:
            check_public_key(key[1:])
            public_key = Ed25519PublicKey.from_public_bytes(key[1:])
        except ValueError as exc:
            raise KeyFormatError(f"invalid Ed25519 public key for {name!r}: {exc}") from exc
        return cls(name, public_key)

    def to_vkey(self) -> str:
        key_text = encode_base64(_ALG_ED25519 + self._public_raw)
        return f"{self._name}+{self._key_hash.hex()}+{key_text}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Report whether ``signature`` (the part after the key hash) signs ``message``,
        strictly: a small-order or non-canonical R, or S >= L, never verifies."""
        if len(signature) != _ED25519_SIGNATURE_SIZE or signature_problem(signature) is not None:
            return False
        try:
            self._public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoteVerifier):
            return NotImplemented
        return (self._name, self._public_raw) == (other._name, other._public_raw)

    def __hash__(self) -> int:
        return hash((self._name, self._public_raw))

    def __repr__(self) -> str:
        return f"NoteVerifier.from_vkey({self.to_vkey()!r})"


class NoteSigner:
    """An Ed25519 private key with its note key name; signs checkpoints."""

    __slots__ = ("_private_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._verifier = NoteVerifier(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> "NoteSigner":
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, text: str) -> "NoteSigner":
        """Parse "PRIVATE+KEY+<name>+<hash hex8>+<base64(0x01 || seed)>"."""
        # Messages never quote the text: it is a secret.
        private, _, rest = text.partition("+")
        key_word, _, rest = rest.partition("+")
        name, _, rest = rest.partition("+")
        hash_text, _, key_text = rest.partition("+")
        if (private, key_word) != ("PRIVATE", "KEY"):
            raise KeyFormatError('signer key does not start with "PRIVATE+KEY+"')
        if not _is_valid_key_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        expected_hash = _parse_key_hash(hash_text)
        seed = _decode_key(key_text)[1:]
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        # The hash names the public key, so it can only be checked after deriving it.
        if signer.key_hash != expected_hash:
            raise KeyFormatError(f"key hash {hash_text} does not match the key of {name!r}")
        return signer

    def to_skey(self) -> str:
        seed = self._private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key_text = encode_base64(_ALG_ED25519 + seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_hash.hex()}+{key_text}"

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_hash(self) -> bytes:
        return self._verifier.key_hash

    def verifier(self) -> NoteVerifier:
        return self._verifier

    def sign(self, checkpoint: Checkpoint) -> str:
        """Return the signed note text of ``checkpoint``."""
        return self.sign_text(checkpoint.body().decode("utf-8"))

    def sign_text(self, text: str) -> str:
        """Return ``text`` as a signed note: text, blank line, one signature line."""
        if not text.endswith("\n"):
            raise NoteContentError("note text must end with a newline")
        if _FORBIDDEN_IN_NOTE.search(text):
            raise NoteContentError(
                "note text must not contain control characters other than newline"
            )
        try:
            message = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NoteContentError("note text is not valid Unicode") from exc
        signature = self._private_key.sign(message)
        blob = encode_base64(self.key_hash + signature)
        return f"{text}\n\u2014 {self.name} {blob}\n"

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_hash={self.key_hash.hex()})"


def open_note(note_text: str | bytes, verifier: NoteVerifier) -> str:
    """Verify a signed note against ``verifier`` and return its text (ending in a newline).

    Raises NoteFormatError if the note is malformed, SignatureError if no
    signature from ``verifier`` is present or any of them fails to verify.
    """
    return _open(note_text, verifier).decode("utf-8")


def open_checkpoint(
    note_text: str | bytes, verifier: NoteVerifier, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse it, checking its origin when one is given.

    Raises as ``open_note``, and NoteFormatError for a malformed checkpoint or
    one from another origin.
    """
    checkpoint = Checkpoint.from_body(_open(note_text, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise NoteFormatError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint


def _open(note_text: str | bytes, verifier: NoteVerifier) -> bytes:
    message = _note_bytes(note_text)
    split = message.rfind(b"\n\n")
    if split < 0:
        raise NoteFormatError("note has no blank line before its signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith(b"\n"):
        raise NoteFormatError("note signatures are missing or do not end with a newline")
    lines = block[:-1].split(b"\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteFormatError(f"note has {len(lines)} signatures, more than {_MAX_SIGNATURES}")
    verified = False
    for line in lines:
        name, key_hash, signature = _parse_signature_line(line)
        if (name, key_hash) != (verifier.name, verifier.key_hash):
            continue  # Another key (a witness, a rotated key): not ours to judge.
        if not verifier.verify(text, signature):
            raise SignatureError(f"invalid signature by {verifier.name}+{key_hash.hex()}")
        verified = True
    if not verified:
        raise SignatureError(
            f"no signature by {verifier.name}+{verifier.key_hash.hex()} on the note"
        )
    return text


def _note_bytes(note_text: str | bytes) -> bytes:
    try:
        if isinstance(note_text, str):
            text, message = note_text, note_text.encode("utf-8")
        else:
            text, message = note_text.decode("utf-8"), bytes(note_text)
    except UnicodeError as exc:
        raise NoteFormatError("note is not valid UTF-8") from exc
    if _FORBIDDEN_IN_NOTE.search(text):
        raise NoteFormatError("note contains a control character other than newline")
    return message


def _parse_signature_line(line: bytes) -> tuple[str, bytes, bytes]:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteFormatError("signature line does not start with an em dash and a space")
    name, _, blob_text = line[len(_SIGNATURE_PREFIX) :].decode("utf-8").partition(" ")
    if not _is_valid_key_name(name):
        raise NoteFormatError(f"signature line has an invalid key name {name!r}")
    try:
        blob = decode_base64_strict(blob_text)
    except ValueError as exc:
        raise NoteFormatError(f"signature by {name!r} is not canonical base64") from exc
    if len(blob) < 5:
        raise NoteFormatError(f"signature by {name!r} is too short")
    return name, blob[:4], blob[4:]
