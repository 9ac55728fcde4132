"""Anchors: read from the chain's events (the truth), and the service's list of them (a claim).

The registry emits an ``Anchored`` event per anchor, with sizes strictly growing per log; the
auditor reads them by block range from where it stopped last time. The service's
``/v1/log/anchors`` list is never believed: each record is re-read on chain with
``verify_anchor`` (which names the first field that differs), and the checkpoint listed with it
is only kept, as one more signed commitment to a root, once the pinned key opens it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from contracts.client import AnchorRegistryClient
from contracts.errors import AnchorMismatchError
from contracts.records import AnchorRecord
from hashing import Checkpoint

from .fetch import AnchorClaim
from .findings import FindingCode, Findings
from .state import AuditorState, KnownAnchor

#: (note text, what it is) -> the checkpoint if the pinned key opens it, else None (and a finding).
OpenNote = Callable[[str, str], Checkpoint | None]


def read_chain_anchors(registry: AnchorRegistryClient, state: AuditorState, log_id: bytes) -> int:
    """Add the anchors of ``log_id`` in blocks not read before to ``state``; return how many."""
    head = registry.chain.block_number()
    start = state.scanned_to_block + 1
    if start > head:
        return 0
    known = {a.tree_size for a in state.anchors}
    records = registry.anchors(log_id, start, head)
    state.anchors.extend(_known(r) for r in records if r.tree_size not in known)
    state.anchors.sort(key=lambda a: a.tree_size)
    state.scanned_to_block = head
    return len(records)


def check_claims(
    claims: Iterable[AnchorClaim],
    registry: AnchorRegistryClient,
    log_id: bytes,
    open_note: OpenNote,
    findings: Findings,
) -> list[tuple[int, bytes, str]]:
    """Check each claimed anchor on chain; return the (size, root, source) its checkpoint signs."""
    signed: list[tuple[int, bytes, str]] = []
    for claim in claims:
        size = claim.tree_size
        what = f"the anchor the service lists for size {size}"
        try:
            record = AnchorRecord.from_dict(claim.anchor)
        except ValueError as exc:
            findings.add(
                FindingCode.ANCHOR_MISMATCH, f"{what}: {exc}", tree_size=size, field="record"
            )
            continue
        try:
            if record.tree_size != size:
                raise AnchorMismatchError("tree_size", size, record.tree_size)
            if record.log_id != log_id:
                raise AnchorMismatchError("log_id", log_id, record.log_id)
            registry.verify_anchor(record)
        except AnchorMismatchError as exc:
            findings.add(
                FindingCode.ANCHOR_MISMATCH, f"{what}: {exc}", tree_size=size, field=exc.field
            )
        source = f"the checkpoint listed with {what}"
        checkpoint = open_note(claim.checkpoint, source)
        if checkpoint is None:
            continue
        if checkpoint.tree_size != size:
            findings.add(
                FindingCode.ANCHOR_MISMATCH,
                f"{what} comes with a checkpoint of size {checkpoint.tree_size}",
                tree_size=size,
                field="tree_size",
            )
        else:
            signed.append((size, checkpoint.root_hash, source))
    return signed


def _known(record: AnchorRecord) -> KnownAnchor:
    return KnownAnchor(
        tree_size=record.tree_size,
        root_hash=record.root_hash,
        block_number=record.block_number,
        timestamp=record.timestamp,
        tx_hash=record.tx_hash,
    )
