"""Locating bad leaves under a trusted root, and the second-preimage shape, on in-memory trees.

The "service" here is a list of leaf hashes it builds its proofs from: honest (the tree that was
anchored), or rewritten along with the served leaves, as a database attacker would.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.locate import (
    ProofSource,
    ServedTree,
    find_second_preimage,
    locate_bad_leaves,
    path_length,
    split_point,
)
from hashing import CompactRange, inclusion_proof, leaf_hash, merkle_root, subtree_root
from hashing.nodes import NodeID, inclusion_nodes


def leaves(count: int, tag: str = "") -> list[bytes]:
    return [f"leaf {n}{tag}".encode() for n in range(count)]


def hashes_of(data: Sequence[bytes]) -> list[bytes]:
    return [leaf_hash(d) for d in data]


def prover(tree: Sequence[bytes]) -> ProofSource:
    """A service that proves from the leaf hashes ``tree`` (honest or rewritten)."""

    def prove(leaf_index: int, tree_size: int) -> list[bytes] | None:
        if tree_size > len(tree):
            return None
        return inclusion_proof(tree, leaf_index, tree_size)

    return prove


def storage_prover(honest: Sequence[bytes], rewritten: Sequence[bytes]) -> ProofSource:
    """A service like ``ledger.store``: levels 0 and 1 come from the (rewritten) leaf rows,
    even levels >= 2 from stored nodes the attacker left alone."""

    def prove(leaf_index: int, tree_size: int) -> list[bytes]:
        nodes = inclusion_nodes(leaf_index, tree_size)
        hashes = [
            subtree_root(honest if node.level >= 2 else rewritten, node) for node in nodes.ids
        ]
        return nodes.rehash(hashes)

    return prove


def served_from(served: Sequence[bytes], base_size: int = 0) -> ServedTree:
    base = CompactRange()
    base.extend(served[:base_size])
    return ServedTree(base, served[base_size:])


@pytest.mark.parametrize("size", [*range(1, 40), 64, 65, 100, 1000])
def test_path_length_is_the_proof_length(size: int) -> None:
    tree = hashes_of(leaves(size))
    for index in {0, size // 3, size // 2, size - 1}:
        assert path_length(index, size) == len(inclusion_proof(tree, index, size))


def test_a_proof_carries_each_split_sibling_where_locate_reads_it() -> None:
    size = 45
    tree = hashes_of(leaves(size))

    def check(begin: int, end: int) -> None:
        if end - begin < 2:
            return
        middle = begin + split_point(end - begin)
        right_proof = inclusion_proof(tree, begin, size)
        left_proof = inclusion_proof(tree, middle, size)
        assert right_proof[path_length(0, end - begin) - 1] == merkle_root(tree[middle:end])
        assert left_proof[path_length(middle - begin, end - begin) - 1] == merkle_root(
            tree[begin:middle]
        )
        check(begin, middle)
        check(middle, end)

    check(0, size)


def test_served_node_straddling_the_trusted_base_is_completed_from_the_frontier() -> None:
    tree = hashes_of(leaves(37))
    served = served_from(tree, base_size=21)
    assert served.node(16, 32) == subtree_root(tree, NodeID(4, 1))
    assert served.node(20, 24) == subtree_root(tree, NodeID(2, 5))
    assert served.node(32, 37) == merkle_root(tree[32:37])
    assert served.node(0, 37) == merkle_root(tree)
    assert served.node(0, 16) is None  # inside the trusted base: nothing to compute
    assert served.root_at(30) == merkle_root(tree[:30])


def test_clean_leaves_locate_nothing() -> None:
    tree = hashes_of(leaves(20))
    assert locate_bad_leaves(served_from(tree), 20, merkle_root(tree), prover(tree)) == []


def test_a_rewritten_leaf_is_found_exactly_when_the_service_nodes_are_honest() -> None:
    honest = hashes_of(leaves(27))
    served = list(honest)
    served[13] = leaf_hash(b"rewritten")
    found = locate_bad_leaves(served_from(served), 27, merkle_root(honest), prover(honest))
    assert found == [range(13, 14)]


def test_a_rewritten_leaf_row_is_bounded_to_the_nodes_its_storage_still_proves() -> None:
    honest = hashes_of(leaves(27))
    served = list(honest)
    served[13] = leaf_hash(b"rewritten")
    # The leaf row's hash was rewritten too: the service's level-1 node over it is wrong, so
    # the descent stops at the stored level-2 node [12, 16) instead of guessing inside it.
    prove = storage_prover(honest, served)
    found = locate_bad_leaves(served_from(served), 27, merkle_root(honest), prove)
    assert found == [range(12, 16)]


def test_a_service_that_rewrote_every_node_proves_nothing_about_the_leaf() -> None:
    honest = hashes_of(leaves(27))
    served = list(honest)
    served[13] = leaf_hash(b"rewritten")
    found = locate_bad_leaves(served_from(served), 27, merkle_root(honest), prover(served))
    assert found == [range(0, 27)]


def test_swapped_leaves_are_both_found() -> None:
    honest = hashes_of(leaves(40))
    served = list(honest)
    served[5], served[30] = served[30], served[5]
    found = locate_bad_leaves(served_from(served), 40, merkle_root(honest), prover(honest))
    assert found == [range(5, 6), range(30, 31)]


def test_a_service_that_proves_nothing_leaves_the_whole_new_range() -> None:
    honest = hashes_of(leaves(30))
    served = list(honest)
    served[25] = leaf_hash(b"x")
    found = locate_bad_leaves(
        served_from(served, base_size=17), 30, merkle_root(honest), lambda i, n: None
    )
    assert found == [range(17, 30)]  # leaves below the trusted base are never blamed


def test_lying_proofs_cannot_blame_a_good_leaf_exactly() -> None:
    honest = hashes_of(leaves(16))
    served = list(honest)
    served[9] = leaf_hash(b"x")

    def liar(leaf_index: int, tree_size: int) -> list[bytes]:
        return [leaf_hash(b"lie")] * path_length(leaf_index, tree_size)

    found = locate_bad_leaves(served_from(served), 16, merkle_root(honest), liar)
    # Without authentic help only the pairs from the served leaves themselves can be checked.
    assert all(9 in r or r.start <= 9 for r in found)
    assert found[0].start <= 9 < found[0].stop


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_first_bad_leaf_is_exact_with_honest_proofs(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 70), label="size")
    base = data.draw(st.integers(0, size - 1), label="base")
    bad = data.draw(st.integers(base, size - 1), label="bad")
    honest = hashes_of(leaves(size))
    served = list(honest)
    served[bad] = leaf_hash(b"tampered")
    found = locate_bad_leaves(served_from(served, base), size, merkle_root(honest), prover(honest))
    assert found == [range(bad, bad + 1)]


@pytest.mark.parametrize(("size", "at", "level"), [(20, 6, 1), (20, 8, 2), (33, 16, 3), (9, 0, 3)])
def test_an_interior_node_offered_as_a_leaf_is_named(size: int, at: int, level: int) -> None:
    data = leaves(size)
    honest = hashes_of(data)
    span = 1 << level
    node = subtree_root(honest, NodeID(level, at >> level))
    children = (
        subtree_root(honest, NodeID(level - 1, (at >> (level - 1)))),
        subtree_root(honest, NodeID(level - 1, (at >> (level - 1)) + 1)),
    )
    preimage = children[0] + children[1]
    served_data = [*data[:at], preimage, *data[at + span :]]
    served = hashes_of(served_data)
    # Rehashed as a leaf (0x00) the preimage is not the node (0x01): the root does not match.
    assert leaf_hash(preimage) != node
    assert merkle_root(served) != merkle_root(honest)
    found = find_second_preimage(
        served_from(served), size, merkle_root(honest), {size - span: b"short", at: preimage}
    )
    assert found == (at, level)


def test_a_64_byte_leaf_that_is_no_interior_node_is_not_named() -> None:
    data = leaves(12)
    data[4] = bytes(range(64))
    served = hashes_of(data)
    honest = hashes_of(leaves(12))
    assert find_second_preimage(served_from(served), 12, merkle_root(honest), {4: data[4]}) is None


def test_second_preimage_hypotheses_are_bounded() -> None:
    data = leaves(40)
    honest = hashes_of(data)
    preimage = honest[30] + honest[31]
    served_data = [*data[:30], preimage, *data[32:]]
    decoys = {n: bytes(64) for n in range(0, 30, 2)}
    served = served_from(hashes_of(served_data))
    root = merkle_root(honest)
    assert find_second_preimage(served, 40, root, {**decoys, 30: preimage}) is None
    assert find_second_preimage(served, 40, root, {**decoys, 30: preimage}, max_hypotheses=99)


def test_subtrees_authenticated_under_one_root_locate_under_another() -> None:
    honest = hashes_of(leaves(32))
    served = list(honest)
    served[3], served[24] = served[24], served[3]
    prove = storage_prover(honest, served)
    tree = served_from(served)
    # Alone, the tree of 27 cannot be split: its right part [16, 27) needs the rewritten [24, 26).
    assert locate_bad_leaves(tree, 27, merkle_root(honest[:27]), prove) == [range(0, 27)]
    known: dict[tuple[int, int], bytes] = {}
    assert locate_bad_leaves(tree, 32, merkle_root(honest), prove, known=known) == [
        range(0, 4),
        range(24, 28),
    ]
    assert known[0, 16] == merkle_root(honest[:16])
    # [0, 16) is the same subtree in both trees: the first bad range is found under 27 too.
    assert locate_bad_leaves(tree, 27, merkle_root(honest[:27]), prove, known=known) == [
        range(0, 4)
    ]


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_located_ranges_are_sound_whatever_the_service_proves(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 64), label="size")
    base = data.draw(st.integers(0, size - 1), label="base")
    bad = sorted(data.draw(st.sets(st.integers(base, size - 1), min_size=1, max_size=3)))
    honest = hashes_of(leaves(size))
    served = list(honest)
    for index in bad:
        served[index] = leaf_hash(b"tampered %d" % index)
    service = data.draw(st.sampled_from(["honest", "storage", "rewritten", "silent"]))
    prove = {
        "honest": prover(honest),
        "storage": storage_prover(honest, served),
        "rewritten": prover(served),
        "silent": lambda i, n: None,
    }[service]
    found = locate_bad_leaves(served_from(served, base), size, merkle_root(honest), prove)
    assert found
    assert bad[0] in found[0]  # leaves before the first range are good, and it holds a bad one
    for located in found:
        assert any(index in located for index in bad)
        assert located.start >= base
    if service == "honest":
        assert found == [range(i, i + 1) for i in bad]
