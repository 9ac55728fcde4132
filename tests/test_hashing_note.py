"""Signed checkpoints: C2SP signed-note format, Go interoperability, tampering, malformed notes."""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hashing import (
    EMPTY_ROOT,
    Checkpoint,
    KeyFormatError,
    NoteContentError,
    NoteFormatError,
    NoteSigner,
    NoteVerifier,
    SignatureError,
    leaf_hash,
    open_checkpoint,
    open_note,
)

ORIGIN = "consent-ledger.example/log"
ROOT = leaf_hash(b"checkpoint test root")
SIGNER = NoteSigner.generate(ORIGIN)
VERIFIER = SIGNER.verifier()
CHECKPOINT = Checkpoint(ORIGIN, 1234, ROOT)
NOTE = SIGNER.sign(CHECKPOINT)

# golang.org/x/mod/sumdb/note package documentation example.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUg"
    "YN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_sign_and_open_round_trip() -> None:
    assert open_checkpoint(NOTE, VERIFIER) == CHECKPOINT
    assert open_checkpoint(NOTE.encode(), VERIFIER, origin=ORIGIN) == CHECKPOINT


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint(ORIGIN, 0, EMPTY_ROOT),
        Checkpoint(ORIGIN, 2**64 - 1, ROOT),
        Checkpoint(ORIGIN, 7, ROOT, ("extension one", "ext two ünïcode")),
    ],
    ids=["empty-tree", "max-size", "extensions"],
)
def test_round_trip_edge_checkpoints(checkpoint: Checkpoint) -> None:
    assert open_checkpoint(SIGNER.sign(checkpoint), VERIFIER) == checkpoint


def test_signed_note_layout() -> None:
    root_b64 = base64.b64encode(ROOT).decode()
    body, signature_line = NOTE.split("\n\n")
    assert body + "\n" == f"{ORIGIN}\n1234\n{root_b64}\n"
    assert CHECKPOINT.body() == (body + "\n").encode()
    assert signature_line.startswith(f"\u2014 {ORIGIN} ")
    assert signature_line.endswith("\n")
    blob = base64.b64decode(signature_line.split(" ")[2])
    assert len(blob) == 4 + 64
    assert blob[:4] == VERIFIER.key_hash


def test_key_hash_is_the_c2sp_ed25519_key_id() -> None:
    public = VERIFIER.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert VERIFIER.key_hash == expected
    encoded_key = base64.b64encode(b"\x01" + public).decode()
    assert VERIFIER.to_vkey() == f"{ORIGIN}+{expected.hex()}+{encoded_key}"


def test_go_sumdb_note_example_interoperates() -> None:
    signer = NoteSigner.from_skey(GO_SKEY)
    assert signer.to_skey() == GO_SKEY
    assert signer.verifier().to_vkey() == GO_VKEY
    assert signer.key_hash.hex() == "c74f20a3"
    # Ed25519 is deterministic, so the same key and text give Go's exact note.
    assert signer.sign_text(GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, NoteVerifier.from_vkey(GO_VKEY)) == GO_TEXT


def test_other_published_go_key_pair() -> None:
    skey = "PRIVATE+KEY+Test-Betty+df84580a+Afge8kCzBXU7jb3cV2Q363oNXCufJ6u9mjOY1BGRY9E2"
    vkey = "Test-Betty+df84580a+AQQASqPUZoIHcJAF5mBOryctwFdTV1E0GRY4kEAtTzwB"
    assert NoteSigner.from_skey(skey).verifier() == NoteVerifier.from_vkey(vkey)


def test_every_single_bit_flip_anywhere_is_rejected() -> None:
    original = NOTE.encode()
    for position in range(len(original)):
        for bit in range(8):
            tampered = bytearray(original)
            tampered[position] ^= 1 << bit
            with pytest.raises((NoteFormatError, SignatureError)):
                open_checkpoint(bytes(tampered), VERIFIER)


def test_every_byte_replaced_by_a_printable_neighbour_is_rejected() -> None:
    # Printable replacements stay valid UTF-8, so they reach the signature check.
    original = NOTE.encode()
    for position, byte in enumerate(original):
        for replacement in {byte + 1, byte - 1, ord("A"), ord("=")} - {byte}:
            if 0x20 <= replacement < 0x7F:
                tampered = original[:position] + bytes([replacement]) + original[position + 1 :]
                with pytest.raises((NoteFormatError, SignatureError)):
                    open_checkpoint(tampered, VERIFIER)


def test_wrong_key_is_rejected() -> None:
    with pytest.raises(SignatureError, match="no signature"):
        open_checkpoint(NOTE, NoteSigner.generate(ORIGIN).verifier())
    with pytest.raises(SignatureError):
        open_checkpoint(NOTE, NoteSigner.generate("someone.else/log").verifier())


def test_unknown_signatures_are_ignored() -> None:
    witness = NoteSigner.generate("witness.example/w1")
    cosigned = NOTE + witness.sign(CHECKPOINT).split("\n\n")[1]
    assert open_checkpoint(cosigned, VERIFIER) == CHECKPOINT
    assert open_checkpoint(cosigned, witness.verifier()) == CHECKPOINT


def test_a_bad_second_signature_from_the_trusted_key_is_rejected() -> None:
    forged = SIGNER.sign(Checkpoint(ORIGIN, 1235, ROOT)).split("\n\n")[1]
    with pytest.raises(SignatureError, match="invalid signature"):
        open_checkpoint(NOTE + forged, VERIFIER)


def test_origin_mismatch_is_rejected() -> None:
    with pytest.raises(NoteFormatError, match="origin"):
        open_checkpoint(NOTE, VERIFIER, origin="another.example/log")


def test_key_texts_round_trip() -> None:
    assert NoteVerifier.from_vkey(VERIFIER.to_vkey()) == VERIFIER
    restored = NoteSigner.from_skey(SIGNER.to_skey())
    assert restored.verifier() == VERIFIER
    assert restored.sign(CHECKPOINT) == NOTE


def test_signer_repr_and_key_errors_never_show_the_secret() -> None:
    # PRIVATE+KEY+<name>+<hash>+<base64 seed>: the seed's base64 may itself hold a "+".
    secret = SIGNER.to_skey().split("+", 4)[4]
    assert len(secret) == 44
    assert secret not in repr(SIGNER)
    wrong_hash = SIGNER.to_skey().replace(f"+{SIGNER.key_hash.hex()}+", "+00000000+")
    with pytest.raises(KeyFormatError) as caught:
        NoteSigner.from_skey(wrong_hash)
    assert secret not in str(caught.value)


_VKEY_NAME, _VKEY_HASH, _VKEY_DATA = GO_VKEY.split("+", 2)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        _VKEY_NAME,
        f"{_VKEY_NAME}+{_VKEY_HASH}",
        f"{_VKEY_NAME}+00000000+{_VKEY_DATA}",
        f"{_VKEY_NAME}+c74f20a+{_VKEY_DATA}",
        f"{_VKEY_NAME}+0xc74f20+{_VKEY_DATA}",
        f"Peter Neumann+{_VKEY_HASH}+{_VKEY_DATA}",
        f"OtherName+{_VKEY_HASH}+{_VKEY_DATA}",
        f"{_VKEY_NAME}+{_VKEY_HASH}+{_VKEY_DATA[:-4]}",
        f"{_VKEY_NAME}+{_VKEY_HASH}+{_VKEY_DATA}=",
        f"{_VKEY_NAME}+{_VKEY_HASH}+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
    ],
    ids=[
        "empty",
        "name-only",
        "no-key",
        "hash-mismatch",
        "short-hash",
        "hex-prefix",
        "space-in-name",
        "other-name",
        "truncated-key",
        "bad-padding",
        "unknown-algorithm",
    ],
)
def test_malformed_vkeys_are_rejected(vkey: str) -> None:
    with pytest.raises(KeyFormatError):
        NoteVerifier.from_vkey(vkey)


@pytest.mark.parametrize(
    "skey",
    [GO_SKEY.removeprefix("PRIVATE+KEY+"), "PRIVATE+KEYS+" + GO_SKEY[12:], GO_SKEY[:-2], GO_VKEY],
    ids=["no-prefix", "wrong-prefix", "truncated", "verifier-key"],
)
def test_malformed_skeys_are_rejected(skey: str) -> None:
    with pytest.raises(KeyFormatError):
        NoteSigner.from_skey(skey)


@pytest.mark.parametrize("name", ["", "with space", "plus+sign", "tab\tname", "nbsp\u00a0name"])
def test_invalid_key_names_are_rejected(name: str) -> None:
    with pytest.raises(KeyFormatError):
        NoteSigner.generate(name)


ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n1234\n",
        f"{ORIGIN}\n01234\n{ROOT_B64}\n",
        f"{ORIGIN}\n+1234\n{ROOT_B64}\n",
        f"{ORIGIN}\n-1\n{ROOT_B64}\n",
        f"{ORIGIN}\n12 34\n{ROOT_B64}\n",
        f"{ORIGIN}\n\u0661\u0662\n{ROOT_B64}\n",
        f"{ORIGIN}\n\n{ROOT_B64}\n",
        f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n",
        f"{ORIGIN}\n{'9' * 5000}\n{ROOT_B64}\n",
        f"{ORIGIN}\n1234\n{ROOT_B64.rstrip('=')}\n",
        f"{ORIGIN}\n1234\n{ROOT_B64[:-2]}F=\n",
        f"{ORIGIN}\n1234\n{ROOT.hex()}\n",
        f"{ORIGIN}\n1234\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n1234\n{base64.b64encode(ROOT + b'!').decode()}\n",
        f"\n1234\n{ROOT_B64}\n",
    ],
    ids=[
        "two-lines",
        "leading-zero",
        "plus-sign",
        "negative",
        "inner-space",
        "non-ascii-digits",
        "empty-size",
        "size-over-uint64",
        "size-5000-digits",
        "root-unpadded",
        "root-non-canonical-bits",
        "root-hex",
        "root-31-bytes",
        "root-33-bytes",
        "empty-origin",
    ],
)
def test_malformed_checkpoint_bodies_are_rejected_even_when_signed(body: str) -> None:
    with pytest.raises(NoteFormatError):
        open_checkpoint(SIGNER.sign_text(body), VERIFIER)


def test_empty_extension_line_is_rejected() -> None:
    # An empty line inside the text is allowed by the note format but not by checkpoints.
    note = SIGNER.sign_text(f"{ORIGIN}\n1234\n{ROOT_B64}\n\nextension\n")
    assert open_note(note, VERIFIER).endswith("\n\nextension\n")
    with pytest.raises(NoteFormatError, match="extension"):
        open_checkpoint(note, VERIFIER)


_BODY, _SIGNATURES = NOTE.split("\n\n")
_SIGNATURE_BLOB = _SIGNATURES.split(" ")[2].strip()


@pytest.mark.parametrize(
    "note",
    [
        _BODY + "\n" + _SIGNATURES,
        _BODY + "\n\n",
        NOTE.rstrip("\n"),
        NOTE.replace("\u2014", "-"),
        NOTE.replace(f"\u2014 {ORIGIN} ", f"\u2014  {ORIGIN} "),
        NOTE.replace(_SIGNATURE_BLOB, _SIGNATURE_BLOB.rstrip("=")),
        NOTE.replace(_SIGNATURE_BLOB, "AAAA"),
        NOTE.replace(_SIGNATURE_BLOB, _SIGNATURE_BLOB + " extra"),
        NOTE.replace(f"{ORIGIN}\n", f"{ORIGIN}\r\n", 1),
        NOTE.replace(f"{ORIGIN}\n", f"{ORIGIN}\ud800\n", 1),
        NOTE + _SIGNATURES * 100,
    ],
    ids=[
        "no-blank-line",
        "no-signatures",
        "no-final-newline",
        "hyphen-not-em-dash",
        "double-space",
        "signature-unpadded",
        "signature-too-short",
        "signature-trailing-text",
        "carriage-return",
        "lone-surrogate",
        "101-signatures",
    ],
)
def test_malformed_notes_are_rejected(note: str) -> None:
    with pytest.raises(NoteFormatError):
        open_checkpoint(note, VERIFIER)


def test_invalid_utf8_bytes_are_rejected() -> None:
    with pytest.raises(NoteFormatError, match="UTF-8"):
        open_checkpoint(NOTE.encode().replace(b"\n\n", b"\n\xff\n\n"), VERIFIER)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (("", 1, ROOT), "origin is empty"),
        (("a\nb", 1, ROOT), "newline"),
        ((ORIGIN, -1, ROOT), "tree_size"),
        ((ORIGIN, 2**64, ROOT), "tree_size"),
        ((ORIGIN, 1, ROOT[:16]), "root_hash"),
        ((ORIGIN, 1, ROOT, ("",)), "extension line is empty"),
        ((ORIGIN, 1, ROOT, ("two\nlines",)), "extension"),
    ],
    ids=[
        "empty-origin",
        "newline-origin",
        "negative",
        "too-big",
        "short-root",
        "empty-ext",
        "nl-ext",
    ],
)
def test_checkpoint_rejects_fields_a_note_cannot_carry(
    fields: tuple[object, ...], reason: str
) -> None:
    with pytest.raises(NoteContentError, match=reason):
        Checkpoint(*fields)  # type: ignore[arg-type]


def test_sign_text_needs_a_final_newline() -> None:
    with pytest.raises(NoteContentError):
        SIGNER.sign_text("no newline")
