"""The apps' verification code (JavaScript, run in chromium) against the ``hashing`` package:
inclusion proofs with corrupted variants, signed checkpoints under many keys (whose base64 may
hold "+"), and canonical JSON. Python's verdict is the reference for every case."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from hashing import (
    Checkpoint,
    NoteSigner,
    VerificationError,
    canonical_json,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    open_checkpoint,
    verify_inclusion,
)
from tests.e2e.world import CHROMIUM, require_browser
from tests.paths import REPO

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
        }
        for name, variant in variants.items():
            try:
                open_checkpoint(variant, signer.verifier())
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


def test_the_browser_verifies_exactly_what_python_verifies(tmp_path: Path) -> None:
    require_browser()
    vectors = {
        "chromium": str(CHROMIUM),
        "inclusion": inclusion_cases(),
        "notes": note_cases(),
        "canonical": canonical_cases(),
    }
    assert any(not case["valid"] for case in vectors["inclusion"])
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
