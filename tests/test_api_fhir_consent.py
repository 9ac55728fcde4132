"""The official HL7 R4 Consent examples through POST /fhir/Consent: imported and enforced as
they read, or refused whole with a 422 naming what cannot be expressed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.domain.decide import AccessRequest, decide
from consent_api.domain.fhir import consent_from_fhir
from consent_api.domain.vocab import Category, InstitutionType, Purpose
from tests.api_helpers import Institution, api_settings, leaves, register_resident, resident, state
from tests.paths import FHIR

EXAMPLES = sorted((FHIR / "consent").glob("Consent-*.json"))
IMPORTED = {"Consent-consent-example-Out.json", "Consent-consent-example-notOrg.json"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(tmp_path))) as test_client:
        Institution(test_client, "f001")  # the Organization the examples name
        yield test_client


def patient_of(resource: dict[str, Any]) -> str:
    reference: str = resource["patient"]["reference"]
    return reference.split("/", 1)[1]


def test_the_shared_examples_are_all_here() -> None:
    assert len(EXAMPLES) == 8


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_imports_whole_or_is_refused_whole(client: TestClient, path: Path) -> None:
    resource = json.loads(path.read_text())
    subject = register_resident(client, patient_of(resource), birth_date=date(1970, 1, 1))
    before = len(leaves(client))
    response = client.post("/fhir/Consent", json=resource, headers=resident(client, subject))
    if path.name not in IMPORTED:
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith(":unprocessable")
        assert "Consent" in problem["detail"]  # names the element it cannot express
        assert len(leaves(client)) == before  # refused whole: nothing logged
        return
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    created = response.json()
    leaf_index = int(response.headers["X-Ledger-Leaf-Index"])
    assert leaves(client)[leaf_index]["kind"] == "consent.granted"
    # Round trip: what the server returns reads back as the consent it stored.
    read = client.get(f"/fhir/Consent/{created['id']}", headers=resident(client, subject))
    assert read.status_code == 200
    stored = state(client, "consents").current(created["id"])
    assert consent_from_fhir(read.json()) == stored
    bundle = client.get(f"/fhir/Consent?patient={subject}", headers=resident(client, subject))
    assert [e["resource"]["id"] for e in bundle.json()["entry"]] == [created["id"]]


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_imported_opt_outs_are_enforced_as_they_read(client: TestClient, name: str) -> None:
    """Both examples withhold the patient's records held by (or going to) Organization f001."""
    resource = json.loads((FHIR / "consent" / name).read_text())
    subject = register_resident(client, patient_of(resource), birth_date=date(1970, 1, 1))
    headers = resident(client, subject)
    permit = {
        "grantee": {"institution": "f001"},
        "categories": ["lab-results"],
        "purposes": ["treatment"],
    }
    assert client.post("/v1/consents", json=permit, headers=headers).status_code == 201
    request = AccessRequest(
        requester="f001",
        requester_type=InstitutionType.HOSPITAL,
        holder="f001",
        subject=subject,
        categories=frozenset({Category.LAB_RESULTS}),
        purpose=Purpose.TREATMENT,
        at=datetime.now(UTC),
    )
    history = [consent for _, consent in state(client, "records").consent_history(subject)]
    assert decide(request, history).decision == "permit"  # before the opt-out
    assert client.post("/fhir/Consent", json=resource, headers=headers).status_code == 201
    history = [consent for _, consent in state(client, "records").consent_history(subject)]
    decision = decide(request.model_copy(update={"at": datetime.now(UTC)}), history)
    assert decision.decision == "deny"


def test_a_consent_for_someone_else_is_refused(client: TestClient) -> None:
    resource = json.loads((FHIR / "consent" / "Consent-consent-example-Out.json").read_text())
    register_resident(client, "f001", birth_date=date(1970, 1, 1))
    other = register_resident(client, "NAT-OTHER", birth_date=date(1970, 1, 1))
    response = client.post("/fhir/Consent", json=resource, headers=resident(client, other))
    assert response.status_code == 422
    assert "not the caller" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [{}, {"resourceType": "Patient"}, {"resourceType": "Consent", "status": "bogus"}, []],
)
def test_garbage_is_a_problem(client: TestClient, body: Any) -> None:
    subject = register_resident(client, "NAT-1", birth_date=date(1970, 1, 1))
    response = client.post("/fhir/Consent", json=body, headers=resident(client, subject))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
