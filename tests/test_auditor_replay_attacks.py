"""Named attacks on the lawfulness of a running deployment, each caught by a named finding.

Each test takes a copy of the clean platform of ``test_auditor_replay_deployment`` (a real
``consent-ledger serve`` on SQLite, anchored on the embedded chain), changes what it logs or
serves as a dishonest operator could, anchors it when the attack is one the operator would
anchor (so integrity alone passes), and runs the auditor.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.findings import FindingCode, Report
from auditor.integrity import audit_integrity
from auditor.lawfulness import Lawfulness
from contracts.chain import connect
from hashing import leaf_hash
from tests.test_auditor_replay_deployment import Platform, copy, platform, report_of

__all__ = ["copy", "platform"]  # fixtures, imported for pytest to find

Event = tuple[str, dict[str, Any]]


def first(events: list[Event], kind: str, **match: Any) -> tuple[int, dict[str, Any]]:
    return next(
        (n, data)
        for n, (k, data) in enumerate(events)
        if k == kind and all(data.get(key) == value for key, value in match.items())
    )


def append(platform: Platform, events: list[Event]) -> list[int]:
    """Log ``events`` through the ledger's own append path (the service is down), then anchor;
    return their leaf indices."""
    with platform.ledger() as ledger:
        start = ledger.tree_size()
        ledger.append_many(events)
    platform.anchor()
    return list(range(start, start + len(events)))


def audit(platform: Platform, state: Path) -> tuple[int, dict[str, Any]]:
    with platform.serve() as session:
        code = main(platform.audit_args(session.url, state, "--token", platform.regulator))
    return code, report_of(state)


def found(report: dict[str, Any]) -> dict[str, list[list[int]]]:
    out: dict[str, list[list[int]]] = {}
    for finding in report["findings"]:
        out.setdefault(finding["code"], []).append(finding.get("leaf_indices", []))
    return out


def shifted(instant: str, seconds: float) -> str:
    at = datetime.fromisoformat(instant) + timedelta(seconds=seconds)
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- (a) a permit recorded without a covering consent -------------------------------------------


def test_a_permit_recorded_without_a_covering_consent(copy: Platform, tmp_path: Path) -> None:
    events = copy.events()
    _, permit = first(events, "access.decided", decision="permit", subject=copy.subjects["ana"])
    forged = {
        **permit,
        "request_id": "forged-1",
        "categories": ["discharge-summaries"],  # ana never granted these
        "at": shifted(permit["at"], 60),
        "grant_expires_at": shifted(permit["grant_expires_at"], 60),
    }
    (index,) = append(copy, [("access.decided", forged)])
    code, report = audit(copy, tmp_path / "state")
    assert code == 1
    assert found(report) == {"uncovered-permit": [[index]]}
    assert report["lawfulness"]["replayed_size"] == index + 1  # integrity passed: replayed


# -- (b) a revocation dropped -------------------------------------------------------------------


def drop_leaf(platform: Platform, dropped: int, *, filler: bool) -> None:
    """Serve the log without leaf ``dropped`` (later leaves move up; ``filler`` keeps the size
    by repeating the last leaf at the end)."""
    with sqlite3.connect(platform.data_dir / "ledger.db") as conn:
        rows = conn.execute(
            "SELECT leaf_index, leaf_data FROM leaf WHERE leaf_index > ? ORDER BY leaf_index",
            (dropped,),
        ).fetchall()
        moved = [(index - 1, bytes(data)) for index, data in rows]
        if filler:
            moved.append((rows[-1][0], bytes(rows[-1][1])))
        conn.execute("DELETE FROM leaf WHERE leaf_index >= ?", (dropped,))
        conn.executemany(
            "INSERT INTO leaf (leaf_index, kind, leaf_data, leaf_hash, appended_at) "
            "VALUES (?, 'x', ?, ?, 0)",
            [(index, data, leaf_hash(data)) for index, data in moved],
        )


@pytest.mark.parametrize("filler", [False, True], ids=["shorter", "same-size"])
def test_a_revocation_dropped_from_the_served_leaves(
    copy: Platform, tmp_path: Path, filler: bool
) -> None:
    """The operator serves its anchored log without the revocation."""
    revocation, _ = first(copy.events(), "consent.revoked")
    size = len(copy.events())
    drop_leaf(copy, revocation, filler=filler)
    copy.attackers_build = True  # the real service would refuse this database
    code, report = audit(copy, tmp_path / "state")
    assert code == 1
    # Same size: the leaves do not hash to the anchored root (the service's stored nodes no
    # longer match its leaves, so the range cannot be narrowed by its proofs). Shorter: the
    # service serves fewer leaves than the chain anchored.
    (finding,) = report["findings"]
    assert finding["code"] == ("leaves-mismatch" if filler else "truncated")
    assert finding["tree_size"] == size
    # Nothing unverified is judged: the replay waits until the served leaves check.
    assert report["lawfulness"]["replayed_size"] == 0


def test_a_revocation_left_out_of_a_rewritten_history(platform: Platform, tmp_path: Path) -> None:
    """The operator rewrites its log without the revocation before anchoring it: the chain
    and the signatures then vouch for the rewritten log, but the later events still name the
    leaves where they were, and those are no longer what they say."""
    unanchored = platform.root.parent / "unanchored"
    snapshot = Platform(unanchored, "", platform.keys, platform.subjects, platform.regulator)
    original = snapshot.copy_to(tmp_path / "platform")
    events = original.events()
    revocation, _ = first(events, "consent.revoked")
    for path in original.data_dir.glob("ledger.db*"):
        path.unlink()
    kept = events[:revocation] + events[revocation + 1 :]
    append(original, kept)
    code, report = audit(original, tmp_path / "state")
    assert code == 1
    codes = found(report)
    assert set(codes) == {"bad-reference"}  # no integrity finding: only the replay sees it
    flagged = sorted({index for indices in codes["bad-reference"] for index in indices})
    # The denial that relied on the revoked record, the break-glass release and justification.
    assert flagged[0] >= revocation
    assert len(codes["bad-reference"]) >= 3


# -- (c) a grant redeemed twice, and after expiry -----------------------------------------------


def test_a_grant_redeemed_twice_and_one_after_expiry(copy: Platform, tmp_path: Path) -> None:
    events = copy.events()
    release_index, release = first(events, "access.released", subject=copy.subjects["ana"])
    permit_index = release["decision_leaf_index"]
    permit = events[permit_index][1]
    again = {**release, "at": shifted(release["at"], 1)}
    unredeemed = {**permit, "request_id": "late-1"}
    late = {
        **release,
        "request_id": "late-1",
        "at": shifted(permit["grant_expires_at"], 1),
    }
    reused, late_permit, late_release = _append_late(copy, again, unredeemed, late)
    code, report = audit(copy, tmp_path / "state")
    assert code == 1
    assert found(report) == {
        "grant-reused": [[permit_index, release_index, reused]],
        "grant-expired": [[late_permit, late_release]],
    }


def _append_late(
    platform: Platform, again: dict[str, Any], permit: dict[str, Any], late: dict[str, Any]
) -> tuple[int, int, int]:
    with platform.ledger() as ledger:
        start = ledger.tree_size()
    late = {**late, "decision_leaf_index": start + 1}
    reused, late_permit, late_release = append(
        platform,
        [("access.released", again), ("access.decided", permit), ("access.released", late)],
    )
    return reused, late_permit, late_release


# -- (d) a break-glass never justified ----------------------------------------------------------


def test_an_overdue_breakglass(copy: Platform, tmp_path: Path) -> None:
    with copy.serve() as session:
        emergency = session.request(
            "h-beta", "ana", "h-alpha", ["emergency-trauma"], "emergency", emergency=True
        )
        assert emergency["breakglass"] is True
    copy.anchor()
    justify_by = datetime.fromisoformat(emergency["justify_by"]).timestamp()

    def run(state: Path, now: float) -> Report:
        with copy.serve() as session, connect(data_dir=copy.settings.chain_dir) as chain:
            return audit_integrity(
                session.url,
                chain,
                copy.contract,
                state,
                max_anchor_lag_s=10 * 86_400,
                clock=lambda: now,
                lawfulness=Lawfulness(state, token=copy.regulator),
            )

    today = run(tmp_path / "today", time.time())
    assert today.ok
    assert today.activity is not None
    assert [c["status"] for c in today.activity["breakglass"]] == ["justified", "pending"]
    later = run(tmp_path / "later", justify_by + 1)
    assert later.codes() == {FindingCode.BREAKGLASS_UNJUSTIFIED}
    (finding,) = later.findings
    assert finding.leaf_indices == (emergency["leaf_index"],)
    assert later.activity is not None
    assert later.activity["breakglass"][1]["status"] == "overdue"


# -- the state directory ------------------------------------------------------------------------


def test_a_damaged_or_mismatched_replay_state_stops_the_audit(
    copy: Platform, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    assert audit(copy, state)[0] == 0
    (blob,) = state.glob("replay-*.bin")
    original = blob.read_bytes()
    blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    assert audit(copy, state)[0] == 2  # the hash the state file recorded differs
    blob.write_bytes(original)
    state_file = state / "auditor-state.json"
    recorded = json.loads(state_file.read_text())
    recorded["replay"]["tree_size"] -= 1
    state_file.write_text(json.dumps(recorded))
    assert audit(copy, state)[0] == 2  # not the verified size
    recorded["replay"]["tree_size"] += 1
    state_file.write_text(json.dumps(recorded))
    assert audit(copy, state)[0] == 0
