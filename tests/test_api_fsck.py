"""``consent-ledger fsck`` scrubs the service's projections too, run as the real command (a
subprocess) on a deployment the real app wrote, on a SQLite file and on PostgreSQL: a clean
deployment exits 0; a projected row edited by hand (SQL on the real database) exits 1 naming
its table and leaf, with progress on stderr and the finding in the JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.settings import ApiSettings
from tests.api_helpers import api_settings
from tests.paths import REPO
from tests.test_api_access import make_world
from tests.test_api_access_breakglass import EMERGENCY
from tests.test_api_projection_integrity import sql


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> ApiSettings:
    return api_settings(tmp_path, db_url)


@pytest.fixture
def deployment(settings: ApiSettings) -> dict[str, Any]:
    """A day's work through the real app, shut down cleanly: its permit and denial."""
    with TestClient(create_app(settings)) as client:
        world = make_world(client)
        permit = world.permit()
        world.permit(**EMERGENCY)
        denied = world.request(purpose="research").json()
        assert world.redeem(permit["grant"]["token"]).status_code == 200
    return {"permit": permit, "denied": denied}


def consent_ledger(settings: ApiSettings, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``consent-ledger`` command of this worktree, as an operator runs it."""
    url = settings.ledger.database_url
    assert url is not None
    options = ["--data-dir", str(settings.ledger.data_dir), "--database-url", url]
    return subprocess.run(
        [sys.executable, "-m", "consent_api.cli", *args, *options, "--origin", "api.test/log"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_fsck_of_a_clean_deployment_exits_0(
    settings: ApiSettings, deployment: dict[str, Any]
) -> None:
    done = consent_ledger(settings, "fsck")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["clean"] is True
    assert report["checked"]["projection_rows"] >= report["tree_size"] > 0
    assert "fsck: projection" in done.stderr  # progress, on stderr


def test_fsck_names_a_projected_row_edited_by_hand(
    settings: ApiSettings, deployment: dict[str, Any]
) -> None:
    denied = deployment["denied"]["leaf_index"]
    [(body,)] = sql(settings, "SELECT body FROM access_record WHERE leaf_index = :i", i=denied)
    sql(
        settings,
        "UPDATE access_record SET body = :b WHERE leaf_index = :i",
        b=json.dumps({**json.loads(body), "decision": "permit"}, sort_keys=True),
        i=denied,
    )
    done = consent_ledger(settings, "fsck")
    assert done.returncode == 1, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert report["clean"] is False
    found = [(f["kind"], f["where"]) for f in report["findings"]]
    assert found == [("access_record", f"leaf_index {denied}")]
    assert "fsck: projection" in done.stderr
    assert f"access_record leaf_index {denied}" in done.stderr


def test_fsck_names_a_grant_widened_by_hand(
    settings: ApiSettings, deployment: dict[str, Any]
) -> None:
    permit = deployment["permit"]
    sql(
        settings,
        'UPDATE "grant" SET categories = \'["imaging", "lab-results"]\' WHERE request_id = :r',
        r=permit["request_id"],
    )
    done = consent_ledger(settings, "fsck")
    assert done.returncode == 1, (done.stdout, done.stderr)
    found = [(f["kind"], f["where"]) for f in json.loads(done.stdout)["findings"]]
    assert found == [("grant", f"leaf_index {permit['leaf_index']}")]
