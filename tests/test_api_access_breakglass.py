"""Break-glass through the real app: permitted without consent, justified in time or overdue."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consent_api.app import create_app
from consent_api.auth import Role
from consent_api.breakglass import Justification, commit, new_salt
from tests.api_helpers import (
    api_settings,
    leaves,
    platform_headers,
    register_resident,
    resident,
    state,
)
from tests.test_api_access import World, assert_problem, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        yield make_world(client)


EMERGENCY = {"emergency": True, "purpose": "emergency", "categories": ["emergency-stroke"]}
JUSTIFICATION = "Unconscious on arrival, suspected stroke; Dr. Quill needed imaging history."


def regulator(world: World) -> dict[str, str]:
    return platform_headers(world.client, Role.REGULATOR, "reg-1")


def justify(world: World, request_id: str, text: str = JUSTIFICATION, by: Any = None) -> Any:
    return world.client.post(
        f"/v1/break-glass/{request_id}/justification",
        json={"text": text},
        headers=(by or world.east).headers(),
    )


def overdue(world: World) -> list[dict[str, Any]]:
    response = world.client.get("/v1/break-glass?overdue=true", headers=regulator(world))
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


def test_an_emergency_without_consent_is_permitted_flagged_and_redeemable(world: World) -> None:
    decided = world.permit(**EMERGENCY)
    # What the consents said is kept, as a replay of decide would say it.
    assert (decided["breakglass"], decided["reason"]) == (True, "category-not-granted")
    assert [r["consent_id"] for r in decided["relied_on"]] == [world.consent_id]
    nobody = register_resident(world.client, "NAT-BG-0", birth_date=date(1950, 2, 2))
    unknown = world.permit(subject=nobody, **EMERGENCY)
    assert (unknown["breakglass"], unknown["reason"], unknown["relied_on"]) == (
        True,
        "no-consent",
        [],
    )
    at = datetime.fromisoformat(decided["at"])
    assert datetime.fromisoformat(decided["justify_by"]) - at == timedelta(hours=24)
    event = world.event(decided["leaf_index"])["data"]
    assert (event["decision"], event["breakglass"]) == ("permit", True)
    assert event["justify_by"] == decided["justify_by"].replace("+00:00", "Z")
    released = world.redeem(
        decided["grant"]["token"], purpose="emergency", categories=["emergency-stroke"]
    )
    assert released.status_code == 200, released.text
    assert released.json()["breakglass"] is True


def test_an_emergency_the_consents_permit_is_no_break_glass(world: World) -> None:
    rules = {
        "grantee": {"institution_type": "hospital"},
        "categories": ["emergency-stroke"],
        "purposes": ["emergency"],
    }
    granted = world.client.post(
        "/v1/consents", json=rules, headers=resident(world.client, world.subject)
    )
    assert granted.status_code == 201, granted.text
    decided = world.permit(**EMERGENCY)
    assert (decided["breakglass"], decided["reason"], decided["justify_by"]) == (
        False,
        "permitted",
        None,
    )
    justified = justify(world, decided["request_id"])
    assert_problem(justified, 409, "conflict")


def test_overdue_cases_are_listed_for_the_regulator(world: World) -> None:
    late = world.permit(**EMERGENCY)["request_id"]
    in_time = world.permit(**EMERGENCY)["request_id"]
    never = world.permit(**EMERGENCY)["request_id"]
    assert overdue(world) == []
    on_time = justify(world, in_time)
    assert on_time.status_code == 201, on_time.text
    assert on_time.json()["late"] is False

    world.clock.advance(hours=24, minutes=1)
    listed = overdue(world)
    assert {(case["request_id"], case["status"]) for case in listed} == {
        (late, "overdue"),
        (never, "overdue"),
    }
    assert all(case["late"] and case["justified_at"] is None for case in listed)

    late_one = justify(world, late)
    assert late_one.status_code == 201, late_one.text
    assert late_one.json()["late"] is True
    assert world.event(late_one.json()["leaf_index"])["data"]["late"] is True
    statuses = {case["request_id"]: case["status"] for case in overdue(world)}
    assert statuses == {late: "justified-late", never: "overdue"}
    everything = world.client.get("/v1/break-glass", headers=regulator(world)).json()
    assert {case["request_id"]: case["status"] for case in everything} == {
        late: "justified-late",
        in_time: "justified",
        never: "overdue",
    }


def test_the_justification_is_committed_in_the_log_and_opened_by_regulators(
    world: World,
) -> None:
    request_id = world.permit(**EMERGENCY)["request_id"]
    response = justify(world, request_id)
    assert response.status_code == 201, response.text
    body = response.json()
    event = world.event(body["leaf_index"])
    assert event["kind"] == "breakglass.justified"
    assert event["data"]["commitment"] == body["commitment"]
    assert set(event["data"]) == {
        "request_id",
        "subject",
        "requester",
        "holder",
        "at",
        "justify_by",
        "late",
        "commitment",
        "commitment_scheme",
        "decision_leaf_index",
    }
    assert "Quill" not in str(leaves(world.client))

    opened = world.client.get(
        f"/v1/break-glass/{request_id}/justification", headers=regulator(world)
    )
    assert opened.status_code == 200, opened.text
    found = opened.json()
    assert found["text"] == JUSTIFICATION
    recomputed = hashlib.sha256(bytes.fromhex(found["salt"]) + JUSTIFICATION.encode()).hexdigest()
    assert recomputed == found["commitment"] == event["data"]["commitment"]
    assert found["leaf_index"] == body["leaf_index"]


def test_justification_refusals_log_nothing(world: World) -> None:
    breakglass = world.permit(**EMERGENCY)["request_id"]
    routine = world.permit()["request_id"]
    other = register_resident(world.client, "NAT-BG-2", birth_date=date(1960, 1, 1))
    before = world.size()
    assert_problem(justify(world, breakglass, by=world.north), 403, "forbidden")
    assert_problem(justify(world, routine), 409, "conflict")
    assert_problem(justify(world, "0" * 32), 404, "not-found")
    assert_problem(justify(world, "not-an-id"), 422, "validation")
    assert_problem(justify(world, breakglass, text=" "), 422, "validation")
    assert_problem(justify(world, breakglass, text="x" * 4001), 422, "validation")
    assert_problem(
        world.client.post(
            f"/v1/break-glass/{breakglass}/justification",
            json={"text": "why"},
            headers=resident(world.client, other),
        ),
        403,
        "forbidden",
    )
    unopened = world.client.get(
        f"/v1/break-glass/{breakglass}/justification", headers=regulator(world)
    )
    assert_problem(unopened, 404, "not-found")
    assert world.size() == before
    assert justify(world, breakglass).status_code == 201
    assert_problem(justify(world, breakglass), 409, "conflict")
    assert world.size() == before + 1


def test_a_justification_a_crash_left_unlogged_is_settled_against_the_log(world: World) -> None:
    service = state(world.client, "breakglass")
    # A crash after the text was kept but before its event was logged: no leaf, no case change.
    lost = world.permit(**EMERGENCY)["request_id"]
    salt = new_salt()
    kept = world.clock() - timedelta(minutes=1)
    service.justifications.put(
        Justification(lost, "typed", salt, commit("typed", salt), kept, None)
    )
    assert_problem(justify(world, lost), 409, "conflict")  # a minute old: maybe still in flight
    world.clock.advance(minutes=10)
    assert justify(world, lost).status_code == 201  # stale, never logged: removed, justified anew

    # A crash after the event was logged but before the row was marked: the log says it counts.
    logged = world.permit(**EMERGENCY)["request_id"]
    body = justify(world, logged).json()
    with service.justifications._store.write() as conn:
        conn.execute(text("UPDATE breakglass_justification SET leaf_index = NULL"))
    before = world.size()
    service.settle_unlogged(world.clock() + timedelta(minutes=10))
    assert service.justifications.get(logged).leaf_index == body["leaf_index"]
    assert_problem(justify(world, logged), 409, "conflict")
    assert world.size() == before
