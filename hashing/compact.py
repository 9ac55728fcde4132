"""The right-edge frontier of a growing log: a compact range over leaves [0, size).

The range keeps one hash per set bit of ``size`` (the perfect subtrees that
cover all leaves, left to right), so appends cost O(log n) and never reread
old leaves. It follows transparency-dev/merkle ``compact.Range`` for ranges
starting at 0, the way Tessera's integrator grows its tree.
"""

import hashlib
from collections.abc import Sequence
from itertools import repeat

from hashing.errors import TreeArgumentError
from hashing.nodes import NodeID, range_nodes
from hashing.rfc6962 import EMPTY_ROOT, NODE_PREFIX, check_hash_lengths, node_hash


class CompactRange:
    """Frontier hashes of a tree of ``size`` leaves; grows by appending leaf hashes."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_frontier(cls, size: int, hashes: Sequence[bytes]) -> "CompactRange":
        """Restore a range from the hashes of ``frontier_ids(size)``, in that order."""
        if size < 0:
            raise TreeArgumentError(f"size {size} is negative")
        if len(hashes) != size.bit_count():
            raise TreeArgumentError(
                f"a tree of {size} leaves has {size.bit_count()} frontier hashes, got {len(hashes)}"
            )
        check_hash_lengths(hashes, "hashes", TreeArgumentError)
        restored = cls()
        restored._size = size
        restored._hashes = list(hashes)
        return restored

    @staticmethod
    def frontier_ids(size: int) -> list[NodeID]:
        """Return the perfect subtrees whose hashes form the frontier of ``size``, left to right."""
        return range_nodes(0, size)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def copy(self) -> "CompactRange":
        return CompactRange.from_frontier(self._size, self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[NodeID, bytes]]:
        """Append one leaf; see ``extend``."""
        return self.extend((leaf_hash,))

    def extend(self, leaf_hashes: Sequence[bytes]) -> list[tuple[NodeID, bytes]]:
        """Append leaves in order and return every perfect-subtree node they complete.

        Only nodes of level >= 1 are returned, in the order they were formed; a
        caller that stores each leaf hash at level 0 and these nodes ends up
        with every perfect subtree node of the tree. Nothing changes if any
        leaf hash is malformed.
        """
        check_hash_lengths(leaf_hashes, "leaf_hashes", TreeArgumentError)
        sha256 = hashlib.sha256
        prefix = NODE_PREFIX
        frontier = self._hashes
        push = frontier.append
        pop = frontier.pop
        completed: list[tuple[NodeID, bytes]] = []
        record = completed.append
        size = self._size
        for node in leaf_hashes:
            # Each trailing one bit of the old size is a left sibling on the
            # frontier that the new leaf completes into a parent.
            index = size
            level = 0
            while index & 1:
                node = sha256(prefix + pop() + node).digest()
                index >>= 1
                level += 1
                record((NodeID(level, index), node))
            push(node)
            size += 1
        self._size = size
        return completed

    def extend_rows(self, leaf_hashes: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
        """``extend`` for storage: the completed nodes as ``(level, index, hash)`` rows.

        The same nodes as ``extend`` returns, but level by level rather than in the order they
        were formed: each level is hashed pairwise in one comprehension, which is what makes a
        large batch cheap (the log appends in batches).
        """
        check_hash_lengths(leaf_hashes, "leaf_hashes", TreeArgumentError)
        sha256 = hashlib.sha256
        prefix = NODE_PREFIX
        size = self._size
        # The old frontier by level: hashes run left to right, i.e. from the highest set bit.
        old = dict(zip(_set_bits_descending(size), self._hashes, strict=True))
        kept: dict[int, bytes] = {}
        rows: list[tuple[int, int, bytes]] = []
        nodes = list(leaf_hashes)
        first = size  # the index, at this level, of nodes[0]
        level = 0
        while nodes:
            if first & 1:  # a left sibling waits on the frontier at this level
                nodes = [old.pop(level), *nodes]
                first -= 1
            if len(nodes) & 1:  # the last node has no right sibling yet
                kept[level] = nodes.pop()
            parents = [
                sha256(prefix + a + b).digest()
                for a, b in zip(nodes[::2], nodes[1::2], strict=True)
            ]
            first >>= 1
            level += 1
            rows.extend(zip(repeat(level), range(first, first + len(parents)), parents))
            nodes = parents
        kept.update(old)  # frontier nodes above where the new leaves reached stay as they are
        self._size = size + len(leaf_hashes)
        self._hashes = [kept[bit] for bit in _set_bits_descending(self._size)]
        return rows

    def root(self) -> bytes:
        """Return MTH of the leaves [0, size); EMPTY_ROOT when the range is empty."""
        if not self._hashes:
            return EMPTY_ROOT
        # Fold right to left: the lowest subtree joins its left neighbour first.
        root = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            root = node_hash(left, root)
        return root

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __repr__(self) -> str:
        return (
            f"CompactRange(size={self._size}, hashes=[{', '.join(h.hex() for h in self._hashes)}])"
        )


def _set_bits_descending(size: int) -> list[int]:
    return [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
