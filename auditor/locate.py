"""Where served leaves stop matching a trusted root, and the second-preimage shape.

``locate_bad_leaves`` descends the RFC 9162 tree from a trusted root. At each node it needs the
hashes of the two children; it takes them from the service's inclusion proofs, or from its own
hashes of the served leaves, but believes a pair only when it hashes to the node's trusted hash
(so nothing the service says is taken on its word). It then goes into each child whose hash
from the served leaves differs. Where no pair can be authenticated (the service's stored nodes
were rewritten too) the descent stops and reports the whole node: the bad leaf is proven to lie
in that range and every leaf before it is proven good, which is all that can be known.

``find_second_preimage`` recognises a leaf whose 64 bytes are the two child hashes of an
interior node of the trusted tree: a hasher without RFC 9162's 0x00/0x01 prefixes would accept
the shortened leaf list as the same tree. Rehashing it as a leaf (0x00 prefix) gives another
hash, so the auditor rejects it; this names the attack instead of only reporting a mismatch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hashing import CompactRange, merkle_root, node_hash

#: (leaf_index, tree_size) -> the service's inclusion proof, or None if it gives none.
ProofSource = Callable[[int, int], Sequence[bytes] | None]

MAX_RANGES = 8
MAX_HYPOTHESES = 16


def split_point(size: int) -> int:
    """The largest power of two strictly below ``size`` (RFC 9162's k), for size >= 2."""
    return 1 << ((size - 1).bit_length() - 1)


def path_length(index: int, size: int) -> int:
    """Length of the RFC 9162 audit path of leaf ``index`` in a tree of ``size`` leaves."""
    length = 0
    while size > 1:
        k = split_point(size)
        if index < k:
            return length + k.bit_length()  # a perfect subtree of k leaves: log2(k) more
        index, size, length = index - k, size - k, length + 1
    return length


@dataclass
class ServedTree:
    """Served leaf hashes ``[base.size, base.size + len(hashes))`` on a trusted frontier.

    ``base`` is the compact range at a size the auditor has proven (the last verified
    checkpoint, or a root matched earlier in the run); ``hashes[offset:]`` continue it.
    """

    base: CompactRange
    hashes: Sequence[bytes]
    offset: int = 0
    _tails: dict[int, list[bytes]] = field(default_factory=dict, repr=False)

    @property
    def start(self) -> int:
        return self.base.size

    @property
    def end(self) -> int:
        return self.base.size + len(self.hashes) - self.offset

    def leaf_hashes(self, begin: int, end: int) -> Sequence[bytes]:
        return self.hashes[self.offset + begin - self.start : self.offset + end - self.start]

    def node(self, begin: int, end: int) -> bytes | None:
        """The hash of RFC tree node [begin, end) from served leaves; None inside the base.

        A node straddling the base's size is completed from the base's frontier: its part
        below that size is exactly the tail of the frontier (nodes of an RFC tree are aligned).
        """
        if end <= self.start or end > self.end:
            return None
        if begin >= self.start:
            return merkle_root(self.leaf_hashes(begin, end))
        tail = self._frontier_tail(begin)
        part = CompactRange.from_frontier(self.start - begin, tail)
        part.extend(self.leaf_hashes(self.start, end))
        return part.root()

    def _frontier_tail(self, begin: int) -> list[bytes]:
        if begin not in self._tails:
            ids = CompactRange.frontier_ids(self.start)
            self._tails[begin] = [
                h for i, h in zip(ids, self.base.hashes, strict=True) if i.coverage()[0] >= begin
            ]
        return self._tails[begin]

    def root_at(self, size: int) -> bytes:
        part = self.base.copy()
        part.extend(self.leaf_hashes(self.start, size))
        return part.root()


def locate_bad_leaves(
    served: ServedTree,
    tree_size: int,
    trusted_root: bytes,
    proofs: ProofSource,
    *,
    known: dict[tuple[int, int], bytes] | None = None,
    max_ranges: int = MAX_RANGES,
) -> list[range]:
    """Ranges of leaves, left to right, each proven to hold a served leaf that is not the
    trusted tree's; leaves before the first range are proven good. At most ``max_ranges``.

    ``known`` holds authenticated perfect subtrees by leaf range; a perfect subtree has the
    same hash in every tree that contains it, so what one trusted root authenticates helps
    locate under another (pass the same dict for each root of a run). It is extended here.
    """
    known = {} if known is None else known
    cache: dict[int, Sequence[bytes] | None] = {}

    def proof(leaf: int) -> Sequence[bytes] | None:
        if leaf not in cache:
            found = proofs(leaf, tree_size)
            ok = found is not None and len(found) == path_length(leaf, tree_size)
            cache[leaf] = found if ok else None
        return cache[leaf]

    def sibling(leaf: int, begin: int, end: int) -> bytes | None:
        # In PATH(leaf, n) the part inside node [begin, end) comes first, bottom-up; its last
        # entry is the sibling of the child holding ``leaf``.
        found = proof(leaf)
        return None if found is None else found[path_length(leaf - begin, end - begin) - 1]

    def remember(begin: int, end: int, digest: bytes) -> None:
        if (end - begin) & (end - begin - 1) == 0:  # a perfect subtree
            known[begin, end] = digest

    found: list[range] = []

    def unresolved(begin: int, end: int) -> None:
        found.append(range(max(begin, served.start), end))

    def descend(begin: int, end: int, trusted: bytes) -> None:
        remember(begin, end, trusted)
        if len(found) >= max_ranges:
            return
        if end - begin == 1:
            found.append(range(begin, end))
            return
        middle = begin + split_point(end - begin)
        ours = (served.node(begin, middle), served.node(middle, end))
        theirs = (sibling(middle, begin, end), sibling(begin, begin, end))
        pair = _authenticated(trusted, ours, theirs)
        left, right = pair or (known.get((begin, middle)), known.get((middle, end)))
        # Whether each child holds a bad leaf: None when its trusted hash is unknown.
        if middle <= served.start:
            left_bad: bool | None = False  # inside the proven base
        else:
            left_bad = None if left is None else ours[0] != left
        right_bad = None if right is None else ours[1] != right
        if left_bad is None:
            # With the left unknown, the first bad leaf may be anywhere in the node, unless
            # the right is known good: then it is in the left.
            if right_bad is False:
                unresolved(begin, middle)
            else:
                unresolved(begin, end)
            return
        if left_bad and left is not None:
            descend(begin, middle, left)
        if right_bad is None:
            if not left_bad:
                unresolved(middle, end)  # the left is good, so the right holds the bad leaf
            return
        if right_bad and right is not None:
            descend(middle, end, right)

    if served.start < tree_size <= served.end and served.node(0, tree_size) != trusted_root:
        descend(0, tree_size, trusted_root)
    return found


def _authenticated(
    trusted: bytes,
    ours: tuple[bytes | None, bytes | None],
    theirs: tuple[bytes | None, bytes | None],
) -> tuple[bytes, bytes] | None:
    """A (left, right) pair, each from us or the service, that hashes to ``trusted``."""
    for left in (theirs[0], ours[0]):
        for right in (theirs[1], ours[1]):
            if left is not None and right is not None and node_hash(left, right) == trusted:
                return left, right
    return None


def find_second_preimage(
    served: ServedTree,
    tree_size: int,
    trusted_root: bytes,
    candidates: Mapping[int, bytes] | Iterable[tuple[int, bytes]],
    *,
    max_hypotheses: int = MAX_HYPOTHESES,
) -> tuple[int, int] | None:
    """``(leaf_index, level)`` of a served 64-byte leaf that stands for an interior node.

    The served leaves reproduce ``trusted_root`` at ``tree_size`` once that leaf is read as
    the node of ``2**level`` leaves whose children are its two halves (and the leaves after it
    move up by ``2**level - 1``). ``candidates`` are served leaves of 64 bytes by index; the
    first ``max_hypotheses`` (leaf, level) shapes are tried, in leaf order.
    """
    items = candidates.items() if isinstance(candidates, Mapping) else candidates
    budget = max_hypotheses  # each costs a rehash of the leaves after the candidate
    for leaf_index, data in sorted(items):
        if len(data) != 64 or not served.start <= leaf_index < served.end:
            continue
        level = 1
        while leaf_index % (1 << level) == 0 and leaf_index + (1 << level) <= tree_size:
            resume = tree_size - (1 << level) + 1  # served leaves needed after the node
            if resume <= served.end:
                if budget == 0:
                    return None
                budget -= 1
                if _root_with_node(served, leaf_index, level, data, resume) == trusted_root:
                    return leaf_index, level
            level += 1
    return None


def _root_with_node(served: ServedTree, at: int, level: int, data: bytes, resume: int) -> bytes:
    prefix = served.base.copy()
    prefix.extend(served.leaf_hashes(served.start, at))
    # With ``at`` a multiple of 2**level, every frontier node sits at level >= ``level``: the
    # same hashes are the frontier of the tree one level up, where the node is one leaf.
    lifted = CompactRange.from_frontier(at >> level, prefix.hashes)
    lifted.append(node_hash(data[:32], data[32:]))
    joined = CompactRange.from_frontier(at + (1 << level), lifted.hashes)
    joined.extend(served.leaf_hashes(at + 1, resume))
    return joined.root()
