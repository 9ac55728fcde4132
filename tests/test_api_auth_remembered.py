"""A token that verified once is not verified again, but what can change still counts at once.

Through the real app: the token's expiry against the clock, an institution's deactivation (by
this process at once, by another worker process within the registry's cache time), and a
request that has never been seen is verified in full.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import CLOCK_SKEW, INSTITUTION_TOKEN_MAX_TTL, sign_institution_token
from consent_api.institutions import CACHE_SECONDS, InstitutionRegistry
from tests.api_helpers import Institution, admin, api_settings, bearer, state

PROBLEM = "urn:consent-ledger:problem:"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(tmp_path))) as test_client:
        yield test_client


def own_requests(client: TestClient, token: str) -> int:
    return client.get("/v1/access-requests", headers=bearer(token)).status_code


def test_a_remembered_token_is_refused_once_it_expires(client: TestClient) -> None:
    east = Institution(client, "h-east")
    # Signed so that it expires, clock skew included, two seconds from now.
    issued = time.time() - INSTITUTION_TOKEN_MAX_TTL - CLOCK_SKEW + 2
    token = sign_institution_token(
        east.key, "h-east", INSTITUTION_TOKEN_MAX_TTL, audience=east.audience, now=issued
    )
    assert own_requests(client, token) == 200
    assert own_requests(client, token) == 200  # remembered
    time.sleep(3)
    response = client.get("/v1/access-requests", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "invalid-token"
    assert "expired" in response.json()["detail"]


def test_a_remembered_token_is_refused_at_once_when_this_process_deactivates(
    client: TestClient,
) -> None:
    east = Institution(client, "h-east")
    token = sign_institution_token(east.key, "h-east", audience=east.audience)
    assert own_requests(client, token) == 200
    deactivated = client.post("/v1/admin/institutions/h-east/deactivate", headers=admin(client))
    assert deactivated.status_code == 200, deactivated.text
    response = client.get("/v1/access-requests", headers=bearer(token))
    assert response.status_code == 401
    assert "deactivated" in response.json()["detail"]


def test_another_workers_deactivation_counts_within_the_cache_time(client: TestClient) -> None:
    east = Institution(client, "h-east")
    token = sign_institution_token(east.key, "h-east", audience=east.audience)
    assert own_requests(client, token) == 200
    # Another worker process: its own registry on the same database.
    other_worker = InstitutionRegistry(state(client, "ledger").store)
    other_worker.deactivate("h-east")
    time.sleep(CACHE_SECONDS + 0.1)
    response = client.get("/v1/access-requests", headers=bearer(token))
    assert response.status_code == 401
    assert "deactivated" in response.json()["detail"]


def test_a_token_altered_after_one_verified_is_verified_in_full(client: TestClient) -> None:
    east = Institution(client, "h-east")
    token = sign_institution_token(east.key, "h-east", audience=east.audience)
    assert own_requests(client, token) == 200
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    response = client.get("/v1/access-requests", headers=bearer(f"{head}.{payload}.{flipped}"))
    assert response.status_code == 401
    assert response.json()["type"] == PROBLEM + "invalid-token"
