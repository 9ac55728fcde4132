"""The shared test vectors: RFC 6962 section 2.1 data and transparency-dev/merkle proof probes."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from hashing import (
    CompactRange,
    ProofShapeError,
    SizeError,
    VerificationError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.paths import VECTORS

RFC6962 = json.loads((VECTORS / "rfc6962.json").read_text())
LEAVES = [leaf_hash(bytes.fromhex(data)) for data in RFC6962["leaves"]]
ROOTS = {case["tree_size"]: bytes.fromhex(case["root_hash"]) for case in RFC6962["roots"]}
PROBES = VECTORS / "transparency-dev"


def _hashes(hex_list: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in hex_list]


@pytest.mark.parametrize("case", RFC6962["roots"], ids=lambda c: f"size-{c['tree_size']}")
def test_rfc6962_roots(case: dict[str, Any]) -> None:
    size = case["tree_size"]
    expected = bytes.fromhex(case["root_hash"])
    assert merkle_root(LEAVES[:size]) == expected
    compact = CompactRange()
    compact.extend(LEAVES[:size])
    assert compact.root() == expected


@pytest.mark.parametrize(
    "case", RFC6962["inclusion"], ids=lambda c: f"leaf-{c['leaf_index']}-of-{c['tree_size']}"
)
def test_rfc6962_inclusion_proofs(case: dict[str, Any]) -> None:
    index, size, expected = case["leaf_index"], case["tree_size"], _hashes(case["proof"])
    assert inclusion_proof(LEAVES, index, size) == expected
    assert root_from_inclusion_proof(index, size, LEAVES[index], expected) == ROOTS[size]
    verify_inclusion(LEAVES[index], index, size, expected, ROOTS[size])


@pytest.mark.parametrize(
    "case", RFC6962["consistency"], ids=lambda c: f"size-{c['size1']}-to-{c['size2']}"
)
def test_rfc6962_consistency_proofs(case: dict[str, Any]) -> None:
    size1, size2, expected = case["size1"], case["size2"], _hashes(case["proof"])
    assert consistency_proof(LEAVES, size1, size2) == expected
    assert root_from_consistency_proof(size1, size2, expected, ROOTS[size1]) == ROOTS[size2]
    verify_consistency(size1, size2, expected, ROOTS[size1], ROOTS[size2])


def _probe_files(kind: str) -> list[Path]:
    files = sorted((PROBES / kind).rglob("*.json"))
    assert len(files) == 98, f"expected 98 {kind} probes, found {len(files)}"
    return files


def _probe_id(path: Path) -> str:
    return str(path.relative_to(PROBES).with_suffix(""))


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _b64_list(values: list[str] | None) -> list[bytes]:
    return [_b64(value) for value in values or []]


@pytest.mark.parametrize("path", _probe_files("inclusion"), ids=_probe_id)
def test_transparency_dev_inclusion_probe(path: Path) -> None:
    probe = json.loads(path.read_text())
    args = (
        _b64(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        _b64_list(probe["proof"]),
        _b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _probe_files("consistency"), ids=_probe_id)
def test_transparency_dev_consistency_probe(path: Path) -> None:
    probe = json.loads(path.read_text())
    args = (
        probe["size1"],
        probe["size2"],
        _b64_list(probe["proof"]),
        _b64(probe["root1"]),
        _b64(probe["root2"]),
    )
    if probe["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_probe_outcomes_are_six_passes_and_92_failures_per_kind() -> None:
    for kind in ("inclusion", "consistency"):
        outcomes = [json.loads(p.read_text())["wantErr"] for p in _probe_files(kind)]
        assert outcomes.count(False) == 6
        assert outcomes.count(True) == 92


# The upstream edge cases the vectors README calls out, pinned to their error classes.


def test_size1_zero_is_rejected_even_when_size2_is_zero() -> None:
    with pytest.raises(SizeError, match="empty tree"):
        verify_consistency(0, 0, [], ROOTS[0], ROOTS[0])


def test_equal_sizes_accept_an_empty_proof_and_equal_roots_of_any_length() -> None:
    root = b"don't care 2"
    verify_consistency(1, 1, [], root, root)
    assert root_from_consistency_proof(1, 1, [], root) == root


def test_equal_sizes_reject_a_non_empty_proof() -> None:
    with pytest.raises(ProofShapeError, match="size1 == size2"):
        verify_consistency(1, 1, [ROOTS[0]], ROOTS[0], ROOTS[0])
