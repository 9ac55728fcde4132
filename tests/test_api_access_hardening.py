"""Attacks an outside review got through, replayed through the real app (issue 12, items 2, 3
and the subject-existence part of 9): a grant redeemed for a deactivated institution, a
refusal written into a resident's history under names the caller typed, and answers that told
a resident whether another subject id exists or was erased."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from tests.api_helpers import admin, api_settings, leaves, register_resident, resident
from tests.test_api_access import (
    CONSENT_RULES,
    World,
    assert_problem,
    assert_refusal_logged,
    make_world,
)
from tests.test_api_access_history import anchor, history


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        yield make_world(client)


def deactivate(world: World, institution_id: str) -> None:
    response = world.client.post(
        f"/v1/admin/institutions/{institution_id}/deactivate", headers=admin(world.client)
    )
    assert response.status_code == 200, response.text


# -- item 2: a deactivated institution -------------------------------------------------------


def test_a_grant_for_a_since_deactivated_requester_is_refused_and_logged(world: World) -> None:
    token = world.permit()["grant"]["token"]
    deactivate(world, "h-east")
    before = world.size()
    data = assert_refusal_logged(
        world, world.redeem(token), 403, "grant-party-inactive", "party-inactive", before
    )
    assert (data["requester"], data["holder"]) == ("h-east", "h-west")
    assert not any(e["kind"] == "access.released" for e in _kinds(world, before))
    # Nothing to release later either: the grant was not claimed, and still cannot be.
    again = world.redeem(token)
    assert_problem(again, 403, "grant-party-inactive")


def test_a_grant_is_refused_to_a_holder_deactivated_since(world: World) -> None:
    token = world.permit()["grant"]["token"]
    headers = world.west.headers()  # signed, and remembered, before the deactivation
    assert world.client.get("/v1/access-requests", headers=headers).status_code == 200
    deactivate(world, "h-west")
    response = world.client.post(
        "/v1/grants/redeem",
        json={
            "grant_token": token,
            "requester": "h-east",
            "subject": world.subject,
            "categories": ["lab-results"],
            "purpose": "treatment",
        },
        headers=headers,
    )
    assert response.status_code == 401, response.text
    assert not any(e["kind"] == "access.released" for e in _kinds(world, 0))


def _kinds(world: World, start: int) -> list[dict[str, Any]]:
    return leaves(world.client)[start:]


# -- item 3: what a caller claims about others -----------------------------------------------


def test_an_unknown_grant_is_logged_naming_only_the_caller(world: World) -> None:
    victim = register_resident(world.client, "NAT-VICTIM-1", birth_date=date(1980, 2, 2))
    before = world.size()
    data = assert_refusal_logged(
        world,
        world.redeem("A" * 43, by=world.north, subject=victim, requester="h-east"),
        404,
        "grant-unknown",
        "unknown-grant",
        before,
    )
    assert data["holder"] == "h-north"
    assert victim not in str(data)
    assert "h-east" not in str(data)
    assert (data["subject"], data["requester"]) == ("", "")
    assert history(world, headers=resident(world.client, victim)).json() == []


def test_an_older_unknown_grant_refusal_naming_a_resident_never_reaches_their_history(
    world: World,
) -> None:
    """A log written before the fix may hold such a refusal under a resident's subject id; the
    history never shows it (nothing in it was established by the service)."""
    access = world.client.app.state.access  # type: ignore[attr-defined]
    forged = {
        "request_id": "",
        "subject": world.subject,
        "requester": "h-east",
        "holder": "h-north",
        "categories": ["lab-results"],
        "purpose": "treatment",
        "grant_ref": "00" * 8,
        "at": "2026-01-01T00:00:00.000000Z",
        "refusal": "unknown-grant",
    }
    access.log("access.refused", forged)
    world.permit()
    anchor(world)
    entries = history(world).json()
    assert [e["kind"] for e in entries] == ["access.decided"]


REDEMPTION_CLAIMS: dict[str, tuple[dict[str, Any], int, str]] = {
    "unregistered requester": ({"requester": "h-nowhere"}, 422, "unprocessable"),
    "unknown subject": ({"subject": "cd" * 32}, 404, "unknown-subject"),
}


@pytest.mark.parametrize("name", sorted(REDEMPTION_CLAIMS))
def test_a_redemption_naming_unregistered_parties_logs_nothing(world: World, name: str) -> None:
    changes, status, slug = REDEMPTION_CLAIMS[name]
    token = world.permit()["grant"]["token"]
    before = world.size()
    for presented in (token, "A" * 43):
        assert_problem(world.redeem(presented, **changes), status, slug)
    assert world.size() == before
    assert world.redeem(token).status_code == 200


def test_a_redemption_naming_an_erased_subject_logs_nothing(world: World) -> None:
    erased = register_resident(world.client, "NAT-GONE-1", birth_date=date(1960, 6, 6))
    gone = world.client.delete(f"/v1/admin/residents/{erased}", headers=admin(world.client))
    assert gone.status_code == 200, gone.text
    before = world.size()
    assert_problem(world.redeem("A" * 43, subject=erased), 410, "subject-erased")
    assert world.size() == before


# -- item 9 (part): another subject id, unknown, erased or not one's child -------------------


def test_a_resident_cannot_tell_whether_another_subject_exists_or_was_erased(
    world: World,
) -> None:
    stranger = register_resident(world.client, "NAT-STRANGER-2", birth_date=date(1970, 1, 1))
    erased = register_resident(world.client, "NAT-GONE-2", birth_date=date(1960, 6, 6))
    gone = world.client.delete(f"/v1/admin/residents/{erased}", headers=admin(world.client))
    assert gone.status_code == 200, gone.text
    unknown = "ab" * 32
    me = resident(world.client, world.subject)
    answers = []
    for other in (stranger, erased, unknown):
        calls = [
            world.client.get("/v1/me/access-history", params={"subject": other}, headers=me),
            world.client.get("/fhir/AuditEvent", params={"patient": other}, headers=me),
            world.client.get("/v1/consents", params={"subject": other}, headers=me),
            world.client.post("/v1/consents", json={**CONSENT_RULES, "subject": other}, headers=me),
        ]
        answers.append([(r.status_code, _failure(r.json())) for r in calls])
    assert answers[0] == answers[1] == answers[2], answers
    assert all(status == 403 for status, _ in answers[0])


def _failure(body: dict[str, Any]) -> tuple[str, str]:
    """What a failure says: a problem's type and detail, or an OperationOutcome's under /fhir."""
    if body.get("resourceType") == "OperationOutcome":
        issue = body["issue"][0]
        return issue["details"]["coding"][0]["code"], issue["diagnostics"]
    return body["type"].rsplit("/", 1)[-1], body["detail"]
