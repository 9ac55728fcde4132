"""The integrity audit of a clean deployment: no finding, and incremental runs stay small."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from auditor.findings import FindingCode
from auditor.state import STATE_FILE, AuditorState
from ledger.anchoring import Anchorer
from ledger.errors import RollbackError
from tests.test_auditor_deployment import (
    ANCHORED,
    LATEST,
    Deployment,
    deployment,
    pristine,
    state_dir,
)

__all__ = ["deployment", "pristine", "state_dir"]  # fixtures, imported for pytest to find


def test_a_clean_deployment_gives_no_finding(deployment: Deployment, state_dir: Path) -> None:
    report = deployment.audit(state_dir)
    assert report.findings == []
    assert report.ok
    assert (report.verified_size, report.anchored_size) == (LATEST, ANCHORED[-1])
    assert report.stats.leaves_hashed == LATEST
    assert report.stats.anchors_read == len(ANCHORED)
    assert report.stats.anchor_claims_checked == len(ANCHORED)
    state = AuditorState.load(state_dir)
    assert state.verified is not None
    assert state.verified.tree_size == LATEST
    assert state.log_key == deployment.signer().verifier().to_vkey()
    assert [o.tree_size for o in state.observations] == [LATEST]  # seen, not yet anchored
    body = json.loads(report.to_json())
    assert body["ok"] is True
    assert body["verified"]["tree_size"] == LATEST


def test_an_incremental_run_fetches_and_hashes_only_the_new_leaves(
    deployment: Deployment, state_dir: Path
) -> None:
    assert deployment.audit(state_dir).ok
    deployment.grow(9, anchor=True, tag="-later")  # 41 leaves, anchored at 41
    seen: list[httpx.Request] = []
    report = deployment.audit(state_dir, seen=seen)
    assert report.findings == []
    assert report.verified_size == LATEST + 9
    assert report.stats.leaves_fetched == 9
    assert report.stats.leaves_hashed == 9
    # Only blocks after those read before: the anchors of 32 (queued until now) and 41.
    assert report.stats.anchors_read == 2
    leaf_pages = [r for r in seen if r.url.path == "/v1/log/leaves"]
    assert leaf_pages
    assert all(int(r.url.params["start"]) >= LATEST for r in leaf_pages)
    paths = {r.url.path for r in seen}
    assert "/v1/log/proof/consistency" in paths  # the new checkpoint extends the old one
    # Nothing new at all: a third run asks for no leaf.
    again = deployment.audit(state_dir)
    assert again.ok
    assert again.stats.leaves_fetched == 0


def test_a_checkpoint_left_unanchored_too_long_is_a_finding(
    deployment: Deployment, state_dir: Path
) -> None:
    now = time.time()
    first = deployment.audit(state_dir, max_anchor_lag_s=60, clock=lambda: now - 600)
    assert first.ok  # seen for the first time just now: no lag yet
    late = deployment.audit(state_dir, max_anchor_lag_s=60, clock=lambda: now)
    assert late.codes() == {FindingCode.UNANCHORED_CHECKPOINT}
    assert late.findings[0].tree_size == LATEST
    assert late.verified_size == LATEST  # lateness does not undo what was verified
    deployment.grow(1, anchor=True)
    anchored = deployment.audit(state_dir, max_anchor_lag_s=60, clock=lambda: now)
    assert anchored.codes() == {FindingCode.ANCHOR_LAG}
    assert anchored.findings[0].tree_size == LATEST
    assert deployment.audit(state_dir, max_anchor_lag_s=60).ok  # reported once, then settled


def test_the_state_file_is_written_atomically_and_pins_the_chain(
    deployment: Deployment, state_dir: Path
) -> None:
    deployment.audit(state_dir)
    assert sorted(p.name for p in state_dir.iterdir()) == [STATE_FILE]
    state = AuditorState.load(state_dir)
    assert state.contract == deployment.contract
    assert state.origin == "audit.test/log"
    assert state.scanned_to_block > 0


def test_anchors_that_arrive_below_the_verified_size_are_proven_consistent(
    deployment: Deployment, state_dir: Path
) -> None:
    deployment.grow(3, anchor=False)  # sealed at 35; 32 and 35 wait for the anchorer
    assert deployment.audit(state_dir).verified_size == LATEST + 3
    with deployment.ledger() as ledger:  # the anchorer catches up: anchors 32, then 35
        anchorer = Anchorer(ledger)
        try:
            assert [a.tree_size for a in anchorer.anchor_queued()] == [LATEST, LATEST + 3]
        finally:
            anchorer.close()
    seen: list[httpx.Request] = []
    report = deployment.audit(state_dir, seen=seen)
    assert report.findings == []
    assert report.anchored_size == LATEST + 3
    proofs = [r.url.params for r in seen if r.url.path == "/v1/log/proof/consistency"]
    assert [(p["size1"], p["size2"]) for p in proofs] == [(str(LATEST), str(LATEST + 3))]
    assert AuditorState.load(state_dir).anchors_checked_to == LATEST + 3


def test_the_service_refuses_proofs_from_a_damaged_node_and_the_audit_says_so(
    deployment: Deployment, state_dir: Path
) -> None:
    with deployment.db() as conn:
        conn.execute("UPDATE tree_node SET hash = zeroblob(32) WHERE level = 2 AND node_index = 1")
    report = deployment.audit(state_dir)
    assert report.codes() == {FindingCode.BAD_PROOF}
    assert "HTTP 503" in report.of(FindingCode.BAD_PROOF)[0].message


def test_the_service_refuses_to_serve_a_rolled_back_database(
    pristine: tuple[Deployment, Path], deployment: Deployment
) -> None:
    deployment.db_path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{deployment.db_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(pristine[1], deployment.db_path)  # the backup from when size 10 was anchored
    with pytest.raises(RollbackError, match="restored from an older backup"), deployment.serve():
        pass
