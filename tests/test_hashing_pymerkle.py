"""Differential tests against pymerkle 7, an independent RFC 6962-style implementation.

pymerkle's InmemoryTree (sha256, security left on) hashes leaves as
SHA-256(0x00 || data) and nodes as SHA-256(0x01 || left || right), counts
leaves from 1, and returns inclusion paths as [leaf hash, siblings bottom-up],
so its roots and inclusion paths must equal ours exactly. Its consistency
paths are not in RFC 9162 form (for 4 -> 7 it sends four hashes where the RFC
sends one), so for those the two libraries verify each other's proofs.
"""

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree
from pymerkle import verify_consistency as pymerkle_verify_consistency
from pymerkle import verify_inclusion as pymerkle_verify_inclusion

from hashing import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 200


def _random_tree(seed: int, size: int) -> tuple[InmemoryTree, list[bytes]]:
    rng = random.Random(seed)
    data = [rng.randbytes(rng.randrange(0, 64)) for _ in range(size)]
    tree = InmemoryTree(algorithm="sha256")
    for entry in data:
        tree.append_entry(entry)
    return tree, [leaf_hash(entry) for entry in data]


trees = st.tuples(st.integers(0, 2**32), st.integers(1, MAX_LEAVES))
DIFFERENTIAL = settings(max_examples=25, deadline=None)


@DIFFERENTIAL
@given(trees)
def test_roots_equal_pymerkle_at_every_size(tree_spec: tuple[int, int]) -> None:
    tree, leaves = _random_tree(*tree_spec)
    for size in range(len(leaves) + 1):
        assert merkle_root(leaves[:size]) == tree.get_root(size), size


@DIFFERENTIAL
@given(trees, st.randoms(use_true_random=False))
def test_inclusion_proofs_equal_pymerkle(tree_spec: tuple[int, int], rng: random.Random) -> None:
    tree, leaves = _random_tree(*tree_spec)
    for _ in range(20):
        size = rng.randint(1, len(leaves))
        index = rng.randrange(size)
        theirs = tree.prove_inclusion(index + 1, size)
        ours = inclusion_proof(leaves, index, size)
        assert theirs.path[0] == leaves[index]
        assert ours == theirs.path[1:], (index, size)
        root = tree.get_root(size)
        verify_inclusion(leaves[index], index, size, ours, root)
        pymerkle_verify_inclusion(leaves[index], merkle_root(leaves[:size]), theirs)


@DIFFERENTIAL
@given(trees, st.randoms(use_true_random=False))
def test_consistency_proofs_cross_verify_with_pymerkle(
    tree_spec: tuple[int, int], rng: random.Random
) -> None:
    tree, leaves = _random_tree(*tree_spec)
    for _ in range(20):
        size2 = rng.randint(1, len(leaves))
        size1 = rng.randint(1, size2)
        ours = consistency_proof(leaves, size1, size2)
        theirs = tree.prove_consistency(size1, size2)
        # Our proof against their roots, their proof against our roots.
        verify_consistency(size1, size2, ours, tree.get_root(size1), tree.get_root(size2))
        pymerkle_verify_consistency(
            merkle_root(leaves[:size1]), merkle_root(leaves[:size2]), theirs
        )


def test_pymerkle_is_configured_for_rfc6962_hashing() -> None:
    tree = InmemoryTree(algorithm="sha256")
    assert tree.security
    assert (tree.leaf_prefix, tree.node_prefix) == (b"\x00", b"\x01")
    tree.append_entry(b"")
    assert tree.get_root() == leaf_hash(b"")
