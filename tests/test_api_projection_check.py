"""The whole-projection check a scrub (``fsck``) calls: on SQLite and PostgreSQL, an intact
projection has no finding, and rows changed, inserted, refiled or deleted by hand in the real
database are each reported with their leaf."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.projection_check import verify_projection
from consent_api.settings import ApiSettings
from tests.api_helpers import api_settings, resident, state
from tests.test_api_access import World, make_world
from tests.test_api_access_breakglass import EMERGENCY, justify
from tests.test_api_projection_integrity import sql


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> ApiSettings:
    return api_settings(tmp_path, db_url)


@pytest.fixture
def world(settings: ApiSettings) -> Iterator[World]:
    with TestClient(create_app(settings)) as client:
        yield make_world(client)


def findings(world: World) -> set[tuple[str, int]]:
    found = verify_projection(state(world.client, "records"), state(world.client, "ledger"))
    return {(mismatch.table, mismatch.leaf_index) for mismatch in found}


def test_an_intact_projection_has_no_finding(world: World) -> None:
    world.permit()
    case = world.permit(**EMERGENCY)
    assert justify(world, case["request_id"]).status_code == 201
    world.request(purpose="research")
    counted: list[int] = []
    found = verify_projection(
        state(world.client, "records"), state(world.client, "ledger"), counted.append
    )
    assert found == []
    assert sum(counted) >= world.size()


def test_each_row_changed_by_hand_is_reported(world: World, settings: ApiSettings) -> None:
    permit = world.permit()
    denied = world.request(purpose="research").json()
    case = world.permit(**EMERGENCY)
    revoked = world.client.delete(
        f"/v1/consents/{world.consent_id}", headers=resident(world.client, world.subject)
    )
    assert revoked.status_code == 200, revoked.text
    [(body,)] = sql(
        settings, "SELECT body FROM access_record WHERE leaf_index = :i", i=denied["leaf_index"]
    )
    sql(
        settings,
        "UPDATE access_record SET body = :b WHERE leaf_index = :i",
        b=json.dumps({**json.loads(body), "decision": "permit"}, sort_keys=True),
        i=denied["leaf_index"],
    )
    sql(
        settings,
        "UPDATE access_record SET holder = 'h-north' WHERE leaf_index = :i",
        i=permit["leaf_index"],
    )
    sql(
        settings,
        "UPDATE breakglass_case SET subject = 'someone' WHERE request_id = :r",
        r=case["request_id"],
    )
    sql(
        settings, "DELETE FROM consent_record WHERE leaf_index = :i", i=revoked.json()["leaf_index"]
    )
    sql(
        settings,
        "INSERT INTO consent_record (leaf_index, consent_id, subject, kind, version, body)"
        " SELECT 900000, consent_id, subject, kind, version, body FROM consent_record"
        " WHERE leaf_index = :i",
        i=world.consent_leaf,
    )
    assert findings(world) == {
        ("access_record", denied["leaf_index"]),
        ("access_record", permit["leaf_index"]),
        ("breakglass_case", case["leaf_index"]),
        ("consent_record", revoked.json()["leaf_index"]),
        ("consent_record", 900000),
        # The heads disagree with the rows they count: the subject's consents (one deleted, one
        # inserted), h-west as holder (one row fewer), h-north as holder (a row, no head).
        ("consent_head", revoked.json()["leaf_index"]),
        ("access_head", case["leaf_index"]),
        ("access_head", permit["leaf_index"]),
    }


def test_a_head_edited_alone_is_reported(world: World, settings: ApiSettings) -> None:
    denied = world.request(purpose="research").json()
    sql(settings, "UPDATE consent_head SET versions = versions + 1")
    sql(
        settings,
        "UPDATE access_head SET events = 7 WHERE scope = :s",
        s=f"subject:{world.subject}",
    )
    assert findings(world) == {
        ("consent_head", world.consent_leaf),
        ("access_head", denied["leaf_index"]),
    }
