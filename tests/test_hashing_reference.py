"""hashing against a naive RFC 9162 section 2.1 reference: roots, proofs and proof nodes.

The reference functions transcribe MTH, PATH and PROOF/SUBPROOF from the RFC
literally (recursion, list slicing, their own SHA-256 calls) and are imported
by the other hashing test modules. Small trees are checked exhaustively, larger
ones with hypothesis.
"""

import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hashing import (
    NodeID,
    consistency_nodes,
    consistency_proof,
    inclusion_nodes,
    inclusion_proof,
    merkle_root,
    range_nodes,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 300
EXHAUSTIVE_MAX = 128

_rng = random.Random(9162)
#: Leaf data of varied length, including empty entries.
DATA = [_rng.randbytes(_rng.randrange(0, 40)) for _ in range(MAX_SIZE)]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_leaf(data: bytes) -> bytes:
    return _sha256(b"\x00" + data)


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 section 2.1.1."""
    n = len(entries)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return ref_leaf(entries[0])
    k = _split(n)
    return _sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:]))


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1."""
    n = len(entries)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 section 2.1.4.1."""
    n = len(entries)
    if m == n:
        return [] if whole else [ref_mth(entries)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], whole), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]); the RFC defines it for 0 < m < n, and it is empty for m == n."""
    return ref_subproof(m, entries, True)


def ref_node_table(entries: list[bytes]) -> dict[NodeID, bytes]:
    """The hash of every perfect subtree (leaves included) of the tree over ``entries``."""
    table = {}
    level = 0
    while 1 << level <= len(entries):
        width = 1 << level
        for index in range(len(entries) // width):
            table[NodeID(level, index)] = ref_mth(entries[index * width : (index + 1) * width])
        level += 1
    return table


LEAF_HASHES = [ref_leaf(d) for d in DATA]
REF_ROOTS = [ref_mth(DATA[:n]) for n in range(MAX_SIZE + 1)]
REF_TABLE = ref_node_table(DATA)

SLOW = settings(max_examples=100, deadline=None)


def test_root_of_every_size_matches_reference() -> None:
    for n in range(MAX_SIZE + 1):
        assert merkle_root(LEAF_HASHES[:n]) == REF_ROOTS[n], n


def _check_inclusion(index: int, size: int) -> None:
    expected = ref_path(index, DATA[:size])
    proof = inclusion_proof(LEAF_HASHES, index, size)
    assert proof == expected, (index, size)
    assert root_from_inclusion_proof(index, size, LEAF_HASHES[index], proof) == REF_ROOTS[size]
    verify_inclusion(LEAF_HASHES[index], index, size, proof, REF_ROOTS[size])


def _check_consistency(size1: int, size2: int) -> None:
    expected = ref_proof(size1, DATA[:size2])
    proof = consistency_proof(LEAF_HASHES, size1, size2)
    assert proof == expected, (size1, size2)
    assert root_from_consistency_proof(size1, size2, proof, REF_ROOTS[size1]) == REF_ROOTS[size2]
    verify_consistency(size1, size2, proof, REF_ROOTS[size1], REF_ROOTS[size2])


def test_inclusion_every_index_of_small_trees() -> None:
    for size in range(1, EXHAUSTIVE_MAX + 1):
        for index in range(size):
            _check_inclusion(index, size)


def test_consistency_every_size_pair_of_small_trees() -> None:
    for size2 in range(1, EXHAUSTIVE_MAX + 1):
        for size1 in range(1, size2 + 1):
            _check_consistency(size1, size2)


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(EXHAUSTIVE_MAX + 1, MAX_SIZE))
    return draw(st.integers(0, size - 1)), size


@st.composite
def size_pair(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(EXHAUSTIVE_MAX + 1, MAX_SIZE))
    return draw(st.integers(1, size2)), size2


@SLOW
@given(index_and_size())
def test_inclusion_large_trees(case: tuple[int, int]) -> None:
    _check_inclusion(*case)


@SLOW
@given(size_pair())
def test_consistency_large_trees(case: tuple[int, int]) -> None:
    _check_consistency(*case)


def _proof_from_nodes(ids: list[NodeID]) -> list[bytes]:
    return [REF_TABLE[node] for node in ids]


def _check_inclusion_nodes(index: int, size: int) -> None:
    nodes = inclusion_nodes(index, size)
    assert nodes.rehash(_proof_from_nodes(nodes.ids)) == ref_path(index, DATA[:size])
    assert len(nodes.ids) <= 2 * size.bit_length()


def _check_consistency_nodes(size1: int, size2: int) -> None:
    nodes = consistency_nodes(size1, size2)
    assert nodes.rehash(_proof_from_nodes(nodes.ids)) == ref_proof(size1, DATA[:size2])
    assert len(nodes.ids) <= 2 * size2.bit_length()


def test_proof_nodes_rehash_to_reference_proofs_for_small_trees() -> None:
    for size in range(1, EXHAUSTIVE_MAX + 1):
        for other in range(size):
            _check_inclusion_nodes(other, size)
            _check_consistency_nodes(other + 1, size)


@SLOW
@given(index_and_size(), size_pair())
def test_proof_nodes_rehash_to_reference_proofs_for_large_trees(
    inclusion: tuple[int, int], consistency: tuple[int, int]
) -> None:
    _check_inclusion_nodes(*inclusion)
    _check_consistency_nodes(*consistency)


def _assert_perfect_and_inside(ids: list[NodeID], size: int) -> None:
    for node in ids:
        begin, end = node.coverage()
        assert 0 <= begin < end <= size, (node, size)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**63).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_proof_nodes_stay_logarithmic_and_inside_huge_trees(case: tuple[int, int]) -> None:
    index, size = case
    incl = inclusion_nodes(index, size)
    cons = consistency_nodes(index + 1, size)
    for nodes in (incl, cons):
        _assert_perfect_and_inside(nodes.ids, size)
        assert len(nodes.ids) <= 2 * size.bit_length()
        assert 0 <= nodes.begin <= nodes.end <= len(nodes.ids)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_range_nodes_tile_the_range_with_perfect_subtrees(case: tuple[int, int]) -> None:
    begin, end = case
    position = begin
    for node in range_nodes(begin, end):
        node_begin, node_end = node.coverage()
        assert node_begin == position
        position = node_end
    assert position == end


def test_subtree_root_is_the_reference_hash_of_every_perfect_subtree() -> None:
    for node, expected in REF_TABLE.items():
        assert subtree_root(LEAF_HASHES, node) == expected
