"""Every operation of the OpenAPI document against every role: who may call what.

The table below is the access model. An operation missing from it fails the test, so a new
endpoint cannot ship without saying who may call it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import Role
from tests.api_helpers import Institution, api_settings, platform_headers, register_resident

PUBLIC = frozenset({"anonymous", "resident", "institution", "regulator", "admin"})
ADMIN = frozenset({"admin"})
RESIDENT = frozenset({"resident"})
READERS = frozenset({"resident", "regulator", "admin"})
INSTITUTION = frozenset({"institution"})
REGULATOR = frozenset({"regulator"})

ALLOWED: dict[str, frozenset[str]] = {
    "GET /v1/ping": PUBLIC,
    "GET /v1/health": PUBLIC,
    "GET /v1/audience": PUBLIC,
    "GET /v1/log/checkpoint": PUBLIC,
    "GET /v1/log/checkpoints/{tree_size}": PUBLIC,
    "GET /v1/log/leaves": PUBLIC,
    "GET /v1/log/proof/inclusion": PUBLIC,
    "GET /v1/log/proof/consistency": PUBLIC,
    "GET /v1/log/anchors": PUBLIC,
    "GET /v1/log/key": PUBLIC,
    "GET /v1/log/witness-policy": PUBLIC,
    "GET /tlog/checkpoint": PUBLIC,
    "GET /tlog/tile/{tile_path}": PUBLIC,
    "GET /v1/admin/institutions": ADMIN,
    "POST /v1/admin/institutions": ADMIN,
    "POST /v1/admin/institutions/{institution_id}/deactivate": ADMIN,
    "PUT /v1/admin/institutions/{institution_id}/key": ADMIN,
    "POST /v1/admin/residents": ADMIN,
    "DELETE /v1/admin/residents/{subject}": ADMIN,
    "POST /v1/admin/tokens": ADMIN,
    "POST /v1/consents": RESIDENT,
    "GET /v1/consents": READERS,
    "GET /v1/consents/{consent_id}": READERS,
    "PUT /v1/consents/{consent_id}": RESIDENT,
    "DELETE /v1/consents/{consent_id}": RESIDENT,
    "POST /v1/consents/{consent_id}/renewal": RESIDENT,
    "POST /fhir/Consent": RESIDENT,
    "GET /fhir/Consent": READERS,
    "GET /fhir/Consent/{consent_id}": READERS,
    "GET /fhir/Consent/{consent_id}/_history/{version_id}": READERS,
    "GET /fhir/AuditEvent/{event_id}": RESIDENT | REGULATOR,
    "GET /fhir/metadata": PUBLIC,
    "POST /v1/access-requests": INSTITUTION,
    "GET /v1/access-requests": INSTITUTION | REGULATOR,
    "POST /v1/grants/redeem": INSTITUTION,
    "POST /v1/break-glass/{request_id}/justification": INSTITUTION,
    "GET /v1/break-glass/{request_id}/justification": REGULATOR,
    "GET /v1/break-glass": REGULATOR,
    "GET /v1/me/access-history": RESIDENT,
    "GET /fhir/AuditEvent": RESIDENT | REGULATOR,
    "GET /v1/institutions": PUBLIC - {"anonymous"},
    "GET /v1/audit/report": REGULATOR,
    "GET /v1/regulator/lapse-openings": REGULATOR,
}


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], str]]:
    tmp = Path(tmp_path_factory.mktemp("matrix"))
    with TestClient(create_app(api_settings(tmp))) as client:
        subject = register_resident(client, "NAT-MATRIX", birth_date=date(1980, 1, 1))
        hospital = Institution(client, "h-matrix")
        headers = {
            "anonymous": {},
            "resident": platform_headers(client, Role.RESIDENT, subject),
            "institution": hospital.headers(),
            "regulator": platform_headers(client, Role.REGULATOR, "reg-1"),
            "admin": platform_headers(client, Role.ADMIN, "ops"),
        }
        yield client, headers, subject


def operations() -> list[str]:
    document = create_app().openapi()
    return [f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops]


def test_every_operation_is_in_the_table() -> None:
    assert sorted(operations()) == sorted(ALLOWED)


@pytest.mark.parametrize("operation", sorted(ALLOWED))
@pytest.mark.parametrize("role", sorted(PUBLIC))
def test_role_matrix(
    world: tuple[TestClient, dict[str, dict[str, str]], str], operation: str, role: str
) -> None:
    client, headers, subject = world
    method, path = operation.split(" ", 1)
    url = (
        path.replace("{tree_size}", "1")
        .replace("{institution_id}", "h-nowhere")
        .replace("{subject}", "0" * 64)
        .replace("{consent_id}", "c-nowhere")
        .replace("{request_id}", "r-nowhere")
        .replace("{version_id}", "1")
        .replace("{event_id}", "leaf-0")
        .replace("{tile_path}", "0/000.p/1")
    )
    params = {"patient": subject} if "fhir" in path and method == "GET" and "{" not in path else {}
    if path == "/v1/log/proof/inclusion":
        params = {"leaf_index": 0}
    if path == "/v1/log/proof/consistency":
        params = {"size1": 1}
    response = client.request(method, url, headers=headers[role], params=params, json={})
    allowed = role in ALLOWED[operation]
    if allowed:
        assert response.status_code not in (401, 403), response.text
    elif role == "anonymous":
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
    else:
        assert response.status_code == 403, response.text
    if response.status_code >= 400:  # FHIR's errors are OperationOutcomes, the rest problems
        kind = "application/fhir+json" if path.startswith("/fhir/") else "application/problem+json"
        assert response.headers["content-type"].startswith(kind)
