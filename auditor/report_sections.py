"""The report's lawfulness, activity and anchoring sections, and break-glass status at ``now``.

Shapes are fixed (another tool renders them): ``lawfulness`` counters, ``activity.accesses``
aggregated by day, parties, purpose and decision, ``activity.breakglass`` one entry per case,
``anchoring`` one entry per anchor read from the chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .findings import FindingCode, Findings
from .replay_state import Case, ReplayState
from .rules import micros
from .state import KnownAnchor

US_PER_S = 1_000_000


def lawfulness_section(state: ReplayState) -> dict[str, int]:
    counts = state.counts
    return {
        "replayed_size": state.tree_size,
        "events": counts["events"],
        "permits": counts["permits"],
        "denials": counts["denials"],
        "releases": counts["releases"],
        "breakglass": counts["breakglass"],
        "unverifiable_guardian_consents": counts["unverifiable_guardian_consents"],
    }


def case_status(case: Case, now_us: int) -> str:
    """justified, late, pending (unjustified, deadline ahead or none) or overdue."""
    justify_by, justified_at = case[4], case[5]
    deadline = None if justify_by is None else micros(justify_by)
    if justified_at is not None:
        return "late" if deadline is not None and micros(justified_at) > deadline else "justified"
    return "overdue" if deadline is not None and now_us > deadline else "pending"


def activity_section(state: ReplayState, now: float) -> dict[str, list[dict[str, Any]]]:
    now_us = int(now * US_PER_S)
    accesses = [
        {
            "day": day,
            "requester": requester,
            "holder": holder,
            "purpose": purpose,
            "decision": decision,
            "breakglass": breakglass,
            "count": count,
        }
        for (day, requester, holder, purpose, decision, breakglass), count in sorted(
            state.activity.items()
        )
    ]
    breakglass = [
        {
            "leaf_index": case[0],
            "at": case[1],
            "requester": case[2],
            "holder": case[3],
            "justify_by": case[4],
            "justified_at": case[5],
            "justification_leaf_index": case[6],
            "status": case_status(case, now_us),
        }
        for case in sorted(state.cases.values(), key=lambda c: int(c[0]))
    ]
    return {"accesses": accesses, "breakglass": breakglass}


def overdue_findings(state: ReplayState, now: float, findings: Findings) -> None:
    """A finding for each break-glass permit still unjustified past its deadline at ``now``."""
    now_us = int(now * US_PER_S)
    for case in sorted(state.cases.values(), key=lambda c: int(c[0])):
        if case_status(case, now_us) == "overdue":
            findings.add(
                FindingCode.BREAKGLASS_UNJUSTIFIED,
                f"the break-glass permit in leaf {case[0]} ({case[2]} from {case[3]} at "
                f"{case[1]}) is still unjustified; its deadline was {case[4]}",
                leaf_indices=(int(case[0]),),
            )


def anchoring_section(
    anchors: Iterable[KnownAnchor], event_time: dict[int, int] | None = None
) -> list[dict[str, Any]]:
    """Each anchor: its size, block, block time, and the lag from its last event (if known)."""
    out = []
    for anchor in sorted(anchors, key=lambda a: a.tree_size):
        last = None if event_time is None else event_time.get(anchor.tree_size)
        lag = None if last is None else round(anchor.timestamp - last / US_PER_S, 3)
        out.append(
            {
                "tree_size": anchor.tree_size,
                "block_number": anchor.block_number,
                "block_time": datetime.fromtimestamp(anchor.timestamp, UTC)
                .isoformat()
                .replace("+00:00", "Z"),
                "lag_s": lag,
            }
        )
    return out
