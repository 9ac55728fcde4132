"""The service publishes the quorum-cosigned checkpoint, and the auditor checks it: quorum
met, each witness's own view agreeing; then a fork shown to one witness caught as a split view.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from auditor.findings import FindingCode, Report
from consent_api.app import create_app
from consent_api.settings import ApiSettings
from hashing import WitnessPolicy, open_checkpoint, parse_policy, split_note
from ledger.anchor_store import AnchorStore
from ledger.log import Ledger
from ledger.receipts import build_receipt
from ledger.witnessing import Witnessing
from tests.test_auditor_deployment import LATEST, PAGE_SIZE, Deployment, deployment, pristine
from tests.witness_process import (
    WitnessProcess,
    append,
    cli,
    fork_log,
    policy_text,
    start_all,
)

__all__ = ["deployment", "pristine"]  # fixtures, imported for pytest to find


@pytest.fixture
def witnesses(tmp_path: Path, deployment: Deployment) -> Iterator[list[WitnessProcess]]:
    with deployment.ledger() as ledger:
        key = ledger.verifier.to_vkey()
    processes = [
        WitnessProcess(tmp_path / name, f"{name}.test/witness", [key])
        for name in ("regulator", "hospital", "city")
    ]
    start_all(processes)
    yield processes
    for process in processes:
        process.stop()


def policy_file(tmp_path: Path, ledger: Ledger, witnesses: list[WitnessProcess], k: str) -> Path:
    path = tmp_path / f"policy-{k}.txt"
    path.write_text(policy_text(ledger, witnesses, k))
    return path


def cosign(ledger: Ledger, policy: Path) -> int:
    sender = Witnessing(ledger, parse_policy(policy.read_text()))
    try:
        return sender.run_once()
    finally:
        sender.close()


def serve(deployment: Deployment, policy: Path) -> TestClient:
    settings = ApiSettings(
        ledger=deployment.settings.model_copy(update={"witness_policy_file": policy}),
        anchor_in_background=False,
        page_size=PAGE_SIZE,
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def audit(deployment: Deployment, policy: Path, state: Path, strict: WitnessPolicy) -> Report:
    """The deployment's audit, the service running with the log's witness policy."""
    original = deployment.serve
    deployment.serve = lambda: serve(deployment, policy)  # type: ignore[method-assign]
    try:
        return deployment.audit(state, witness_policy=strict)
    finally:
        deployment.serve = original  # type: ignore[method-assign]


def test_the_public_checkpoint_carries_the_quorum_and_the_audit_checks_it(
    deployment: Deployment, witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    with deployment.ledger() as ledger:
        policy = policy_file(tmp_path, ledger, witnesses, "2")
        strict = policy_file(tmp_path, ledger, witnesses, "all")
        with serve(deployment, policy) as client:
            # Nothing cosigned yet: nothing is published as witnessed.
            assert client.get("/v1/log/checkpoint").status_code == 404
            assert cosign(ledger, policy) == 3
            note = client.get("/v1/log/checkpoint").text
            assert client.get(f"/v1/log/checkpoints/{LATEST}").text == note
        assert open_checkpoint(note, ledger.verifier).tree_size == LATEST
        assert parse_policy(strict.read_text()).require(note).cosigned == (
            "city",
            "hospital",
            "regulator",
        )
    report = audit(deployment, policy, tmp_path / "state", parse_policy(strict.read_text()))
    assert report.findings == []
    assert report.witnesses is not None
    assert report.witnesses["cosigned_by"] == ["city", "hospital", "regulator"]
    assert report.witnesses["quorum_met"] is True
    assert {v["tree_size"] for v in report.witnesses["witness_views"].values()} == {LATEST}


def test_a_fork_shown_to_one_witness_is_caught_by_the_audit(
    deployment: Deployment, witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    with deployment.ledger() as ledger:
        policy = policy_file(tmp_path, ledger, witnesses, "2")
        assert cosign(ledger, policy) == 3
        fork = fork_log(ledger, tmp_path / "fork")
        try:
            append(fork, 3, "fork")
            fork.checkpoint()
            city_only = tmp_path / "city.txt"
            city_only.write_text(policy_text(fork, [witnesses[2]], "1"))
            assert cosign(fork, city_only) == 1  # the city now holds the fork at size 35
        finally:
            fork.close()
        append(ledger, 3, "honest")
        ledger.checkpoint()
        assert cosign(ledger, policy) == 2  # the city refuses the honest 35
        strict = parse_policy(policy_file(tmp_path, ledger, witnesses, "all").read_text())
    # Publication: the audit sees the honest checkpoint, cosigned by 2 of 3.
    report = audit(deployment, policy, tmp_path / "state", strict)
    assert FindingCode.FORK in report.codes()
    fork_finding = report.of(FindingCode.FORK)[0]
    assert fork_finding.tree_size == LATEST + 3
    assert "witness city" in fork_finding.message
    assert FindingCode.WITNESS_QUORUM in report.codes()  # 3 of 3 asked, 2 given


def test_a_receipt_carries_the_cosigned_checkpoint_and_verify_receipt_checks_it(
    deployment: Deployment, witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    size = deployment.grow(3, anchor=True, tag="-receipt")
    with deployment.ledger() as ledger:
        policy = policy_file(tmp_path, ledger, witnesses, "2")
        strict = policy_file(tmp_path, ledger, witnesses, "all")
        witnesses[1].stop()  # the hospital is down: 2 of 3 cosign
        assert cosign(ledger, policy) == 2
        receipt = build_receipt(ledger, AnchorStore(ledger.store), size - 1)
        key = ledger.verifier.to_vkey()
    assert len(split_note(receipt["checkpoint"]).lines) == 3  # the log's and two witnesses'
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    args = ["verify-receipt", str(path), "--key", key, "--offline", "--witness-policy"]
    done = cli(*args, str(policy))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)["witnesses"]
    assert out["cosigned_by"] == ["city", "regulator"]
    assert out["quorum_met"] is True
    assert set(out["cosigned_at"]) == {"city", "regulator"}
    refused = cli(*args, str(strict))
    assert refused.returncode == 1
    assert "cosignatures: witness policy not satisfied: cosigned by city, regulator" in (
        refused.stderr
    )
