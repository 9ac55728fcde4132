"""The decision path remembers parsed consents by leaf; a change made elsewhere still counts at
once. Two apps on one database stand for two worker processes (each has its own memory), on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from tests.api_helpers import Institution, admin, api_settings, register_resident, resident
from tests.test_api_access import CONSENT_RULES

REQUEST = {"holder": "h-west", "categories": ["lab-results"], "purpose": "treatment"}


@pytest.fixture
def two_workers(tmp_path: Path, db_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    settings = api_settings(tmp_path, db_url)
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        yield first, second


def decision(client: TestClient, east: Institution, subject: str) -> str:
    response = client.post(
        "/v1/access-requests", json={"subject": subject, **REQUEST}, headers=east.headers()
    )
    assert response.status_code == 201, response.text
    answer: str = response.json()["decision"]
    return answer


def test_a_revocation_in_one_worker_counts_at_once_in_the_other(
    two_workers: tuple[TestClient, TestClient],
) -> None:
    first, second = two_workers
    east = Institution(first, "h-east")
    Institution(first, "h-west")
    subject = register_resident(first, "NAT-FRESH-1", birth_date=date(1970, 5, 5))
    mine = resident(first, subject)
    assert decision(first, east, subject) == "deny"
    granted = second.post("/v1/consents", json=CONSENT_RULES, headers=mine)
    assert granted.status_code == 201, granted.text
    consent_id = granted.json()["consent"]["consent_id"]
    for _ in range(3):  # read, and remembered, by the first worker
        assert decision(first, east, subject) == "permit"
    narrowed = second.put(
        f"/v1/consents/{consent_id}",
        json={**CONSENT_RULES, "categories": ["imaging"]},
        headers=mine,
    )
    assert narrowed.status_code == 200, narrowed.text
    assert decision(first, east, subject) == "deny"
    widened = second.post("/v1/consents", json=CONSENT_RULES, headers=mine)
    assert decision(first, east, subject) == "permit"
    revoked = second.delete(f"/v1/consents/{widened.json()['consent']['consent_id']}", headers=mine)
    assert revoked.status_code == 200, revoked.text
    assert decision(first, east, subject) == "deny"


def test_an_erasure_in_one_worker_counts_at_once_in_the_other(
    two_workers: tuple[TestClient, TestClient],
) -> None:
    first, second = two_workers
    east = Institution(first, "h-east")
    Institution(first, "h-west")
    subject = register_resident(first, "NAT-FRESH-2", birth_date=date(1970, 5, 5))
    granted = first.post("/v1/consents", json=CONSENT_RULES, headers=resident(first, subject))
    assert granted.status_code == 201, granted.text
    assert decision(first, east, subject) == "permit"
    erased = second.delete(f"/v1/admin/residents/{subject}", headers=admin(second))
    assert erased.status_code in (200, 204), erased.text
    response = first.post(
        "/v1/access-requests", json={"subject": subject, **REQUEST}, headers=east.headers()
    )
    assert response.status_code == 410, response.text
