"""Inclusion and consistency proof verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2).

A port of transparency-dev/merkle ``proof/verify.go`` with its edge cases:
index >= size is rejected, size1 > size2 is rejected, size1 == 0 is rejected
even when size2 == 0, and size1 == size2 needs an empty proof and equal roots
(compared as given, whatever their length). Beyond upstream, every hash that
enters a hash computation must be 32 bytes.

``root_from_*`` compute; ``verify_*`` raise. The trusted root is always an
argument and never read from the proof.
"""

from collections.abc import Sequence

from hashing.errors import (
    IndexOutOfRangeError,
    ProofShapeError,
    RootMismatchError,
    SizeError,
)
from hashing.nodes import trailing_zeros
from hashing.rfc6962 import HASH_SIZE, check_hash_lengths, node_hash


def verify_inclusion(
    leaf_hash: bytes,
    leaf_index: int,
    tree_size: int,
    proof: Sequence[bytes],
    root_hash: bytes,
) -> None:
    """Check that ``leaf_hash`` is leaf ``leaf_index`` of the tree with ``root_hash``."""
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)
    if computed != root_hash:
        raise RootMismatchError(root_hash, computed)


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root that ``proof`` implies for ``leaf_hash`` at ``leaf_index``."""
    if not 0 <= leaf_index < tree_size:
        raise IndexOutOfRangeError(f"leaf_index {leaf_index} is not in [0, {tree_size})")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofShapeError(f"leaf_hash has {len(leaf_hash)} bytes, want {HASH_SIZE}")
    check_hash_lengths(proof, "proof", ProofShapeError)
    inner, border = _decompose_inclusion_proof(leaf_index, tree_size)
    if len(proof) != inner + border:
        raise ProofShapeError(f"wrong proof size {len(proof)}, want {inner + border}")
    seed = _chain_inner(leaf_hash, proof[:inner], leaf_index)
    return _chain_border_right(seed, proof[inner:])


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` and ``root2`` extends the one of ``size1`` and ``root1``."""
    computed = root_from_consistency_proof(size1, size2, proof, root1)
    if computed != root2:
        raise RootMismatchError(root2, computed, label="root2")


def root_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    """Check ``proof`` against ``root1`` and return the root it implies for ``size2``."""
    if size1 < 0 or size2 < size1:
        raise SizeError(f"need 0 <= size1 <= size2, got size1={size1} size2={size2}")
    if size1 == 0:
        raise SizeError("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofShapeError(f"size1 == size2 but the proof has {len(proof)} hashes")
        return root1
    if not proof:
        raise ProofShapeError("empty proof")
    if len(root1) != HASH_SIZE:
        raise ProofShapeError(f"root1 has {len(root1)} bytes, want {HASH_SIZE}")
    check_hash_lengths(proof, "proof", ProofShapeError)

    inner, border = _decompose_inclusion_proof(size1 - 1, size2)
    shift = trailing_zeros(size1)
    inner -= shift  # shift < inner whenever size1 < size2.

    # The proof starts with the root of the largest perfect subtree ending at
    # size1, unless that subtree is the whole old tree: then it is root1.
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofShapeError(f"wrong proof size {len(proof)}, want {start + inner + border}")
    path = proof[start:]
    # What remains is the tail of the inclusion proof of leaf size1 - 1 in the
    # tree of size2, starting at level ``shift``.
    mask = (size1 - 1) >> shift

    old_root = _chain_inner_right(seed, path[:inner], mask)
    old_root = _chain_border_right(old_root, path[inner:])
    if old_root != root1:
        raise RootMismatchError(root1, old_root, label="root1")

    new_root = _chain_inner(seed, path[:inner], mask)
    return _chain_border_right(new_root, path[inner:])


def _decompose_inclusion_proof(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof where the paths to ``index`` and ``size - 1`` meet.

    Returns (inner, border): the number of hashes below that point, which may
    sit on either side, and above it, which are all left siblings.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        is_right_child = (index >> level) & 1
        seed = node_hash(sibling, seed) if is_right_child else node_hash(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    # Only left siblings belong to the older, smaller tree.
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed
