"""Consents through the real app: grant, narrow, renew, revoke, guardians, roles, bad bodies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consent_api.app import create_app
from consent_api.auth import Role
from ledger.log import Ledger
from tests.api_helpers import (
    Institution,
    api_settings,
    leaves,
    platform_headers,
    register_resident,
    resident,
    state,
)

RULES: dict[str, Any] = {
    "grantee": {"institution": "h-east"},
    "categories": ["lab-results", "imaging"],
    "purposes": ["treatment", "referral"],
    "period": {"start": "2026-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"},
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(tmp_path))) as test_client:
        yield test_client


@pytest.fixture
def east(client: TestClient) -> Institution:
    """The grantee RULES name: a consent may name registered institutions only."""
    return Institution(client, "h-east")


@pytest.fixture
def adult(client: TestClient, east: Institution) -> str:
    return register_resident(client, "NAT-ADULT-1", birth_date=date(1980, 5, 17))


def tree_size(client: TestClient) -> int:
    return int(state(client, "ledger").tree_size())


def test_grant_is_logged_with_its_leaf_index_and_no_personal_data(
    client: TestClient, adult: str
) -> None:
    response = client.post("/v1/consents", json=RULES, headers=resident(client, adult))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["consent"]["subject"] == adult
    assert body["consent"]["version"] == 1
    event = leaves(client)[body["leaf_index"]]
    assert event["kind"] == "consent.granted"
    assert event["data"]["consent"]["consent_id"] == body["consent"]["consent_id"]
    everything = str(leaves(client))
    assert "NAT-ADULT-1" not in everything
    assert "Name of" not in everything


def test_narrow_then_revoke(client: TestClient, adult: str) -> None:
    headers = resident(client, adult)
    granted = client.post("/v1/consents", json=RULES, headers=headers).json()
    consent_id = granted["consent"]["consent_id"]
    narrower = {**RULES, "categories": ["lab-results"]}
    narrowed = client.put(f"/v1/consents/{consent_id}", json=narrower, headers=headers)
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["consent"]["version"] == 2
    assert narrowed.json()["leaf_index"] > granted["leaf_index"]

    before = tree_size(client)
    wider = {**RULES, "categories": ["lab-results", "imaging", "prescriptions"]}
    refused = client.put(f"/v1/consents/{consent_id}", json=wider, headers=headers)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert tree_size(client) == before  # a refused change logs nothing

    revoked = client.delete(f"/v1/consents/{consent_id}", headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["consent"]["status"] == "revoked"
    assert leaves(client)[revoked.json()["leaf_index"]]["kind"] == "consent.revoked"
    assert client.delete(f"/v1/consents/{consent_id}", headers=headers).status_code == 409
    assert (
        client.put(f"/v1/consents/{consent_id}", json=narrower, headers=headers).status_code == 409
    )

    versions = client.get(f"/v1/consents/{consent_id}", headers=headers).json()
    assert [v["consent"]["version"] for v in versions] == [1, 2, 2]
    listed = client.get("/v1/consents", headers=headers).json()
    assert [c["consent"]["status"] for c in listed] == ["revoked"]


def test_a_guardian_grants_for_a_child_until_14(client: TestClient, adult: str) -> None:
    today = datetime.now(UTC).date()
    child = register_resident(
        client, "NAT-CHILD-1", birth_date=date(today.year - 6, 1, 1), guardians=(adult,)
    )
    teen = register_resident(
        client, "NAT-TEEN-1", birth_date=date(today.year - 15, 1, 1), guardians=(adult,)
    )
    stranger = register_resident(client, "NAT-STRANGER", birth_date=date(1970, 1, 1))
    response = client.post(
        "/v1/consents", json={**RULES, "subject": child}, headers=resident(client, adult)
    )
    assert response.status_code == 201, response.text
    consent = response.json()["consent"]
    assert consent["grantor"] == {"kind": "guardian", "guardian": adult}
    assert consent["guardian_authority_ends"] == date(today.year + 8, 1, 1).isoformat()
    assert (
        client.post(
            "/v1/consents", json={**RULES, "subject": child}, headers=resident(client, stranger)
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/v1/consents", json={**RULES, "subject": teen}, headers=resident(client, adult)
        ).status_code
        == 403
    )
    # The guardian sees the child's consents; a stranger does not.
    assert (
        client.get(f"/v1/consents?subject={child}", headers=resident(client, adult)).status_code
        == 200
    )
    assert (
        client.get(f"/v1/consents?subject={child}", headers=resident(client, stranger)).status_code
        == 403
    )
    # Past the 14th birthday the former guardian reads nothing more about the teenager.
    for path in (f"/v1/consents?subject={teen}", f"/v1/me/access-history?subject={teen}"):
        refused = client.get(path, headers=resident(client, adult))
        assert refused.status_code == 403, path
        assert "14th birthday" in refused.json()["detail"]
    child_history = f"/v1/me/access-history?subject={child}"
    assert client.get(child_history, headers=resident(client, adult)).status_code == 200


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({**RULES, "categories": ["genome"]}, "unknown category"),
        ({k: v for k, v in RULES.items() if k != "grantee"}, "missing grantee"),
        ({**RULES, "grantee": None}, "permit without grantee"),
        ({**RULES, "colour": "blue"}, "unknown field"),
        (
            {**RULES, "period": {"start": "2030-01-01T00:00:00Z", "end": "2020-01-01T00:00:00Z"}},
            "end before start",
        ),
        ({**RULES, "period": {"start": "2026-01-01T00:00:00"}}, "naive time"),
        ({**RULES, "provisions": [{"type": "permit"}]}, "nested permit in a permit"),
        ({**RULES, "subject": "not-a-registered-subject"}, "unknown subject"),
    ],
)
def test_bad_bodies_are_problems_and_log_nothing(
    client: TestClient, adult: str, body: dict[str, Any], why: str
) -> None:
    before = tree_size(client)
    response = client.post("/v1/consents", json=body, headers=resident(client, adult))
    assert 400 <= response.status_code < 500, why
    assert response.headers["content-type"].startswith("application/problem+json"), why
    assert tree_size(client) == before, why


def test_roles(client: TestClient, adult: str, east: Institution) -> None:
    hospital = east
    granted = client.post("/v1/consents", json=RULES, headers=resident(client, adult)).json()
    consent_id = granted["consent"]["consent_id"]
    assert client.post("/v1/consents", json=RULES).status_code == 401
    assert client.post("/v1/consents", json=RULES, headers=hospital.headers()).status_code == 403
    assert client.get("/v1/consents", headers=hospital.headers()).status_code == 403
    regulator = platform_headers(client, Role.REGULATOR, "reg-1")
    assert client.get(f"/v1/consents?subject={adult}", headers=regulator).status_code == 200
    assert client.delete(f"/v1/consents/{consent_id}", headers=regulator).status_code == 403
    other = register_resident(client, "NAT-OTHER", birth_date=date(1990, 1, 1))
    assert (
        client.delete(f"/v1/consents/{consent_id}", headers=resident(client, other)).status_code
        == 403
    )
    assert (
        client.get(f"/v1/consents/{consent_id}", headers=resident(client, other)).status_code == 403
    )
    assert client.get("/v1/consents/c-nope", headers=resident(client, adult)).status_code == 404


def test_a_logged_change_missing_from_the_projection_is_recovered(tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        Institution(client, "h-east")
        subject = register_resident(client, "NAT-CRASH", birth_date=date(1980, 1, 1))
        consent = client.post("/v1/consents", json=RULES, headers=resident(client, subject)).json()
        # A crash between the append and the projection: the log has it, the projection not.
        data = {
            "consent": {**consent["consent"], "consent_id": "c-logged-only"},
            "at": "2026-01-01T00:00:00Z",
        }
        logged_at = state(client, "committer").append("consent.granted", data)
    # The process died there: its clean-shutdown mark never covered that leaf.
    ledger = Ledger.open(settings.ledger)
    ledger.store.set_meta("projection:complete-to", str(logged_at))
    ledger.close()
    with TestClient(create_app(settings)) as client:
        found = client.get("/v1/consents/c-logged-only", headers=resident(client, subject))
        assert found.status_code == 200


def test_a_guardian_consent_logs_a_commitment_not_the_childs_birthday(tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    today = datetime.now(UTC).date()
    born = date(today.year - 5, 3, 9)
    with TestClient(create_app(settings)) as client:
        Institution(client, "h-east")
        parent = register_resident(client, "NAT-PARENT", birth_date=date(1985, 1, 1))
        child = register_resident(client, "NAT-KID", birth_date=born, guardians=(parent,))
        answer = client.post(
            "/v1/consents", json={**RULES, "subject": child}, headers=resident(client, parent)
        ).json()
        fourteenth = date(born.year + 14, 3, 9)
        assert answer["consent"]["guardian_authority_ends"] == fourteenth.isoformat()
        logged = leaves(client)[answer["leaf_index"]]["data"]["consent"]
        assert set(logged["guardian_authority_ends"]) == {"sha256"}
        assert fourteenth.isoformat() not in str(leaves(client))
        assert born.isoformat() not in str(leaves(client))
        logged_at = answer["leaf_index"]
    # Rebuilt from the log alone (after a crash), the projection gets the date back.
    ledger = Ledger.open(settings.ledger)
    ledger.store.set_meta("projection:complete-to", str(logged_at))
    with ledger.store.write() as conn:
        conn.execute(text("DELETE FROM consent_record"))
    ledger.close()
    with TestClient(create_app(settings)) as client:
        consent_id = answer["consent"]["consent_id"]
        versions = client.get(f"/v1/consents/{consent_id}", headers=resident(client, parent))
        assert versions.json()[0]["consent"]["guardian_authority_ends"] == fourteenth.isoformat()
