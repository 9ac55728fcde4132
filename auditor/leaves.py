"""Rehashing the served leaves against every root committed for a size above the verified one.

The leaves are fetched once, from the verified size up to the largest committed size, and
hashed here with the RFC 9162 leaf prefix (a leaf hash is never taken from the service). At each
committed size the compact range's root must equal every root committed for it (the chain's
anchor, the signed checkpoints); where it does not, ``auditor.locate`` finds the bad leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hashing import CompactRange, leaf_hash

from .errors import ApiStatusError, MalformedResponseError
from .fetch import LogClient
from .findings import FindingCode, Findings
from .locate import ServedTree, find_second_preimage, locate_bad_leaves

#: Roots committed for one tree size: root -> where each came from.
Roots = dict[bytes, list[str]]

MAX_LISTED_RANGE = 16  # a located range longer than this is listed by its first leaf only
MAX_PREIMAGE_CANDIDATES = 16
PROGRESS_EVERY = 100_000


@dataclass
class LeafCheck:
    log: LogClient
    findings: Findings
    say: Callable[[str], None]
    leaves_hashed: int = 0
    computed: dict[int, bytes] = field(default_factory=dict)  # root of the served leaves, by size
    # Perfect subtrees authenticated under one trusted root, to locate under the others.
    authenticated: dict[tuple[int, int], bytes] = field(default_factory=dict)
    forked: bool = False
    # The hashes of the leaves served from ``base.size`` on, as hashed here (``auditor.proofs``).
    hashes: list[bytes] = field(default_factory=list)

    def run(self, base: CompactRange, targets: dict[int, Roots]) -> dict[int, tuple[bytes, ...]]:
        """Check the leaves after ``base`` against ``targets`` (sizes above ``base.size``).

        Returns the frontier at each target size the served leaves reached.
        """
        start = base.size
        end = max(targets)
        self.forked = any(len(roots) > 1 for roots in targets.values())
        self.say(f"hashing leaves {start}..{end}")
        hashes, odd = self._fetch(start, end)
        self.hashes = hashes
        self.leaves_hashed += len(hashes)
        served = ServedTree(base, hashes)
        frontier = base.copy()
        frontiers: dict[int, tuple[bytes, ...]] = {}
        for size in sorted(targets):
            roots = targets[size]
            if size > served.end:
                sources = ", ".join(s for group in roots.values() for s in group)
                self.findings.add(
                    FindingCode.TRUNCATED,
                    f"the service serves leaves up to {served.end} only; the tree of size "
                    f"{size} ({sources}) has {size}",
                    tree_size=size,
                )
                for root, sources_of in roots.items():
                    self._second_preimage(served, size, root, sources_of, odd)
                break
            # ``extend_rows``: the same frontier as ``extend``, hashed level by level, about 4x
            # faster on a large range (the nodes it returns are for storage, not needed here).
            frontier.extend_rows(served.leaf_hashes(frontier.size, size))
            computed = self.computed[size] = frontier.root()
            frontiers[size] = frontier.hashes
            for root, sources_of in roots.items():
                if root != computed:
                    self._mismatch(served, size, root, sources_of, odd)
            if all(root == computed for root in roots):
                # The leaves up to here are proven: later mismatches are located above them.
                served = ServedTree(frontier.copy(), hashes, size - start)
        return frontiers

    def _fetch(self, start: int, end: int) -> tuple[list[bytes], dict[int, bytes]]:
        hashes: list[bytes] = []
        odd: dict[int, bytes] = {}  # 64-byte leaves: the shape of an interior node's preimage
        append, hash_leaf = hashes.append, leaf_hash  # the loop runs once per leaf of the log
        expected = start
        for leaf in self.log.leaves(start, end):
            data = leaf.leaf_data
            if leaf.leaf_index != expected:
                self.findings.add(
                    FindingCode.LEAVES_MISMATCH,
                    f"leaf {expected} is missing from the leaves served (the next served is "
                    f"{leaf.leaf_index})",
                    leaf_indices=(expected,),
                )
                break
            append(hash_leaf(data))
            if len(data) == 64 and len(odd) < MAX_PREIMAGE_CANDIDATES:
                odd[expected] = data
            expected += 1
            if expected % PROGRESS_EVERY == 0:
                self.say(f"  {expected} of {end} leaves")
        return hashes, odd

    def _mismatch(
        self, served: ServedTree, size: int, root: bytes, sources: list[str], odd: dict[int, bytes]
    ) -> None:
        if self._second_preimage(served, size, root, sources, odd):
            return
        # Subtrees authenticated under one root are reused under another only while no size
        # has two roots: a forked log could otherwise lend one branch's nodes to the other.
        known = self.authenticated if not self.forked else None
        ranges = locate_bad_leaves(served, size, root, self._proof, known=known)
        listed = [
            index
            for found in ranges
            for index in (found if len(found) <= MAX_LISTED_RANGE else (found.start,))
        ]
        where = "; ".join(f"[{r.start}, {r.stop})" for r in ranges) or "none located"
        first = ranges[0].start if ranges else served.start
        proven = f"the leaves below {first} are proven, and " if first else ""
        self.findings.add(
            FindingCode.LEAVES_MISMATCH,
            f"the leaves served do not hash to the root {root.hex()[:16]}… of size {size} "
            f"({', '.join(sources)}); {proven}each of these ranges holds a served leaf that is "
            f"not the tree's: {where}",
            leaf_indices=tuple(listed),
            tree_size=size,
        )

    def _second_preimage(
        self, served: ServedTree, size: int, root: bytes, sources: list[str], odd: dict[int, bytes]
    ) -> bool:
        hit = find_second_preimage(served, size, root, odd)
        if hit is None:
            return False
        index, level = hit
        self.findings.add(
            FindingCode.SECOND_PREIMAGE,
            f"leaf {index} is the 64-byte preimage of an interior node over {1 << level} leaves "
            f"of the tree of size {size} ({', '.join(sources)}): as a leaf it hashes, with the "
            "0x00 prefix, to another value than the node, so the served leaves are rejected",
            leaf_indices=(index,),
            tree_size=size,
        )
        return True

    def _proof(self, leaf_index: int, tree_size: int) -> list[bytes] | None:
        try:
            return self.log.inclusion_proof(leaf_index, tree_size)
        except (ApiStatusError, MalformedResponseError):
            return None  # the service cannot prove it: the descent stops there
