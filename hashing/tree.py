"""Merkle tree hashes and proofs computed from a full list of leaf hashes held in memory.

For logs whose leaves fit in memory, and for tests. Storage-backed logs use
``hashing.nodes`` instead and read only the O(log n) node hashes they need.
"""

import hashlib
from collections.abc import Sequence

from hashing.errors import TreeArgumentError
from hashing.nodes import NodeID, ProofNodes, consistency_nodes, inclusion_nodes
from hashing.rfc6962 import EMPTY_ROOT, NODE_PREFIX, check_hash_lengths


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) for the given leaf hashes; EMPTY_ROOT when there are none."""
    check_hash_lengths(leaf_hashes, "leaf_hashes", TreeArgumentError)
    if not leaf_hashes:
        return EMPTY_ROOT
    # Hot loop (benchmarked at a million leaves): bind the constructor locally
    # and hash level by level without recursion or slicing.
    sha256 = hashlib.sha256
    prefix = NODE_PREFIX
    level = leaf_hashes
    while len(level) > 1:
        pairs = iter(level)
        # zip stops at the last full pair; an odd node left over is handled below.
        parents = [
            sha256(prefix + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
        if len(level) & 1:
            # RFC 9162 splits n leaves at the largest power of two below n;
            # level by level that is the same as carrying the unpaired
            # right-edge node up unchanged.
            parents.append(level[-1])
        level = parents
    return level[0]


def subtree_root(leaf_hashes: Sequence[bytes], node: NodeID) -> bytes:
    """Return the hash of the perfect subtree ``node``, which must lie within ``leaf_hashes``."""
    if node.level < 0 or node.index < 0 or node.coverage()[1] > len(leaf_hashes):
        raise TreeArgumentError(f"{node} is not inside a tree of {len(leaf_hashes)} leaves")
    begin, end = node.coverage()
    return merkle_root(leaf_hashes[begin:end])


def inclusion_proof(leaf_hashes: Sequence[bytes], leaf_index: int, tree_size: int) -> list[bytes]:
    """Return PATH(leaf_index, D[tree_size]) over ``leaf_hashes[:tree_size]``."""
    _check_tree_size(leaf_hashes, tree_size)
    return _build(leaf_hashes, inclusion_nodes(leaf_index, tree_size))


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """Return PROOF(size1, D[size2]) over ``leaf_hashes[:size2]``; empty when size1 == size2."""
    _check_tree_size(leaf_hashes, size2)
    return _build(leaf_hashes, consistency_nodes(size1, size2))


def _check_tree_size(leaf_hashes: Sequence[bytes], tree_size: int) -> None:
    if not 0 <= tree_size <= len(leaf_hashes):
        raise TreeArgumentError(
            f"tree_size {tree_size} is not in [0, {len(leaf_hashes)}], the leaves given"
        )


def _build(leaf_hashes: Sequence[bytes], nodes: ProofNodes) -> list[bytes]:
    # The same path a storage-backed log takes, with subtree hashes computed instead of read.
    return nodes.rehash([subtree_root(leaf_hashes, node) for node in nodes.ids])
