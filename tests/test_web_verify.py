"""The apps' verification code (JavaScript, run in chromium) against the ``hashing`` package:
inclusion proofs with corrupted variants, signed checkpoints under many keys (whose base64 may
hold "+") and of other origins, and canonical JSON. Python's verdict is the reference for every
case. Also: list pages follow a Link header only on the page's own origin."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from hashing import (
    Checkpoint,
    CosignatureSigner,
    NoteSigner,
    SignatureError,
    VerificationError,
    add_signature_lines,
    canonical_json,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    open_checkpoint,
    parse_policy,
    verify_inclusion,
)
from hashing.ed25519 import L, point_problem, signature_problem
from hashing.errors import PolicyFormatError
from tests.e2e.world import CHROMIUM, require_browser
from tests.paths import REPO
from tests.test_hashing_ed25519 import (
    BAD_SIGNATURES,
    NON_CANONICAL_LARGE_ORDER,
    SMALL_ORDER_CANONICAL,
    SMALL_ORDER_NON_CANONICAL,
)

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def flip(data: bytes, bit: int = 0) -> bytes:
    return bytes([data[0] ^ (1 << bit)]) + data[1:]


def inclusion_cases() -> list[dict[str, Any]]:
    cases = []
    for size in SIZES:
        leaves = [f"leaf {i} of {size}".encode() for i in range(size)]
        hashes = [leaf_hash(leaf) for leaf in leaves]
        root = merkle_root(hashes)
        for index in range(size):
            proof = inclusion_proof(hashes, index, size)
            variants: dict[str, tuple[bytes, int, list[bytes], bytes]] = {
                "valid": (leaves[index], index, proof, root),
                "other leaf": (leaves[(index + 1) % size] + b"!", index, proof, root),
                "wrong index": (leaves[index], index + 1, proof, root),
                "wrong root": (leaves[index], index, proof, flip(root)),
                "extended": (leaves[index], index, [*proof, root], root),
            }
            if proof:
                variants["flipped bit"] = (
                    leaves[index],
                    index,
                    [flip(proof[0], 7), *proof[1:]],
                    root,
                )
                variants["truncated"] = (leaves[index], index, proof[:-1], root)
            if len(proof) >= 2:
                variants["swapped"] = (leaves[index], index, [proof[1], proof[0], *proof[2:]], root)
            for name, (leaf, at, path, expected) in variants.items():
                try:
                    verify_inclusion(leaf_hash(leaf), at, size, path, expected)
                    valid = True
                except VerificationError:
                    valid = False
                cases.append(
                    {
                        "name": f"{name} {at}/{size}",
                        "leaf_data": b64(leaf),
                        "leaf_index": at,
                        "tree_size": size,
                        "proof": [b64(h) for h in path],
                        "root_hash": b64(expected),
                        "valid": valid,
                    }
                )
    return cases


def note_cases() -> list[dict[str, Any]]:
    cases = []
    witness = NoteSigner.generate("witness.example/w1")
    for i in range(24):
        signer = NoteSigner.generate("consent-ledger.local/log" if i % 2 else f"log.example/{i}")
        checkpoint = Checkpoint(signer.name, 1000 + i, leaf_hash(bytes([i])))
        note = signer.sign(checkpoint)
        _, _, signature = note.rpartition("\n\n")
        cosigned = witness.sign(checkpoint).rstrip("\n") + "\n" + signature
        variants = {
            "valid": note,
            "cosigned": cosigned,
            "other size": note.replace(f"\n{1000 + i}\n", f"\n{2000 + i}\n", 1),
            "only another key": witness.sign(checkpoint),
            # Signed by the log's key, but for another log: the key name is the log's origin.
            "other origin": signer.sign(
                Checkpoint("other.example/log", checkpoint.tree_size, checkpoint.root_hash)
            ),
            "S + L": _resigned(note, lambda sig: sig[:32] + _plus_l(sig[32:])),
            "R of small order": _resigned(note, lambda sig: (1).to_bytes(32, "little") + sig[32:]),
        }
        for name, variant in variants.items():
            try:
                open_checkpoint(variant, signer.verifier(), origin=signer.name)
                valid = True
            except VerificationError:
                valid = False
            cases.append(
                {
                    "name": f"{name} {i}",
                    "vkey": signer.verifier().to_vkey(),
                    "key_hash": signer.key_hash.hex(),
                    "note": variant,
                    "valid": valid,
                    "origin": checkpoint.origin,
                    "tree_size": str(checkpoint.tree_size),
                    "root_hex": checkpoint.root_hash.hex(),
                }
            )
    return cases


def _plus_l(s: bytes) -> bytes:
    return (int.from_bytes(s, "little") + L).to_bytes(32, "little")


def _resigned(note: str, change: Any) -> str:
    """``note`` with its signature changed by ``change`` (the 64 bytes after the key hash)."""
    text, _, line = note.rstrip("\n").rpartition("\n")
    prefix, _, blob = line.rpartition(" ")
    raw = base64.b64decode(blob)
    return f"{text}\n{prefix} {b64(raw[:4] + change(raw[4:]))}\n"


def strict_cases() -> dict[str, Any]:
    """Keys and signatures for strict Ed25519 (ed25519.js against hashing.ed25519): the eight
    small-order points and their non-canonical encodings, non-canonical encodings of other
    points, S >= L; and verifier keys of small order, which must not even load."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    points = {**SMALL_ORDER_CANONICAL, **SMALL_ORDER_NON_CANONICAL, **NON_CANONICAL_LARGE_ORDER}
    points["not on the curve (y = 2)"] = (2).to_bytes(32, "little")
    keys = [Ed25519PrivateKey.generate() for _ in range(8)]
    signatures: dict[str, bytes] = {}
    for n, key in enumerate(keys):
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        points[f"generated key {n}"] = raw
        signature = key.sign(f"message {n}".encode())
        points[f"R of signature {n}"] = signature[:32]
        signatures[f"signature {n}"] = signature
        for name, change in BAD_SIGNATURES.items():
            signatures[f"{name} {n}"] = change(signature)
    weak_vkeys = []
    for name, raw in {**SMALL_ORDER_CANONICAL, **SMALL_ORDER_NON_CANONICAL}.items():
        key = b"\x01" + raw
        key_hash = hashlib.sha256(b"log.example\n" + key).digest()[:4]
        weak_vkeys.append({"name": name, "vkey": f"log.example+{key_hash.hex()}+{b64(key)}"})
    return {
        "points": [
            {"name": name, "hex": raw.hex(), "valid": point_problem(raw) is None}
            for name, raw in points.items()
        ],
        "signatures": [
            {"name": name, "hex": raw.hex(), "valid": signature_problem(raw) is None}
            for name, raw in signatures.items()
        ],
        "weak_vkeys": weak_vkeys,
    }


def canonical_cases() -> list[dict[str, Any]]:
    values: dict[str, Any] = {
        "event": {"kind": "access.decided", "data": {"b": [3, 1], "a": {"z": None, "y": True}}},
        "unicode": {"患者": "张三", "emoji": "\U0001f3e5", "é": "e\u0301"},
        "escapes": {"s": 'quote " backslash \\ tab \t newline \n nul \u0000 \u001f \u2028'},
        "numbers": {"n": [0, -1, 9007199254740991, 1.5, 0.1, 1e21, 1e-7, 123456789.25]},
        "key order": {"\u20ac": 1, "\r": 2, "ö": 3, "a": 4, "\U0001f600": 5, "A": 6},
    }
    return [
        {"name": name, "json": json.dumps(value), "canonical_hex": canonical_json(value).hex()}
        for name, value in values.items()
    ]


SUBJECT = "5" * 64
NEIGHBOUR = "6" * 64


def receipt_cases() -> dict[str, Any]:
    """History entries with receipts, as the service serves them, and entries that show what
    was not logged: the page's mark (``verified`` or the failing check's code) for each."""
    signer = NoteSigner.generate("consent-ledger.local/log")
    decided = {
        "request_id": "r-1",
        "subject": SUBJECT,
        "requester": "h-east",
        "requester_type": "hospital",
        "holder": "h-west",
        "categories": ["lab-results", "imaging"],
        "purpose": "treatment",
        "decision": "permit",
        "reason": "consent-covers",
        "breakglass": False,
        "relied_on": [{"consent_id": "c-1", "leaf_index": 0}],
        "at": "2026-03-01T10:00:00.000000Z",
    }
    released = {
        **{k: v for k, v in decided.items() if k not in ("decision", "reason", "requester_type")},
        "grant_ref": "g-1",
        "decision_leaf_index": 1,
        "at": "2026-03-01T10:01:00.000000Z",
    }
    refused = {**released, "refusal": "grant-redeemed", "at": "2026-03-01T10:02:00.000000Z"}
    events: list[dict[str, Any]] = [
        {"kind": "consent.granted", "data": {"consent_id": "c-1", "subject": SUBJECT}},
        {"kind": "access.decided", "data": decided},
        {"kind": "access.released", "data": released},
        {"kind": "access.refused", "data": refused},
        {"kind": "access.decided", "data": {**decided, "subject": NEIGHBOUR, "request_id": "r-2"}},
    ]
    hashes = [leaf_hash(canonical_json(event)) for event in events]
    size = len(events)
    root = merkle_root(hashes)

    def anchored(origin: str) -> dict[str, Any]:
        log_id = "0x" + hashlib.sha256(origin.encode()).hexdigest()
        return {"tree_size": size, "root_hash": "0x" + root.hex(), "log_id": log_id}

    note = signer.sign(Checkpoint(signer.name, size, root))
    elsewhere = signer.sign(Checkpoint("other.example/log", size, root))

    def entry(index: int, **changes: Any) -> dict[str, Any]:
        kind, data = events[index]["kind"], events[index]["data"]
        served = {
            "kind": kind,
            "leaf_index": index,
            "at": data["at"],
            "request_id": data["request_id"],
            "requester": data["requester"],
            "holder": data["holder"],
            "purpose": data["purpose"],
            "categories": data["categories"],
            "decision": {"access.released": "released", "access.refused": "refused"}.get(
                kind, data.get("decision")
            ),
            "reason": data.get("reason"),
            "refusal": data.get("refusal"),
            "breakglass": data["breakglass"],
            "relied_on": data["relied_on"],
            "receipt": {
                "receipt_version": 1,
                "leaf_index": index,
                "event": events[index],
                "tree_size": size,
                "proof": [b64(h) for h in inclusion_proof(hashes, index, size)],
                "checkpoint": note,
                "anchor": {**anchored(signer.name), "block_number": 7},
            },
            "pending_anchor": False,
        }
        served.update(changes)
        return served

    other_origin = entry(1)
    other_origin["receipt"] = {
        **other_origin["receipt"],
        "checkpoint": elsewhere,
        "anchor": anchored("other.example/log"),
    }
    consent = entry(1, kind="consent.granted")
    consent["receipt"] = {**consent["receipt"], "leaf_index": 0, "event": events[0]}
    consent["leaf_index"] = 0
    cases = {
        "decision": (entry(1), "verified"),
        "release": (entry(2), "verified"),
        "refusal": (entry(3), "verified"),
        "release shown as refused": (
            entry(2, decision="refused", refusal="consent-no-longer-covers"),
            "entry-mismatch",
        ),
        "release shown as a refusal event": (
            entry(2, kind="access.refused", decision="refused", refusal="grant-redeemed"),
            "entry-mismatch",
        ),
        "permit shown as deny": (entry(1, decision="deny"), "entry-mismatch"),
        "reason changed": (entry(1, reason="no-consent"), "entry-mismatch"),
        "refusal changed": (entry(3, refusal="grant-expired"), "entry-mismatch"),
        "refusal added": (entry(2, refusal="grant-expired"), "entry-mismatch"),
        "requester changed": (entry(1, requester="h-north"), "entry-mismatch"),
        "holder changed": (entry(1, holder="h-north"), "entry-mismatch"),
        "purpose changed": (entry(1, purpose="research"), "entry-mismatch"),
        "category dropped": (entry(1, categories=["imaging"]), "entry-mismatch"),
        "time changed": (entry(1, at="2026-03-01T11:00:00Z"), "entry-mismatch"),
        "consent changed": (
            entry(1, relied_on=[{"consent_id": "c-9", "leaf_index": 0}]),
            "entry-mismatch",
        ),
        "break-glass claimed": (entry(1, breakglass=True), "entry-mismatch"),
        "another resident's": (entry(4), "subject-mismatch"),
        "a consent event": (consent, "entry-mismatch"),
        "checkpoint of another origin": (other_origin, "origin-mismatch"),
    }
    return {
        "vkey": signer.verifier().to_vkey(),
        "subject": SUBJECT,
        "cases": [
            {"name": name, "entry": served, "expected": expected}
            for name, (served, expected) in cases.items()
        ],
    }


def link_cases() -> list[dict[str, Any]]:
    """Link rel="next" headers on a list page: the app follows only those on its own origin
    (``{origin}`` is the page's), so the bearer token goes nowhere else."""
    links = {
        "relative": ("</v1/items?after=1>", True),
        "absolute, same origin": ("<{origin}/v1/items?after=1>", True),
        "path naming another host": ("<https://x//attacker.example/p>", False),
        "scheme-relative": ("<//attacker.example/p>", False),
        "backslash": ("</\\attacker.example/p>", False),
        "another origin": ("<https://attacker.example/v1/items?after=1>", False),
        "another port": ("<http://localhost:10/v1/items?after=1>", False),
        "another scheme": ("<https://localhost:9/v1/items?after=1>", False),
    }
    return [
        {"name": name, "header": f'{link}; rel="next"', "follows": follows}
        for name, (link, follows) in links.items()
    ]


def cosignature_cases() -> list[dict[str, str]]:
    """Notes with witness cosignatures and policies; Python's verdict for each."""
    log = NoteSigner.generate("consent-ledger.local/log")
    checkpoint = Checkpoint(log.name, 9, leaf_hash(b"cosigned"))
    note = log.sign(checkpoint)
    w = [CosignatureSigner.generate(f"w{i}.example/witness") for i in range(3)]
    lines = [s.cosign(checkpoint.body(), 1_700_000_000 + i) for i, s in enumerate(w)]
    stranger = CosignatureSigner.generate("w0.example/witness")  # same name, another key

    def policy(k: str) -> str:
        names = " ".join(f"w{i}" for i in range(3))
        keys = "".join(f"witness w{i} {s.verifier().to_vkey()}\n" for i, s in enumerate(w))
        return f"log {log.verifier().to_vkey()}\n{keys}group g {k} {names}\nquorum g\n"

    blob = bytearray(base64.b64decode(lines[1].split(" ")[2]))
    blob[20] ^= 1
    tampered = f"\u2014 w1.example/witness {base64.b64encode(bytes(blob)).decode()}\n"
    notes = {
        "two of three": (add_signature_lines(note, lines[:2]), "2"),
        "one, two needed": (add_signature_lines(note, lines[2:]), "2"),
        "all three": (add_signature_lines(note, lines), "all"),
        "a stranger with a witness's name": (
            add_signature_lines(note, [stranger.cosign(checkpoint.body(), 5), lines[1]]),
            "2",
        ),
        "a tampered cosignature": (add_signature_lines(note, [lines[0], tampered]), "1"),
    }
    cases = [{"name": name, "note": text, "policy": policy(k)} for name, (text, k) in notes.items()]
    two = add_signature_lines(note, lines[:2])
    cases += [{"name": name, "note": two, "policy": text} for name, text in policy_probes(policy)]
    for case in cases:
        case["expected"] = python_verdict(case["policy"], case["note"])
    return cases


def python_verdict(policy: str, note: str) -> str:
    try:
        result = parse_policy(policy).check(note)
    except PolicyFormatError:
        return "fail:policy-format"
    except SignatureError:
        return "fail:bad-cosignature"
    return f"{'met' if result.satisfied else 'not met'}:{','.join(result.cosigned)}"


def policy_probes(policy: Any) -> list[tuple[str, str]]:
    """Policies two parsers could read differently (review A item 5): each must get one verdict."""
    good = policy("2")
    lines = good.split("\n")
    w0 = lines[1].split(" ")[2]
    one_key_twice = f"witness A {w0}\nwitness B {w0}\ngroup both all A B\nquorum both\n"
    return [
        ("one witness key under two names", one_key_twice),
        ("one name for two keys", good.replace("witness w1 ", "witness w0 ")),
        ("a no-break space between items", good.replace("quorum g", "quorum\u00a0g")),
        ("an em space between items", good.replace("group g", "group\u2003g")),
        ("a next-line character", good.replace("quorum g", "quorum g\u0085")),
        ("tabs for spaces", good.replace(" ", "\t")),
        ("runs of spaces and tabs", good.replace(" ", " \t  ")),
        ("trailing spaces and tabs", good.replace("\n", " \t \n")),
        ("leading spaces", good.replace("\n", "\n   ")),
        ("CRLF line ends", good.replace("\n", "\r\n")),
        ("a vertical tab", good.replace("quorum g", "quorum\x0bg")),
        ("an empty group", good.replace("quorum g", "group e all\nquorum g")),
        ("a quorum naming an undefined group", good.replace("quorum g", "quorum h")),
        ("a k larger than the members", good.replace("group g 2 ", "group g 4 ")),
        ("k zero", good.replace("group g 2 ", "group g 0 ")),
        ("k with a leading zero", good.replace("group g 2 ", "group g 02 ")),
        ("a member listed twice", good.replace("group g 2 w0", "group g 2 w0 w0")),
        ("a member none", good.replace("group g 2 w0", "group g 2 none w0")),
        ("a group before its members", good.replace("group g 2", "group x any g\ngroup g 2")),
        (
            "a non-ASCII witness name",
            good.replace("witness w2 ", "witness w\u00e92 ").replace(" w2\n", " w\u00e92\n"),
        ),
        ("a non-ASCII comment", "# Niels M\u00f6ller\u00a0runs one\n" + good),
        ("an indented comment", "  \t# a comment\n" + good),
        ("a witness line with an extra item", good.replace(w0, f"{w0} https://w0 extra")),
        ("a witness URL", good.replace(w0, f"{w0} https://w0.example/")),
        ("a log line with a bad key", good.replace("log ", "log x", 1)),
        ("a log line with a URL", good.replace("\n", " https://log.example/\n", 1)),
        ("quorum none", good.replace("quorum g", "quorum none")),
        ("two quorum lines", good + "quorum g\n"),
        ("no quorum", good.replace("quorum g\n", "")),
        ("an unknown keyword", good + "witnesses 2\n"),
        ("quorum with two names", good.replace("quorum g", "quorum g g")),
    ]


def test_the_browser_verifies_exactly_what_python_verifies(tmp_path: Path) -> None:
    require_browser()
    vectors: dict[str, Any] = {
        "chromium": str(CHROMIUM),
        "inclusion": inclusion_cases(),
        "notes": note_cases(),
        "canonical": canonical_cases(),
        "links": link_cases(),
        "receipts": receipt_cases(),
        "cosignatures": cosignature_cases(),
        "strict": strict_cases(),
    }
    assert any(case["valid"] for case in vectors["strict"]["points"])
    assert any(case["name"].startswith("S + L") for case in vectors["notes"])
    assert any(not case["valid"] for case in vectors["inclusion"])
    assert any(case["name"].startswith("other origin") for case in vectors["notes"])
    assert any("+" in case["vkey"].split("+", 2)[2] for case in vectors["notes"])
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps(vectors), encoding="utf-8")
    done = subprocess.run(
        ["node", str(REPO / "tests" / "e2e" / "verify_vectors.mjs"), str(path)],
        cwd=REPO,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failures" in done.stdout
