"""The projection is a cache of the log, verified: rows changed or inserted by hand in the real
database (SQLite file or PostgreSQL schema) are refused before a decision relies on them or a
page shows them, logged, and counted in ``GET /v1/health``; nothing is permitted on them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consent_api.app import create_app
from consent_api.settings import ApiSettings
from ledger.engine import make_engine
from tests.api_helpers import api_settings, register_resident, resident
from tests.test_api_access import World, assert_problem, make_world
from tests.test_api_access_breakglass import EMERGENCY, justify, regulator


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> ApiSettings:
    return api_settings(tmp_path, db_url)


@pytest.fixture
def world(settings: ApiSettings) -> Iterator[World]:
    with TestClient(create_app(settings)) as client:
        yield make_world(client)


def sql(settings: ApiSettings, statement: str, **params: Any) -> list[Any]:
    """One statement on the database itself, from outside the service (a separate engine)."""
    url = settings.ledger.database_url
    assert url is not None
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def health(world: World) -> dict[str, Any]:
    response = world.client.get("/v1/health")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(world: World, response: Any, leaf_index: int, table: str) -> None:
    """Refused as a storage-integrity problem naming the row; counted and named in health."""
    problem = assert_problem(response, 503, "storage-integrity")
    assert (problem["table"], problem["leaf_index"]) == (table, leaf_index)
    seen = health(world)
    assert seen["ok"] is False
    assert seen["integrity"]["mismatches"] >= 1
    assert seen["integrity"]["last_mismatch"]["leaf_index"] == leaf_index


def consent_body(settings: ApiSettings, leaf_index: int) -> dict[str, Any]:
    [(body,)] = sql(settings, "SELECT body FROM consent_record WHERE leaf_index = :i", i=leaf_index)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def test_a_consent_row_inserted_beyond_the_log_is_not_relied_on(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = register_resident(world.client, "NAT-NO-CONSENT", birth_date=date(1980, 1, 2))
    forged = {**consent_body(settings, world.consent_leaf), "subject": stranger}
    forged["consent_id"] = "c-forged"
    sql(
        settings,
        "INSERT INTO consent_record (leaf_index, consent_id, subject, kind, version, body)"
        " VALUES (900000, 'c-forged', :s, 'consent.granted', 1, :b)",
        s=stranger,
        b=json.dumps(forged, sort_keys=True),
    )
    size = world.size()
    with caplog.at_level(logging.ERROR, logger="consent_api.integrity"):
        response = world.request(subject=stranger)
    refused(world, response, 900000, "consent_record")
    assert world.size() == size, "nothing is decided (or logged as decided) on a forged row"
    assert any("leaf 900000" in record.getMessage() for record in caplog.records)
    listed = world.client.get(
        f"/v1/consents?subject={stranger}", headers=resident(world.client, stranger)
    )
    refused(world, listed, 900000, "consent_record")


def test_a_consent_widened_by_hand_permits_nothing_new(world: World, settings: ApiSettings) -> None:
    widened = consent_body(settings, world.consent_leaf)
    widened["categories"] = [*widened["categories"], "prescriptions"]
    sql(
        settings,
        "UPDATE consent_record SET body = :b WHERE leaf_index = :i",
        b=json.dumps(widened, sort_keys=True),
        i=world.consent_leaf,
    )
    response = world.request(categories=["prescriptions"])
    refused(world, response, world.consent_leaf, "consent_record")
    shown = world.client.get(
        f"/v1/consents/{world.consent_id}", headers=resident(world.client, world.subject)
    )
    refused(world, shown, world.consent_leaf, "consent_record")


def test_a_consent_changed_after_it_was_verified_is_refused(
    world: World, settings: ApiSettings
) -> None:
    world.permit()  # the row is verified, and remembered as verified
    changed = consent_body(settings, world.consent_leaf)
    changed["holders"] = []  # any holder, not only h-west
    sql(
        settings,
        "UPDATE consent_record SET body = :b WHERE leaf_index = :i",
        b=json.dumps(changed, sort_keys=True),
        i=world.consent_leaf,
    )
    refused(world, world.request(holder="h-north"), world.consent_leaf, "consent_record")


def test_a_consent_filed_under_another_resident_is_refused(
    world: World, settings: ApiSettings
) -> None:
    other = register_resident(world.client, "NAT-OTHER", birth_date=date(1981, 2, 3))
    sql(
        settings,
        "UPDATE consent_record SET subject = :s WHERE leaf_index = :i",
        s=other,
        i=world.consent_leaf,
    )
    refused(world, world.request(subject=other), world.consent_leaf, "consent_record")


def flip_to_permit(settings: ApiSettings, leaf_index: int) -> None:
    [(body,)] = sql(settings, "SELECT body FROM access_record WHERE leaf_index = :i", i=leaf_index)
    event = json.loads(body)
    assert event["decision"] == "deny"
    event.update(decision="permit", reason="permitted")
    sql(
        settings,
        "UPDATE access_record SET body = :b WHERE leaf_index = :i",
        b=json.dumps(event, sort_keys=True),
        i=leaf_index,
    )


def test_a_denial_flipped_to_a_permit_is_shown_nowhere(world: World, settings: ApiSettings) -> None:
    denied = world.request(purpose="research")
    assert denied.status_code == 201, denied.text
    assert denied.json()["decision"] == "deny"
    leaf_index = denied.json()["leaf_index"]
    flip_to_permit(settings, leaf_index)
    lists = world.client.get("/v1/access-requests", headers=regulator(world))
    refused(world, lists, leaf_index, "access_record")
    mine = world.client.get("/v1/me/access-history", headers=resident(world.client, world.subject))
    refused(world, mine, leaf_index, "access_record")
    theirs = world.client.get("/v1/access-requests", headers=world.east.headers())
    refused(world, theirs, leaf_index, "access_record")
    audit = world.client.get(f"/fhir/AuditEvent?patient={world.subject}", headers=regulator(world))
    assert audit.status_code == 503, audit.text


def test_a_decision_filed_under_another_resident_is_not_shown_to_them(
    world: World, settings: ApiSettings
) -> None:
    decided = world.permit()
    other = register_resident(world.client, "NAT-NOSY", birth_date=date(1982, 3, 4))
    sql(
        settings,
        "UPDATE access_record SET subject = :s WHERE leaf_index = :i",
        s=other,
        i=decided["leaf_index"],
    )
    theirs = world.client.get("/v1/me/access-history", headers=resident(world.client, other))
    refused(world, theirs, decided["leaf_index"], "access_record")


def test_a_break_glass_case_changed_by_hand_is_refused(world: World, settings: ApiSettings) -> None:
    case = world.permit(**EMERGENCY)
    assert justify(world, case["request_id"]).status_code == 201
    listed = world.client.get("/v1/break-glass", headers=regulator(world))
    assert listed.status_code == 200, listed.text
    sql(
        settings,
        "UPDATE breakglass_case SET requester = 'h-north' WHERE request_id = :r",
        r=case["request_id"],
    )
    refused(
        world,
        world.client.get("/v1/break-glass", headers=regulator(world)),
        case["leaf_index"],
        "breakglass_case",
    )


def test_a_break_glass_case_given_a_justification_it_never_had_is_refused(
    world: World, settings: ApiSettings
) -> None:
    case = world.permit(**EMERGENCY)
    sql(
        settings,
        "UPDATE breakglass_case SET justified_at = at, justified_late = false,"
        " justification_leaf_index = :j WHERE request_id = :r",
        j=world.consent_leaf,
        r=case["request_id"],
    )
    refused(
        world,
        world.client.get("/v1/break-glass", headers=regulator(world)),
        world.consent_leaf,
        "breakglass_case",
    )


def test_untouched_rows_verify_and_health_says_so(world: World) -> None:
    world.permit()
    world.request(purpose="research")
    listed = world.client.get("/v1/access-requests", headers=regulator(world))
    assert listed.status_code == 200, listed.text
    seen = health(world)
    assert seen["ok"] is True
    assert seen["integrity"]["mismatches"] == 0
    assert seen["integrity"]["verified_rows"] >= 3
