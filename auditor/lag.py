"""Anchoring lag: how long a signed checkpoint stays without an anchor covering it.

A checkpoint carries no time, so the lag is measured from when this auditor first saw a
checkpoint that no anchor covered yet (an anchor of that size or larger covers it: the anchorer
may pass over a checkpoint and anchor a later one, which extends it). That is a lower bound of
the true lag; the more often the auditor runs, the tighter it is. The anchor's own time is its
block's timestamp, read from the chain.
"""

from __future__ import annotations

from collections.abc import Mapping

from .findings import FindingCode, Findings
from .state import KnownAnchor, Observation


def check_lag(
    observations: list[Observation],
    anchors: Mapping[int, KnownAnchor],
    latest_size: int | None,
    now: float,
    max_lag: float,
    findings: Findings,
) -> list[Observation]:
    """Report late and overdue anchoring; return the observations still waiting for an anchor."""
    top = max(anchors, default=0)
    pending: list[Observation] = []
    for seen in observations:
        if seen.tree_size > top:
            pending.append(seen)
            continue
        cover = anchors[min(size for size in anchors if size >= seen.tree_size)]
        lag = cover.timestamp - seen.first_seen
        if lag > max_lag:
            findings.add(
                FindingCode.ANCHOR_LAG,
                f"the checkpoint of size {seen.tree_size} was anchored (size {cover.tree_size}, "
                f"block {cover.block_number}) {lag:.0f} s after it was first seen; "
                f"the limit is {max_lag:.0f} s",
                tree_size=seen.tree_size,
            )
    waiting = {seen.tree_size for seen in pending}
    if latest_size is not None and latest_size > top and latest_size not in waiting:
        pending.append(Observation(latest_size, now))
    overdue = [seen for seen in pending if now - seen.first_seen > max_lag]
    if overdue:
        oldest = min(overdue, key=lambda seen: seen.first_seen)
        findings.add(
            FindingCode.UNANCHORED_CHECKPOINT,
            f"the checkpoint of size {oldest.tree_size}, first seen "
            f"{now - oldest.first_seen:.0f} s ago, is still not anchored (the chain's latest "
            f"anchor has size {top}); the limit is {max_lag:.0f} s",
            tree_size=oldest.tree_size,
        )
    return pending
