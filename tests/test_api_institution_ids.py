"""Institution ids wherever they enter, replayed through the real app (issue 12, item 7).

A grantee or holder named in a consent (JSON or FHIR, at any depth, on grant or narrowing) and
the requester a holder names when it redeems a grant must be well-formed ids of registered
institutions: otherwise a 422 problem (on /fhir as on the JSON API), and nothing is logged, since
what is logged stays for good.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.domain.fhir import INSTITUTION_ID_SYSTEM
from tests.api_helpers import Institution, api_settings, leaves, register_resident, resident
from tests.paths import FHIR

BAD_IDS = {
    "nul": "h-east\x00",
    "zero-width space": "h\u200beast",
    "right-to-left override": "h-east\u202e",
    "markup": "<img src=x onerror=alert(1)>",
    "trailing newline": "h-east\n",
    "unregistered": "h-nowhere",
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(tmp_path))) as test_client:
        Institution(test_client, "h-east")
        Institution(test_client, "h-west")
        Institution(test_client, "f001")  # the FHIR example's own custodian
        yield test_client


@pytest.fixture
def subject(client: TestClient) -> str:
    # The FHIR example's patient, Patient/f001: its identifier is f001.
    return register_resident(client, "f001", birth_date=date(1980, 1, 1))


def _rules(grantee: str = "h-east", holders: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "grantee": {"institution": grantee},
        "holders": list(holders),
        "categories": ["lab-results"],
        "purposes": ["treatment"],
    }


def _assert_refused_unlogged(client: TestClient, response: Any, before: int) -> None:
    assert response.status_code == 422, response.text
    assert len(leaves(client)) == before
    for value in BAD_IDS.values():
        if value != "h-nowhere":
            assert value not in response.text  # never echoed back either


@pytest.mark.parametrize("bad", BAD_IDS.values(), ids=list(BAD_IDS))
def test_a_json_consent_names_registered_institutions_only(
    client: TestClient, subject: str, bad: str
) -> None:
    headers = resident(client, subject)
    before = len(leaves(client))
    nested = {
        **_rules(),
        "provisions": [{"type": "deny", "grantees": [{"institution": bad}]}],
    }
    for body in (_rules(grantee=bad), _rules(holders=("h-west", bad)), nested):
        response = client.post("/v1/consents", json=body, headers=headers)
        _assert_refused_unlogged(client, response, before)
    assert client.post("/v1/consents", json=_rules(holders=("h-west",)), headers=headers).is_success


@pytest.mark.parametrize("bad", BAD_IDS.values(), ids=list(BAD_IDS))
def test_a_narrowing_names_registered_institutions_only(
    client: TestClient, subject: str, bad: str
) -> None:
    headers = resident(client, subject)
    granted = client.post("/v1/consents", json=_rules(), headers=headers).json()
    before = len(leaves(client))
    narrower = {
        **_rules(),
        "provisions": [{"type": "deny", "holders": [bad]}],
    }
    consent_id = granted["consent"]["consent_id"]
    response = client.put(f"/v1/consents/{consent_id}", json=narrower, headers=headers)
    _assert_refused_unlogged(client, response, before)


def _fhir_consent(organization: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads(
        (FHIR / "consent" / "Consent-consent-example-Out.json").read_text()
    )
    resource["provision"]["actor"][0]["reference"] = organization
    resource["provision"]["type"] = (
        "deny"  # its narrative's meaning, stated (an untyped root is refused)
    )
    return resource


@pytest.mark.parametrize("bad", BAD_IDS.values(), ids=list(BAD_IDS))
def test_a_fhir_consent_names_registered_institutions_only(
    client: TestClient, subject: str, bad: str
) -> None:
    headers = resident(client, subject)
    before = len(leaves(client))
    by_identifier = {"identifier": {"system": INSTITUTION_ID_SYSTEM, "value": bad}}
    references = [by_identifier]
    if "/" not in bad:
        references.append({"reference": f"Organization/{bad}"})
    for organization in references:
        response = client.post("/fhir/Consent", json=_fhir_consent(organization), headers=headers)
        _assert_refused_unlogged(client, response, before)
    good = _fhir_consent({"reference": "Organization/h-east"})
    assert client.post("/fhir/Consent", json=good, headers=headers).status_code == 201


def test_redeeming_for_an_unregistered_requester_is_refused_unlogged(
    client: TestClient, subject: str
) -> None:
    west = Institution(client, "h-holder")
    before = len(leaves(client))
    body = {
        "grant_token": "A" * 43,
        "requester": "h-nowhere",
        "subject": subject,
        "categories": ["lab-results"],
        "purpose": "treatment",
    }
    response = client.post("/v1/grants/redeem", json=body, headers=west.headers())
    assert response.status_code == 422, response.text
    assert "h-nowhere" in response.json()["detail"]
    assert len(leaves(client)) == before
