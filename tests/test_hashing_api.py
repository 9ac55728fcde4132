"""The hashing package surface: exports, primitives, error families, argument checks, isolation."""

import hashlib
import subprocess
import sys
from collections.abc import Callable

import pytest

import hashing
from hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    CanonicalEncodingError,
    HashingError,
    IndexOutOfRangeError,
    KeyFormatError,
    NodeID,
    NoteContentError,
    NoteFormatError,
    ProofShapeError,
    RootMismatchError,
    SignatureError,
    SizeError,
    TreeArgumentError,
    VerificationError,
    consistency_nodes,
    consistency_proof,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    subtree_root,
)
from tests.paths import REPO
from tests.test_hashing_reference import LEAF_HASHES


def test_all_lists_every_export_and_nothing_else() -> None:
    assert sorted(hashing.__all__) == sorted(set(hashing.__all__))
    for name in hashing.__all__:
        assert hasattr(hashing, name), name


def test_rfc9162_primitives() -> None:
    assert HASH_SIZE == 32
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root([left]) == left


def test_error_families() -> None:
    for error in (
        RootMismatchError,
        ProofShapeError,
        IndexOutOfRangeError,
        SizeError,
        SignatureError,
        NoteFormatError,
    ):
        assert issubclass(error, VerificationError)
        assert not issubclass(error, HashingError)
    for error in (TreeArgumentError, CanonicalEncodingError, KeyFormatError, NoteContentError):
        assert issubclass(error, HashingError)
        assert issubclass(error, ValueError)
        assert not issubclass(error, VerificationError)


def test_root_mismatch_error_keeps_its_data() -> None:
    error = RootMismatchError(b"\x01" * 32, b"\x02" * 32, label="root2")
    assert str(error) == f"computed root2 {'02' * 32} does not match expected root2 {'01' * 32}"
    assert error.args == (b"\x01" * 32, b"\x02" * 32)


def test_merkle_root_rejects_malformed_leaf_hashes() -> None:
    with pytest.raises(TreeArgumentError, match=r"leaf_hashes\[1\] has 5 bytes"):
        merkle_root([LEAF_HASHES[0], b"hello"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inclusion_proof(LEAF_HASHES[:4], 4, 4), "leaf_index 4"),
        (lambda: inclusion_proof(LEAF_HASHES[:4], -1, 4), "leaf_index -1"),
        (lambda: inclusion_proof(LEAF_HASHES[:4], 0, 5), "tree_size 5"),
        (lambda: inclusion_proof([], 0, 0), "leaf_index 0"),
        (lambda: consistency_proof(LEAF_HASHES[:4], 3, 2), "size1 <= size2"),
        (lambda: consistency_proof(LEAF_HASHES[:4], 0, 2), "empty tree"),
        (lambda: consistency_proof(LEAF_HASHES[:4], 2, 5), "tree_size 5"),
        (lambda: inclusion_nodes(3, 3), "leaf_index 3"),
        (lambda: consistency_nodes(-1, 3), "size1"),
        (lambda: subtree_root(LEAF_HASHES[:4], NodeID(3, 0)), "not inside"),
        (lambda: subtree_root(LEAF_HASHES[:4], NodeID(-1, 0)), "not inside"),
        (lambda: inclusion_nodes(0, 3).rehash([]), "got 0 hashes for 2"),
        (lambda: inclusion_nodes(0, 2).rehash([b"short"]), r"hashes\[0\] has 5 bytes"),
    ],
    ids=[
        "index-at-size",
        "negative-index",
        "size-beyond-leaves",
        "empty-tree",
        "size1-above-size2",
        "size1-zero",
        "size2-beyond-leaves",
        "nodes-index-at-size",
        "nodes-negative-size",
        "subtree-outside",
        "subtree-negative-level",
        "rehash-count",
        "rehash-length",
    ],
)
def test_bad_arguments_to_builders_raise_tree_argument_error(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(TreeArgumentError, match=message):
        call()


def test_equal_sizes_give_an_empty_consistency_proof() -> None:
    assert consistency_proof(LEAF_HASHES[:5], 5, 5) == []
    assert consistency_nodes(5, 5).ids == []


def test_node_id_geometry() -> None:
    node = NodeID(2, 3)
    assert node.coverage() == (12, 16)
    assert node.parent() == NodeID(3, 1)
    assert node.sibling() == NodeID(2, 2)
    assert sorted([NodeID(1, 0), NodeID(0, 5)]) == [NodeID(0, 5), NodeID(1, 0)]
    assert len({NodeID(1, 1), NodeID(1, 1)}) == 1


def test_hashing_imports_nothing_else_of_ours() -> None:
    ours = ["contracts", "ledger", "consent_api", "auditor"]
    script = (
        f"import sys, hashing; print(sorted(m for m in sys.modules if m.split('.')[0] in {ours!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
