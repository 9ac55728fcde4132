"""Inputs an outside attacker sent the served demo, replayed through the real app.

Instants whose offset no output format can write, provisions nested far past the limit,
duplicate JSON keys, numbers posing as booleans, chunked bodies over the limit: each gets a
4xx problem document, and nothing of it is logged or breaks a later read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from tests.api_helpers import (
    Institution,
    admin,
    api_settings,
    leaves,
    register_resident,
    resident,
    state,
)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(api_settings(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def headers(client: TestClient) -> dict[str, str]:
    Institution(client, "h1")
    return resident(client, register_resident(client, "r-1", birth_date=date(1970, 1, 1)))


def permit(**period: str) -> dict[str, Any]:
    return {"grantee": {"institution": "h1"}, "categories": ["imaging"], "period": period}


def nested(depth: int) -> list[dict[str, Any]]:
    """Provisions ``depth`` deep below a permit root, alternating deny and permit."""
    provisions: list[dict[str, Any]] = []
    for level in range(depth, 0, -1):
        kind = "deny" if level % 2 else "permit"
        provisions = [{"type": kind, "provisions": provisions}]
    return provisions


def assert_every_read_answers(client: TestClient, headers: dict[str, str]) -> None:
    listed = client.get("/v1/consents", headers=headers)
    assert listed.status_code == 200, listed.text
    for item in listed.json():
        consent = item["consent"]
        one = client.get(f"/fhir/Consent/{consent['consent_id']}", headers=headers)
        assert one.status_code == 200, one.text
    search = client.get(f"/fhir/Consent?patient={consent['subject']}", headers=headers)
    assert search.status_code == 200, search.text


@pytest.mark.parametrize(
    "end", ["2030-01-01T00:00:00-15:00", "2030-01-01T00:00:00+23:59", "2030-06-01T12:00:00-14:01"]
)
def test_an_offset_beyond_14_hours_is_kept_as_its_instant_in_utc(
    client: TestClient, headers: dict[str, str], end: str
) -> None:
    response = client.post("/v1/consents", json=permit(end=end), headers=headers)
    assert response.status_code == 201, response.text
    stored = response.json()["consent"]["period"]["end"]
    assert stored.endswith("Z")
    assert_every_read_answers(client, headers)
    consent_id = response.json()["consent"]["consent_id"]
    assert client.delete(f"/v1/consents/{consent_id}", headers=headers).status_code == 200
    assert_every_read_answers(client, headers)


@pytest.mark.parametrize(
    "instant",
    ["0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00"],
)
def test_an_instant_outside_utc_years_1_to_9999_is_refused(
    client: TestClient, headers: dict[str, str], instant: str
) -> None:
    before = len(leaves(client))
    for period in ({"end": instant}, {"start": instant}):
        response = client.post("/v1/consents", json=permit(**period), headers=headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "years 1 to 9999" in response.text
    assert len(leaves(client)) == before


@pytest.mark.parametrize("depth", [9, 130, 1500])
def test_provisions_nested_too_deep_get_a_422_problem(
    client: TestClient, headers: dict[str, str], depth: int
) -> None:
    body = {**permit(), "provisions": nested(depth)}
    response = client.post("/v1/consents", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_provisions_at_the_depth_limit_are_taken(
    client: TestClient, headers: dict[str, str]
) -> None:
    body = {**permit(), "provisions": nested(8)}
    response = client.post("/v1/consents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert_every_read_answers(client, headers)


def fhir_consent(subject: str, depth: int) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": "deny"}
    for level in range(depth, 1, -1):
        kind = "deny" if level % 2 else "permit"
        provision = {"type": kind, "provision": [provision]}
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{subject}"},
        "provision": {"type": "deny", "provision": [provision]},
    }


@pytest.mark.parametrize("depth", [10, 25, 130, 600])
def test_a_fhir_consent_nested_too_deep_gets_a_problem_not_a_500(
    client: TestClient, depth: int
) -> None:
    subject = register_resident(client, "r-2", birth_date=date(1970, 1, 1))
    response = client.post(
        "/fhir/Consent", json=fhir_consent("r-2", depth), headers=resident(client, subject)
    )
    assert response.status_code == 422, response.text
    outcome = response.json()  # under /fhir, an OperationOutcome
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert any("deeper than" in issue["diagnostics"] for issue in outcome["issue"])  # 8 or 64


# -- the body as JSON: one meaning only ----------------------------------------------------------


def raw_post(
    client: TestClient, url: str, body: bytes, headers: dict[str, str], **extra: str
) -> Any:
    return client.post(
        url, content=body, headers={**headers, "Content-Type": "application/json", **extra}
    )


def test_a_duplicate_key_is_refused_naming_the_key(
    client: TestClient, headers: dict[str, str]
) -> None:
    before = len(leaves(client))
    body = (
        b'{"grantee": {"institution": "h1"}, "categories": ["imaging"],'
        b' "categories": ["lab-results"]}'
    )
    response = raw_post(client, "/v1/consents", body, headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith(":duplicate-key")
    assert '"categories"' in problem["detail"]
    nested = b'{"grantee": {"institution": "h1", "institution": "h2"}}'
    assert raw_post(client, "/v1/consents", nested, headers).status_code == 422
    assert len(leaves(client)) == before


def test_a_duplicate_key_in_a_fhir_body_is_refused(client: TestClient) -> None:
    subject = register_resident(client, "r-3", birth_date=date(1970, 1, 1))
    body = b'{"resourceType": "Consent", "status": "active", "status": "inactive"}'
    response = client.post(
        "/fhir/Consent",
        content=body,
        headers={**resident(client, subject), "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 422, response.text
    outcome = response.json()  # under /fhir, an OperationOutcome
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert '"status"' in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        (b'{"grantee": {"institution": "h1"}, "holders": ["\\u0000"]}', "bad-json"),
        (b'{"grantee": {"institution": "h1"}, "holders": ["\\ud800"]}', "bad-json"),
        (b'{"grantee": {"institution": "h1"}, "holders": [NaN]}', "bad-json"),
        (b'{"grantee": {"institution": "h1"}, "holders": [' + b"9" * 5000 + b"]}", "bad-json"),
        (b"[" * 5000 + b"]" * 5000, "too-deep"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "too-deep"),
    ],
    ids=["nul", "lone-surrogate", "nan", "huge-int", "deep-array", "deep-object"],
)
def test_bodies_no_store_can_keep_are_refused(
    client: TestClient, headers: dict[str, str], body: bytes, slug: str
) -> None:
    response = raw_post(client, "/v1/consents", body, headers)
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith(":" + slug)


def test_a_body_without_content_type_is_read_as_strictly(
    client: TestClient, headers: dict[str, str]
) -> None:
    body = b'{"grantee": {"institution": "h1"}, "type": "permit", "type": "deny"}'
    response = client.post("/v1/consents", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith(":duplicate-key")


def test_a_body_that_is_not_json_still_gets_the_routes_own_422(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = raw_post(client, "/v1/consents", b'{"grantee": ', headers)
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith(":validation")


@pytest.mark.parametrize("emergency", [1, 0, "true", 1.0])
def test_a_boolean_must_be_a_json_boolean(client: TestClient, emergency: object) -> None:
    subject = register_resident(client, "r-4", birth_date=date(1970, 1, 1))
    hospital = Institution(client, "h-strict")
    body = {
        "subject": subject,
        "holder": "h-strict",
        "categories": ["emergency-stroke"],
        "purpose": "emergency",
        "emergency": emergency,
    }
    before = len(leaves(client))
    response = client.post("/v1/access-requests", json=body, headers=hospital.headers())
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "emergency"]
    assert len(leaves(client)) == before


@pytest.mark.parametrize("ttl", [True, 60.0, "60"])
def test_an_integer_must_be_a_json_integer(client: TestClient, ttl: object) -> None:
    body = {"role": "regulator", "subject": "reg-1", "ttl": ttl}
    response = client.post("/v1/admin/tokens", json=body, headers=admin(client))
    assert response.status_code == 422, response.text


def chunks(total: int) -> Iterator[bytes]:
    piece = b" " * 4096
    for _ in range(total // len(piece)):
        yield piece


def test_a_chunked_body_over_the_limit_gets_413(
    client: TestClient, headers: dict[str, str]
) -> None:
    limit = state(client, "settings").max_body_bytes
    response = client.post(
        "/v1/consents",
        content=chunks(limit * 2),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413, response.text
    assert response.json()["type"].endswith(":payload-too-large")


def test_a_chunked_body_over_the_limit_gets_413_where_no_json_is_read(
    client: TestClient, headers: dict[str, str]
) -> None:
    limit = state(client, "settings").max_body_bytes
    response = client.post(
        "/fhir/Consent",
        content=chunks(limit * 2),
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 413, response.text
