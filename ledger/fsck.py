"""``fsck``: scrub the log's storage against itself, from the event bytes up.

The start-up checks (``Ledger.check_storage``) are cheap and catch a database that went back in
time; this one reads everything. Leaves: indices dense from 0 to the head, each stored leaf hash
the hash of its stored bytes. Nodes: every stored node recomputed from the leaves, none missing,
none extra. Checkpoints: each signed by the log's key, its row agreeing with its note, its root
the recomputed root at its size. The head's root, the witness (``ledger.witness``) and each
confirmed anchor's root are held against the same recomputation.

Projections of the leaves (the service's tables) are not the log's to check: callers pass
``checks`` of their own, run after the log's, which add their findings to the report and say
how much they read under ``checked``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from contracts.records import AnchorRecord
from hashing import (
    Checkpoint,
    CompactRange,
    HashingError,
    VerificationError,
    leaf_hash,
    open_checkpoint,
)

from .anchor_store import AnchorStore
from .errors import IntegrityError
from .log import Ledger
from .progress import Progress

PAGE = 5000
FINDINGS_LISTED = 100


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # leaf, node, head, checkpoint, anchor, witness, or a projection's own
    where: str
    detail: str


@dataclass
class FsckReport:
    tree_size: int = 0
    leaves_checked: int = 0
    nodes_checked: int = 0
    checkpoints_checked: int = 0
    anchors_checked: int = 0
    checked: dict[str, int] = field(default_factory=dict)  # by the callers' checks, by name
    findings: list[Finding] = field(default_factory=list)
    finding_count: int = 0

    @property
    def clean(self) -> bool:
        return self.finding_count == 0

    def add(self, kind: str, where: str, detail: str) -> None:
        self.finding_count += 1
        if len(self.findings) < FINDINGS_LISTED:
            self.findings.append(Finding(kind, where, detail))

    def to_json(self) -> str:
        body: dict[str, Any] = asdict(self)
        body["clean"] = self.clean
        body["findings_listed"] = len(self.findings)
        return json.dumps(body, indent=2, sort_keys=True)


Check = Callable[[Ledger, FsckReport], None]
"""A caller's own scrub: it reads through the ledger's store and adds to the report."""


def fsck(
    ledger: Ledger, checks: Sequence[Check] = (), *, stream: TextIO | None = None
) -> FsckReport:
    report = FsckReport()
    size, head_root = ledger.store.head()
    report.tree_size = size
    checkpoints = _checkpoint_sizes(ledger, report, size)
    try:
        witnessed = ledger.witness.read()
    except IntegrityError as exc:
        report.add("witness", str(ledger.witness.path), str(exc))
        witnessed = None
    sizes = set(checkpoints) | ({witnessed.tree_size} if witnessed is not None else set())
    roots = _scrub_tree(ledger, report, size, sizes, stream)
    if size in roots and roots[size] != head_root:
        report.add("head", f"tree_size {size}", "the head's root is not the leaves' root")
    for tree_size, (note, row_root) in checkpoints.items():
        report.checkpoints_checked += 1
        _check_checkpoint(ledger, report, tree_size, note, row_root, roots.get(tree_size))
    _check_anchors(ledger, report, checkpoints)
    if witnessed is not None:
        _check_witness(ledger, report, witnessed, size, roots)
    for check in checks:
        check(ledger, report)
    return report


def _checkpoint_sizes(
    ledger: Ledger, report: FsckReport, size: int
) -> dict[int, tuple[str, bytes]]:
    found: dict[int, tuple[str, bytes]] = {}
    after = -1
    while page := ledger.store.checkpoints(after_size=after, limit=1000):
        for checkpoint in page:
            if checkpoint.tree_size > size:
                report.add("checkpoint", f"tree_size {checkpoint.tree_size}", "past the head")
            found[checkpoint.tree_size] = (checkpoint.note, checkpoint.root_hash)
        after = page[-1].tree_size
    return found


def _scrub_tree(
    ledger: Ledger, report: FsckReport, size: int, sizes: set[int], stream: TextIO | None
) -> dict[int, bytes]:
    """Recompute the tree from the stored bytes; return its roots at ``sizes`` and ``size``."""
    progress = Progress("fsck: leaves", total=size, stream=stream)
    tree = CompactRange.from_frontier(0, [])
    roots: dict[int, bytes] = {0: tree.root()} if 0 in sizes else {}
    wanted = sorted(s for s in sizes | {size} if 0 < s <= size)
    start = 0
    while start < size:
        end = min(start + PAGE, size)
        stored = ledger.store.leaves(start, end)
        indices = [leaf.leaf_index for leaf in stored]
        if indices != list(range(start, end)):
            missing = sorted(set(range(start, end)) - set(indices))
            report.add("leaf", f"leaf_index {missing[0]}", f"{len(missing)} leaf rows missing here")
            report.leaves_checked += len(stored)
            progress.finish()
            return roots  # nothing above a gap can be recomputed
        hashes = []
        for leaf in stored:
            digest = leaf_hash(leaf.leaf_data)
            if digest != leaf.leaf_hash:
                report.add(
                    "leaf", f"leaf_index {leaf.leaf_index}", "stored hash is not of its bytes"
                )
            hashes.append(digest)
        position = start
        while position < end:  # stop at each checkpoint size for its root
            stop = next((s for s in wanted if position < s <= end), end)
            rows = tree.extend_rows(hashes[position - start : stop - start])
            _compare_nodes(ledger, report, [r for r in rows if r[0] >= 2 and not r[0] & 1])
            position = stop
            if stop in sizes or stop == size:
                roots[stop] = tree.root()
        report.leaves_checked += len(stored)
        progress.advance(len(stored))
        start = end
    if size > PAGE:
        progress.finish()
    _check_node_extent(ledger, report, size)
    return roots


def _compare_nodes(ledger: Ledger, report: FsckReport, rows: list[tuple[int, int, bytes]]) -> None:
    by_level: dict[int, list[tuple[int, bytes]]] = {}
    for level, index, digest in rows:
        by_level.setdefault(level, []).append((index, digest))
    for level, expected in by_level.items():
        first, last = min(i for i, _ in expected), max(i for i, _ in expected)
        stored = ledger.store.nodes_at_level(level, first, last)
        for index, digest in expected:
            report.nodes_checked += 1
            if index not in stored:
                report.add("node", f"level {level} index {index}", "missing")
            elif stored[index] != digest:
                report.add("node", f"level {level} index {index}", "differs from its recomputation")


def _check_node_extent(ledger: Ledger, report: FsckReport, size: int) -> None:
    count, end = ledger.store.leaf_extent()
    if end > size or count > size:
        report.add("leaf", f"leaf_index {size}", f"{count - size} leaf rows past the head")
    for level, (stored, end) in ledger.store.node_levels().items():
        full = size >> level
        if level < 2 or level & 1 or end > full or stored > full:
            report.add("node", f"level {level}", f"{stored} nodes stored, {full} in the tree")


def _check_checkpoint(
    ledger: Ledger,
    report: FsckReport,
    tree_size: int,
    note: str,
    row_root: bytes,
    recomputed: bytes | None,
) -> None:
    where = f"tree_size {tree_size}"
    try:
        checkpoint = open_checkpoint(note, ledger.verifier, ledger.origin)
    except (HashingError, VerificationError) as exc:
        report.add("checkpoint", where, f"not signed by this log's key: {exc}")
        return
    if (checkpoint.tree_size, checkpoint.root_hash) != (tree_size, row_root):
        report.add("checkpoint", where, "the row does not match its signed note")
    if recomputed is not None and checkpoint.root_hash != recomputed:
        report.add("checkpoint", where, "signed root is not the leaves' root at that size")


def _check_anchors(
    ledger: Ledger, report: FsckReport, checkpoints: dict[int, tuple[str, bytes]]
) -> None:
    anchors = AnchorStore(ledger.store)
    after = -1
    while page := anchors.confirmed(after_size=after, limit=1000):
        for anchor in page:
            report.anchors_checked += 1
            where = f"tree_size {anchor.tree_size}"
            if anchor.tree_size not in checkpoints or anchor.record is None:
                report.add("anchor", where, "confirmed without a checkpoint or record")
                continue
            if AnchorRecord.from_json(anchor.record).root_hash != checkpoints[anchor.tree_size][1]:
                report.add("anchor", where, "anchored root is not the checkpoint's")
        after = page[-1].tree_size


def _check_witness(
    ledger: Ledger, report: FsckReport, witnessed: Checkpoint, size: int, roots: dict[int, bytes]
) -> None:
    where = f"{ledger.witness.path} (tree_size {witnessed.tree_size})"
    if witnessed.tree_size > size:
        report.add("witness", where, f"the database holds {size} leaves: it went back in time")
    elif witnessed.tree_size in roots and roots[witnessed.tree_size] != witnessed.root_hash:
        report.add("witness", where, "the leaves' root at that size is not the witnessed one")
