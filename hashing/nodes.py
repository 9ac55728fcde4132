"""Which stored tree nodes make up a proof: NodeID addressing and proof node lists.

A port of transparency-dev/merkle ``compact.NodeID``, ``compact.RangeNodes`` and
``proof.Nodes`` (RFC 9162 inclusion and consistency proofs only). A log that
stores the hash of every perfect subtree reads the hashes of ``ProofNodes.ids``
and calls ``ProofNodes.rehash`` to obtain the proof; nothing here reads storage.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hashing.errors import TreeArgumentError
from hashing.rfc6962 import check_hash_lengths, node_hash


@dataclass(frozen=True, slots=True, order=True)
class NodeID:
    """The root of the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level).

    Level 0 nodes are the leaves themselves.
    """

    level: int
    index: int

    def parent(self) -> "NodeID":
        return NodeID(self.level + 1, self.index >> 1)

    def sibling(self) -> "NodeID":
        return NodeID(self.level, self.index ^ 1)

    def coverage(self) -> tuple[int, int]:
        """Return the [begin, end) range of leaf indices under this node."""
        return self.index << self.level, (self.index + 1) << self.level


def trailing_zeros(value: int) -> int:
    """Return the number of trailing zero bits of a positive int (bits.TrailingZeros64)."""
    return (value & -value).bit_length() - 1


def _decompose(begin: int, end: int) -> tuple[int, int]:
    """Split [begin, end) into perfect subtrees, as upstream ``compact.Decompose``.

    Returns bit masks (left, right): a set bit k in ``left`` (read from low to
    high) or in ``right`` (read from high to low) is one subtree of 2**k leaves.
    """
    if begin == 0:
        return 0, end
    before = begin - 1
    # Only nodes strictly below the point where the paths to leaves begin-1
    # and end diverge lie inside the range.
    mask = (1 << ((before ^ end).bit_length() - 1)) - 1
    return ~before & mask, end & mask


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """Return the perfect subtrees that exactly cover leaves [begin, end), left to right."""
    if not 0 <= begin <= end:
        raise TreeArgumentError(f"invalid leaf range [{begin}, {end})")
    left, right = _decompose(begin, end)
    ids: list[NodeID] = []
    position = begin
    while left:
        level = trailing_zeros(left)
        ids.append(NodeID(level, position >> level))
        position += 1 << level
        left ^= 1 << level
    while right:
        level = right.bit_length() - 1
        ids.append(NodeID(level, position >> level))
        position += 1 << level
        right ^= 1 << level
    return ids


@dataclass(frozen=True)
class ProofNodes:
    """How to build a proof from stored perfect-subtree hashes.

    ``ids`` lists every stored node the proof needs, in proof order. The run
    ``ids[begin:end]`` (empty when begin == end) are the perfect subtrees under
    one ephemeral node, the root of an imperfect subtree on the right edge of
    the tree, ordered from lower to upper level; ``rehash`` folds them into it.
    """

    ids: list[NodeID]
    begin: int
    end: int

    def rehash(self, hashes: Sequence[bytes]) -> list[bytes]:
        """Turn the hashes of ``ids`` (same order) into the proof."""
        if len(hashes) != len(self.ids):
            raise TreeArgumentError(f"got {len(hashes)} hashes for {len(self.ids)} node ids")
        check_hash_lengths(hashes, "hashes", TreeArgumentError)
        if self.begin == self.end:
            return list(hashes)
        ephemeral = hashes[self.begin]
        for left in hashes[self.begin + 1 : self.end]:
            ephemeral = node_hash(left, ephemeral)
        return [*hashes[: self.begin], ephemeral, *hashes[self.end :]]

    def _skip_first(self) -> "ProofNodes":
        # The first node is the one being proven; the verifier already has its hash.
        if self.begin < self.end:
            return ProofNodes(self.ids[1:], self.begin - 1, self.end - 1)
        return ProofNodes(self.ids[1:], 0, 0)


def _nodes(index: int, level: int, size: int) -> ProofNodes:
    """Nodes proving that node (level, index) is in the tree of ``size`` leaves.

    The first id is that node itself.
    """
    # The fork is where the path from the root to (level, index) leaves the
    # path to the right edge; its sibling is the ephemeral node, if any.
    inner = (index ^ (size >> level)).bit_length() - 1
    fork = NodeID(level + inner, index >> inner)
    fork_begin, fork_end = fork.coverage()

    node = NodeID(level, index)
    ids = [node]
    while node.level < fork.level:
        ids.append(node.sibling())
        node = node.parent()
    # The nodes right of the fork make up the ephemeral node; reversed so that
    # rehash meets them from lower to upper level.
    begin = len(ids)
    ids.extend(reversed(range_nodes(fork_end, size)))
    end = len(ids)
    ids.extend(reversed(range_nodes(0, fork_begin)))
    if begin >= end:
        begin = end = 0
    return ProofNodes(ids, begin, end)


def inclusion_nodes(leaf_index: int, tree_size: int) -> ProofNodes:
    """Return the nodes of the inclusion proof for ``leaf_index`` in a tree of ``tree_size``."""
    if not 0 <= leaf_index < tree_size:
        raise TreeArgumentError(f"leaf_index {leaf_index} is not in [0, {tree_size})")
    return _nodes(leaf_index, 0, tree_size)._skip_first()


def consistency_nodes(size1: int, size2: int) -> ProofNodes:
    """Return the nodes of the consistency proof from tree size ``size1`` to ``size2``."""
    if not 0 <= size1 <= size2:
        raise TreeArgumentError(f"need 0 <= size1 <= size2, got size1={size1} size2={size2}")
    if size1 == 0:
        raise TreeArgumentError("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        return ProofNodes([], 0, 0)
    # Start from the largest perfect subtree ending at size1 and prove it is in the larger tree.
    level = trailing_zeros(size1)
    proof = _nodes((size1 - 1) >> level, level, size2)
    if size1 == 1 << level:
        # That subtree is the whole old tree, whose root the verifier already trusts.
        return proof._skip_first()
    return proof
