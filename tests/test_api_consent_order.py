"""A decision never reads a resident's consents while a change of them is under way.

The reviewer's race: a revocation stamped, then logged, then projected; a decision that read in
between was logged after the revocation, permitted by a consent revoked before its own time.
Here the decision is started from inside the revocation's append, while the change holds the
resident: it must wait, and what it logs must be lawful for the auditor's own rules."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from auditor.replay import Replay
from auditor.replay_state import ReplayState
from consent_api.app import create_app
from consent_api.domain.vocab import Category, InstitutionType, Purpose
from tests.api_helpers import api_settings, leaves, resident, state
from tests.test_api_access import CONSENT_RULES, make_world


@pytest.mark.parametrize("change", ["revoke", "narrow"])
def test_a_decision_waits_for_a_consent_change_under_way(
    tmp_path: Path, db_url: str, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(api_settings(tmp_path, db_url))) as client:
        world = make_world(client)
        access, committer = state(client, "access"), state(client, "committer")
        decided: list[Any] = []
        finished_during_change: list[bool] = []
        append = committer.append

        def decide() -> None:
            decided.append(
                access.request_access(
                    requester="h-east",
                    requester_type=InstitutionType("hospital"),
                    subject=world.subject,
                    holder="h-west",
                    categories=frozenset({Category("lab-results")}),
                    purpose=Purpose("treatment"),
                    emergency=False,
                    now=datetime.now(UTC),
                )
            )

        def append_racing(kind: str, data: Any, **options: Any) -> int:
            if kind.startswith("consent.") and not finished_during_change:
                racer = threading.Thread(target=decide)
                racer.start()
                racer.join(timeout=1.0)  # a decision not held back would be done long before
                finished_during_change.append(not racer.is_alive())
                threads.append(racer)
            leaf_index: int = append(kind, data, **options)
            return leaf_index

        threads: list[threading.Thread] = []
        monkeypatch.setattr(committer, "append", append_racing)
        owner = resident(client, world.subject)
        if change == "revoke":
            response = client.delete(f"/v1/consents/{world.consent_id}", headers=owner)
        else:
            narrowed = {**CONSENT_RULES, "categories": ["imaging"]}  # lab results out
            response = client.put(f"/v1/consents/{world.consent_id}", json=narrowed, headers=owner)
        assert response.status_code == 200, response.text
        for racer in threads:
            racer.join()
        assert finished_during_change == [False]
        assert [d.event["decision"] for d in decided] == ["deny"]  # it saw the change

        replay = ReplayState()
        for index, event in enumerate(leaves(client)):
            Replay(replay).apply(index, orjson.dumps(event))
        assert [code for code, _, _ in replay.findings] == []
