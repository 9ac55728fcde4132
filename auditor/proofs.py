"""Served proofs, checked: the inclusion proofs the service hands out must lead to roots the
auditor trusts already.

Rehashing every leaf proves the leaves; it says nothing about the tree nodes the service stores
and builds its proofs from. A damaged node makes the proofs of the leaves beside it fail for
whoever holds a receipt, while every leaf still hashes to the right root. So after the leaves,
the audit asks for inclusion proofs of a sample of the new leaves (all of them while there are
few, always the first and the last) in the tree it just verified, and checks each against that
root and the leaf's own bytes. A refused proof is a finding too: the service could not prove it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from hashing import VerificationError, verify_inclusion

from .errors import ApiStatusError, MalformedResponseError
from .fetch import LogClient
from .findings import FindingCode, Findings

DEFAULT_SAMPLE = 64


def sample_indices(start: int, size: int, budget: int, rng: random.Random) -> list[int]:
    """Leaves ``start <= index < size`` to ask proofs for: all within ``budget``, else the
    first, the last and a uniform random choice (unpredictable to the service)."""
    count = size - start
    if count <= 0 or budget <= 0:
        return []
    if count <= budget:
        return list(range(start, size))
    chosen = {start, size - 1, *rng.sample(range(start, size), max(0, budget - 2))}
    return sorted(chosen)


def check_served_proofs(
    log: LogClient,
    findings: Findings,
    leaf_hashes: dict[int, bytes],
    tree_size: int,
    root_hash: bytes,
    say: Callable[[str], None],
) -> int:
    """Check the served inclusion proof of each leaf of ``leaf_hashes`` (index -> the hash of
    the bytes served, as the audit hashed them); return how many were checked."""
    bad: list[int] = []
    for index, digest in sorted(leaf_hashes.items()):
        try:
            proof = log.inclusion_proof(index, tree_size)
            verify_inclusion(digest, index, tree_size, proof, root_hash)
        except (ApiStatusError, MalformedResponseError, VerificationError) as exc:
            bad.append(index)
            if len(bad) <= 3:
                findings.add(
                    FindingCode.BAD_PROOF,
                    f"the inclusion proof served for leaf {index} in the tree of size "
                    f"{tree_size} does not lead to the verified root: {exc}",
                    tree_size=tree_size,
                    leaf_indices=(index,),
                )
    if len(bad) > 3:
        findings.add(
            FindingCode.BAD_PROOF,
            f"{len(bad)} of {len(leaf_hashes)} sampled inclusion proofs fail (leaves {bad[:20]})",
            tree_size=tree_size,
            leaf_indices=tuple(bad[:20]),
        )
    say(f"checked {len(leaf_hashes)} served inclusion proofs in the tree of size {tree_size}")
    return len(leaf_hashes)
