"""``auditor resident``: every access to one resident's records, each leaf proven, complete up to
an anchored checkpoint, on the real deployment of ``test_auditor_replay_deployment``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from tests.test_auditor_replay_deployment import LAB, Platform, copy, platform

__all__ = ["copy", "platform"]  # fixtures, imported for pytest to find


def resident(
    platform: Platform, url: str, state: Path, subject: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    args = platform.audit_args(url, state, "--token", platform.regulator)
    capsys.readouterr()
    code = main(["resident", *args, "--subject", subject])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def accesses_about(platform: Platform, subject: str) -> list[int]:
    return [
        n
        for n, (kind, data) in enumerate(platform.events())
        if kind.startswith("access.") and data["subject"] == subject
    ]


def test_every_access_is_listed_and_proven_up_to_the_anchor(
    copy: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ana = copy.subjects["ana"]
    with copy.serve() as session:
        code, document = resident(copy, session.url, tmp_path / "state", ana, capsys)
    assert code == 0
    expected = accesses_about(copy, ana)
    assert len(expected) == 6  # 4 decisions, 2 releases
    assert [entry["leaf_index"] for entry in document["accesses"]] == expected
    size = len(copy.events())
    assert document["complete_up_to_anchored_size"] == size == document["replayed_size"]
    assert document["anchor"]["tree_size"] == size
    assert all(entry["proven"] and entry["anchored"] for entry in document["accesses"])
    assert all(entry["proven_in_tree_size"] == size for entry in document["accesses"])
    kinds = [entry["kind"] for entry in document["accesses"]]
    assert kinds.count("access.released") == 2
    assert {entry["requester"] for entry in document["accesses"]} == {"h-beta", "cl-gamma"}


def test_the_newest_accesses_are_proven_to_the_signed_checkpoint_until_anchored(
    copy: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ana = copy.subjects["ana"]
    anchored = len(copy.events())
    with copy.serve() as session:
        decided = session.request("h-beta", "ana", "h-alpha", LAB, "treatment")
    with copy.ledger() as ledger:
        signed = ledger.checkpoint().tree_size  # sealed and signed, not anchored yet
    with copy.serve() as session:
        code, document = resident(copy, session.url, tmp_path / "state", ana, capsys)
    assert code == 0
    newest = document["accesses"][-1]
    assert newest["leaf_index"] == decided["leaf_index"]
    assert newest["anchored"] is False
    assert newest["proven"] is True
    assert newest["proven_in_tree_size"] == signed
    assert document["complete_up_to_anchored_size"] == anchored
    assert document["replayed_size"] == signed
    assert [e["leaf_index"] for e in document["accesses"]] == accesses_about(copy, ana)


def test_a_resident_nobody_asked_about_has_an_empty_list(
    copy: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with copy.serve() as session:
        code, document = resident(copy, session.url, tmp_path / "state", "0" * 64, capsys)
    assert code == 0
    assert document["accesses"] == []
    assert document["complete_up_to_anchored_size"] == len(copy.events())


def test_a_subject_is_required(copy: Platform, tmp_path: Path) -> None:
    args = copy.audit_args("http://127.0.0.1:9", tmp_path / "state")
    assert main(["resident", *args]) == 2
