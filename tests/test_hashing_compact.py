"""CompactRange against the RFC 9162 reference: roots, frontier, completed nodes, restore."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashing import EMPTY_ROOT, CompactRange, NodeID, TreeArgumentError
from tests.test_hashing_reference import LEAF_HASHES, MAX_SIZE, REF_ROOTS, REF_TABLE


def _grow_one_by_one(size: int) -> tuple[CompactRange, list[tuple[NodeID, bytes]]]:
    compact = CompactRange()
    completed = []
    for leaf in LEAF_HASHES[:size]:
        completed += compact.append(leaf)
    return compact, completed


def test_empty_range() -> None:
    compact = CompactRange()
    assert compact.size == 0
    assert compact.hashes == ()
    assert compact.root() == EMPTY_ROOT
    assert CompactRange.frontier_ids(0) == []


def test_append_one_by_one_matches_reference_at_every_size() -> None:
    compact = CompactRange()
    for size in range(1, MAX_SIZE + 1):
        new_nodes = compact.append(LEAF_HASHES[size - 1])
        assert compact.size == size
        assert compact.root() == REF_ROOTS[size]
        frontier = CompactRange.frontier_ids(size)
        levels = [node.level for node in frontier]
        assert levels == sorted(set(levels), reverse=True)
        assert sum(1 << level for level in levels) == size
        assert compact.hashes == tuple(REF_TABLE[node] for node in frontier)
        # Leaf size - 1 completes the nodes ending at it: one per trailing zero bit of size.
        completed_levels = range(1, (size & -size).bit_length())
        expected = [NodeID(level, (size >> level) - 1) for level in completed_levels]
        assert [node for node, _ in new_nodes] == expected
        assert all(REF_TABLE[node] == value for node, value in new_nodes)


def test_leaves_plus_completed_nodes_are_every_perfect_subtree() -> None:
    _, completed = _grow_one_by_one(MAX_SIZE)
    stored = {NodeID(0, index): leaf for index, leaf in enumerate(LEAF_HASHES)}
    for node, value in completed:
        assert node.level >= 1
        assert node not in stored, f"{node} reported twice"
        stored[node] = value
    assert stored == REF_TABLE


@st.composite
def batches(draw: st.DrawFn) -> list[int]:
    """Cut points splitting [0, size) into consecutive batches, some of them empty."""
    size = draw(st.integers(0, MAX_SIZE))
    cuts = draw(st.lists(st.integers(0, size), max_size=12))
    return [0, *sorted(cuts), size]


@settings(max_examples=80, deadline=None)
@given(batches())
def test_extend_in_batches_equals_appending_one_by_one(cuts: list[int]) -> None:
    size = cuts[-1]
    expected_range, expected_nodes = _grow_one_by_one(size)
    compact = CompactRange()
    completed = []
    for begin, end in itertools.pairwise(cuts):
        completed += compact.extend(LEAF_HASHES[begin:end])
        assert compact.root() == REF_ROOTS[end]
    assert compact == expected_range
    assert completed == expected_nodes


@settings(max_examples=80, deadline=None)
@given(st.integers(0, MAX_SIZE).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_restore_from_frontier_mid_way(case: tuple[int, int]) -> None:
    middle, size = case
    stored_frontier = [REF_TABLE[node] for node in CompactRange.frontier_ids(middle)]
    restored = CompactRange.from_frontier(middle, stored_frontier)
    assert restored.root() == REF_ROOTS[middle]
    restored_nodes = restored.extend(LEAF_HASHES[middle:size])
    straight, straight_nodes = _grow_one_by_one(size)
    assert restored == straight
    assert restored.root() == REF_ROOTS[size]
    # Only the nodes completed after the restore point are reported again.
    assert restored_nodes == [(n, h) for n, h in straight_nodes if n.coverage()[1] > middle]


def test_frontier_ids_of_a_large_size() -> None:
    size = 0b1011_0000_0000_0000_0000_0000_0000_0000_0000_0101
    ids = CompactRange.frontier_ids(size)
    assert [node.level for node in ids] == [39, 37, 36, 2, 0]
    assert ids[0].coverage() == (0, 2**39)
    assert ids[-1].coverage() == (size - 1, size)


def test_from_frontier_rejects_a_wrong_number_of_hashes() -> None:
    with pytest.raises(TreeArgumentError, match="3 frontier hashes, got 2"):
        CompactRange.from_frontier(7, LEAF_HASHES[:2])


def test_from_frontier_rejects_malformed_hashes_and_sizes() -> None:
    with pytest.raises(TreeArgumentError):
        CompactRange.from_frontier(1, [b"\x00" * 31])
    with pytest.raises(TreeArgumentError):
        CompactRange.from_frontier(-1, [])


def test_extend_rejects_a_malformed_leaf_without_changing_state() -> None:
    compact, _ = _grow_one_by_one(5)
    before = compact.copy()
    with pytest.raises(TreeArgumentError, match=r"leaf_hashes\[2\] has 33 bytes"):
        compact.extend([LEAF_HASHES[5], LEAF_HASHES[6], b"\x00" * 33])
    assert compact == before


def test_copy_is_independent() -> None:
    compact, _ = _grow_one_by_one(9)
    twin = compact.copy()
    twin.append(LEAF_HASHES[9])
    assert compact.size == 9
    assert twin.size == 10
    assert compact.root() == REF_ROOTS[9]


@settings(max_examples=80, deadline=None)
@given(batches())
def test_extend_rows_gives_the_same_nodes_and_frontier_as_extend(cuts: list[int]) -> None:
    by_rows = CompactRange()
    by_nodes = CompactRange()
    rows: list[tuple[int, int, bytes]] = []
    nodes: list[tuple[NodeID, bytes]] = []
    for begin, end in itertools.pairwise(cuts):
        rows += by_rows.extend_rows(LEAF_HASHES[begin:end])
        nodes += by_nodes.extend(LEAF_HASHES[begin:end])
        assert by_rows == by_nodes
        assert by_rows.root() == REF_ROOTS[end]
    assert sorted(rows) == sorted((n.level, n.index, h) for n, h in nodes)
    assert len(rows) == len(nodes)


def test_extend_rows_rejects_a_malformed_leaf_without_changing_state() -> None:
    compact, _ = _grow_one_by_one(5)
    before = compact.copy()
    with pytest.raises(TreeArgumentError, match=r"leaf_hashes\[2\] has 33 bytes"):
        compact.extend_rows([LEAF_HASHES[5], LEAF_HASHES[6], b"\x00" * 33])
    assert compact == before
