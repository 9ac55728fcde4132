"""Witness cosignatures (C2SP tlog-cosignature) and witness policies (C2SP tlog-policy).

The interop vectors come from ``tests.cosig_reference``, written from the spec's text apart
from ``hashing``: every byte of our lines, key IDs and vkeys must equal its output.
"""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashing import (
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    KeyFormatError,
    NoteFormatError,
    NoteSigner,
    PolicyFormatError,
    QuorumError,
    SignatureError,
    add_signature_lines,
    leaf_hash,
    open_checkpoint,
    parse_cosignature_lines,
    parse_policy,
    split_note,
    verify_cosignatures,
)
from tests import cosig_reference as ref

ORIGIN = "consent-ledger.example/log"
LOG = NoteSigner.generate(ORIGIN)
CHECKPOINT = Checkpoint(ORIGIN, 20852163, leaf_hash(b"cosig root"))
NOTE = LOG.sign(CHECKPOINT)
BODY = CHECKPOINT.body().decode()

VECTORS = [
    ("plain", bytes(range(32)), "witness.example/w1", BODY, 1679315147),
    ("extension lines", bytes([7] * 32), "w2.example", BODY + "ext line one\n", 1),
    (
        "non-ASCII name",
        hashlib.sha256(b"seed").digest(),
        "hôpital.example/w\u00e9",
        "example.com/behind-the-sofa\n5\n" + base64.b64encode(bytes(32)).decode() + "\n",
        2**63 - 1,
    ),
]


def _signer(seed: bytes, name: str) -> CosignatureSigner:
    return CosignatureSigner(name, Ed25519PrivateKey.from_private_bytes(seed))


@pytest.mark.parametrize(("case", "seed", "name", "body", "timestamp"), VECTORS, ids=lambda v: "")
def test_cosignature_bytes_equal_the_reference(case, seed, name, body, timestamp):
    signer = _signer(seed, name)
    line = signer.cosign(body.encode(), timestamp)
    assert line == ref.line(seed, name, body, timestamp), case
    public = ref.public_key(seed)
    assert signer.verifier().key_id == ref.key_id(name, public)
    assert signer.verifier().to_vkey() == ref.vkey(name, public)
    assert ref.check(public, name, body, line) == timestamp
    # And ours reads the reference's line.
    note = body + "\n" + ref.line(seed, name, body, timestamp)
    found = verify_cosignatures(note, [CosignatureVerifier.from_vkey(ref.vkey(name, public))])
    assert [c.timestamp for c in found.values()] == [timestamp]


def test_spec_example_line_carries_the_spec_example_timestamp():
    # c2sp.org/tlog-cosignature: the example line and the example "time 1679315147".
    blob = base64.b64decode(
        "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5"
        "nNo0xUe+mbIUBkBIfZ+qnA=="
    )
    assert len(blob) == 4 + 8 + 64
    assert int.from_bytes(blob[4:12], "big") == 1679315147


def test_key_id_uses_type_0x04_not_the_log_type_0x01():
    signer = CosignatureSigner.generate("w.example")
    raw = signer.verifier().public_raw
    assert signer.verifier().key_id == hashlib.sha256(b"w.example\n\x04" + raw).digest()[:4]
    assert signer.verifier().key_id != hashlib.sha256(b"w.example\n\x01" + raw).digest()[:4]


def test_keys_round_trip_and_malformed_keys_are_refused():
    signer = CosignatureSigner.generate("w.example/1")
    assert CosignatureSigner.from_skey(signer.to_skey()).verifier() == signer.verifier()
    vkey = signer.verifier().to_vkey()
    assert CosignatureVerifier.from_vkey(vkey) == signer.verifier()
    name, key_id, key = vkey.split("+", 2)
    short = base64.b64encode(b"\x04" + bytes(31)).decode()
    bad = {
        "log key type 0x01": LOG.verifier().to_vkey(),
        "wrong key id": f"{name}+{'0' * 8}+{key}",
        "other name": f"other+{key_id}+{key}",
        "short key": f"{name}+{key_id}+{short}",
        "no key": f"{name}+{key_id}",
    }
    for case, text in bad.items():
        with pytest.raises(KeyFormatError):
            CosignatureVerifier.from_vkey(text)
        assert case


def _cosigned(*signers: CosignatureSigner, timestamp: int = 1700000000) -> str:
    lines = [s.cosign(CHECKPOINT.body(), timestamp) for s in signers]
    return add_signature_lines(NOTE, lines)


W1, W2, W3 = (CosignatureSigner.generate(f"w{i}.example") for i in (1, 2, 3))


def test_a_cosigned_note_still_opens_under_the_log_key():
    note = _cosigned(W1, W2)
    assert open_checkpoint(note, LOG.verifier()) == CHECKPOINT
    assert len(split_note(note).lines) == 3
    assert add_signature_lines(note, [W1.cosign(CHECKPOINT.body(), 1700000000)]) == note


def test_tampered_cosignatures_are_rejected_and_unknown_ones_ignored():
    note = _cosigned(W1)
    line = split_note(note).lines[1]
    blob = base64.b64decode(line.split(" ")[2])
    verifiers = [W1.verifier()]
    for position in range(4, len(blob)):  # timestamp and signature bytes
        flipped = bytearray(blob)
        flipped[position] ^= 0x01
        bad_line = f"\u2014 w1.example {base64.b64encode(bytes(flipped)).decode()}"
        with pytest.raises(SignatureError):
            verify_cosignatures(add_signature_lines(NOTE, [bad_line]), verifiers)
    # A flipped key-ID byte makes it another key's line: ignored, not accepted.
    flipped = bytearray(blob)
    flipped[0] ^= 0x01
    other = f"\u2014 w1.example {base64.b64encode(bytes(flipped)).decode()}"
    assert verify_cosignatures(add_signature_lines(NOTE, [other]), verifiers) == {}
    # The same line on another checkpoint body does not verify.
    other_body = LOG.sign(Checkpoint(ORIGIN, CHECKPOINT.tree_size, leaf_hash(b"other")))
    with pytest.raises(SignatureError):
        verify_cosignatures(add_signature_lines(other_body, [line]), verifiers)
    assert verify_cosignatures(note, [W2.verifier()]) == {}


def test_response_bodies_parse_only_as_newline_terminated_signature_lines():
    good = W1.cosign(CHECKPOINT.body(), 5) + W2.cosign(CHECKPOINT.body(), 5)
    assert len(parse_cosignature_lines(good)) == 2
    for bad in ["", "\n", good.rstrip("\n"), "not a signature\n", "\u2014 w1 !!!\n"]:
        with pytest.raises(NoteFormatError):
            parse_cosignature_lines(bad)


def test_a_zero_timestamp_is_never_produced():
    with pytest.raises(ValueError):
        W1.cosign(CHECKPOINT.body(), 0)


def _policy(quorum_lines: str) -> str:
    return (
        f"# three hospitals\nlog {LOG.verifier().to_vkey()}\n"
        f"witness regulator {W1.verifier().to_vkey()} http://127.0.0.1:1\n"
        f"witness hospital-a\t{W2.verifier().to_vkey()}\n"
        f"  witness hospital-b {W3.verifier().to_vkey()}  \n\n" + quorum_lines
    )


@pytest.mark.parametrize(
    ("quorum", "signers", "satisfied"),
    [
        ("group all3 2 regulator hospital-a hospital-b\nquorum all3\n", (W1, W2), True),
        ("group all3 2 regulator hospital-a hospital-b\nquorum all3\n", (W3,), False),
        ("group all3 all regulator hospital-a hospital-b\nquorum all3\n", (W1, W2), False),
        ("group all3 all regulator hospital-a hospital-b\nquorum all3\n", (W1, W2, W3), True),
        ("group h any hospital-a hospital-b\ngroup q all regulator h\nquorum q\n", (W1, W3), True),
        ("group h any hospital-a hospital-b\ngroup q all regulator h\nquorum q\n", (W2, W3), False),
        ("quorum regulator\n", (W1,), True),
        ("quorum none\n", (), True),
    ],
)
def test_quorum_rules(quorum, signers, satisfied):
    policy = parse_policy(_policy(quorum))
    assert policy.logs[0].verifier == LOG.verifier()
    assert policy.witnesses["regulator"].url == "http://127.0.0.1:1"
    result = policy.check(_cosigned(*signers))
    assert result.satisfied is satisfied
    assert len(result.cosigned) == len(signers)
    if not satisfied:
        with pytest.raises(QuorumError, match="NOT met"):
            policy.require(_cosigned(*signers))


def test_a_witness_counts_once_however_many_lines_it_adds():
    policy = parse_policy(_policy("group g 2 regulator hospital-a\nquorum g\n"))
    twice = add_signature_lines(_cosigned(W1), [W1.cosign(CHECKPOINT.body(), 1700000001)])
    assert policy.check(twice).cosigned == ("regulator",)
    assert not policy.check(twice).satisfied


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no quorum line"),
        ("quorum nobody\n", "not defined above"),
        ("quorum none\nquorum none\n", "second quorum"),
        ("group g 1 later\nquorum g\n", "not defined above"),
        (f"witness a {W1.verifier().to_vkey()}\ngroup g 2 a\nquorum g\n", "threshold 2 > 1"),
        (f"witness a {W1.verifier().to_vkey()}\ngroup g 0 a\nquorum g\n", "threshold must"),
        (f"witness a {W1.verifier().to_vkey()}\ngroup g 1 a a\nquorum g\n", "listed twice"),
        (
            f"witness a {W1.verifier().to_vkey()}\nwitness b {W1.verifier().to_vkey()}\n",
            "key listed twice",
        ),
        (f"witness a {LOG.verifier().to_vkey()}\nquorum a\n", "line 1"),
        (f"witness none {W1.verifier().to_vkey()}\nquorum none\n", "reserved"),
        ("quorum none\nwitnesses x y\n", "line 2: expected"),
        ("quorum none\x0b\n", "control character"),
    ],
)
def test_malformed_policies_name_the_fault(text, match):
    with pytest.raises(PolicyFormatError, match=match):
        parse_policy(text)
