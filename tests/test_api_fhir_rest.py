"""FHIR REST conventions through the real app: the CapabilityStatement, searches that do what
they say (or say they did not), versioned reads, resolvable fullUrls, OperationOutcome errors.

Replays what a review found: ``_count=1`` returned 4 entries, ``date=ge2030-01-01`` returned
events of today, ``status`` was ignored, and the self link repeated ignored parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from consent_api.app import create_app
from consent_api.auth import Role
from tests.api_helpers import api_settings, platform_headers
from tests.test_api_access import World, make_world
from tests.test_api_access_history import some_of_everything


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, dict[str, int]]]:
    tmp = Path(tmp_path_factory.mktemp("fhir-rest"))
    with TestClient(create_app(api_settings(tmp))) as client:
        world = make_world(client)
        yield world, some_of_everything(world)


def regulator(world: World) -> dict[str, str]:
    return platform_headers(world.client, Role.REGULATOR, "reg-1")


def search(world: World, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = world.client.get(path, params=params, headers=headers or regulator(world))
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    return bundle


def self_link(bundle: dict[str, Any]) -> str:
    (url,) = [link["url"] for link in bundle["link"] if link["relation"] == "self"]
    return str(url)


def test_metadata_is_a_capability_statement_of_what_is_applied(
    world: tuple[World, dict[str, int]],
) -> None:
    w, _ = world
    response = w.client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"Consent", "AuditEvent"}
    assert {p["name"] for p in resources["Consent"]["searchParam"]} == {
        "patient", "status", "actor", "date", "_lastUpdated",
    }  # fmt: skip
    assert {p["name"] for p in resources["AuditEvent"]["searchParam"]} == {
        "patient", "date", "agent", "entity", "type", "subtype", "outcome",
    }  # fmt: skip
    assert {i["code"] for i in resources["Consent"]["interaction"]} == {
        "create", "read", "vread", "search-type",
    }  # fmt: skip


def test_count_pages_with_opaque_next_links(world: tuple[World, dict[str, int]]) -> None:
    w, logged = world
    url: str | None = f"/fhir/AuditEvent?patient={w.subject}&_count=1"
    ids = []
    while url is not None:
        bundle = w.client.get(url, headers=regulator(w)).json()
        assert len(bundle["entry"]) <= 1
        ids += [e["resource"]["id"] for e in bundle["entry"]]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next")
        if url is not None:
            assert "_cursor=" in url
            assert "after=" not in url
    assert ids == [f"leaf-{n}" for n in sorted(logged.values())]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"date": "ge2030-01-01"}, []),
        ({"date": "lt2000"}, []),
        ({"date": "ge2000-01-01"}, ["permit", "released", "refused", "denied", "breakglass"]),
        ({"outcome": "4"}, ["refused", "denied"]),
        ({"type": "110106"}, ["released", "refused"]),
        ({"subtype": "AuthZ-Consent"}, ["permit", "denied", "breakglass"]),
        (
            {"agent": "Organization/h-west"},
            ["permit", "released", "refused", "denied", "breakglass"],
        ),
        ({"agent": "Organization/h-north"}, []),
    ],
)
def test_audit_event_parameters_are_applied(
    world: tuple[World, dict[str, int]], query: dict[str, str], expected: list[str]
) -> None:
    w, logged = world
    bundle = search(w, "/fhir/AuditEvent", patient=w.subject, **query)
    assert [e["resource"]["id"] for e in bundle["entry"]] == sorted(
        (f"leaf-{logged[name]}" for name in expected), key=lambda i: int(i[5:])
    )
    assert bundle["total"] == len(expected)
    for name, value in query.items():
        assert f"{name}={value}".replace("/", "%2F") in self_link(bundle)


def test_entity_finds_the_events_that_relied_on_a_consent(
    world: tuple[World, dict[str, int]],
) -> None:
    w, logged = world
    bundle = search(w, "/fhir/AuditEvent", patient=w.subject, entity=f"Consent/{w.consent_id}")
    ids = {e["resource"]["id"] for e in bundle["entry"]}
    assert f"leaf-{logged['permit']}" in ids
    assert f"leaf-{logged['released']}" in ids


def test_unknown_parameters_are_ignored_and_absent_from_the_self_link(
    world: tuple[World, dict[str, int]],
) -> None:
    w, _ = world
    bundle = search(w, "/fhir/AuditEvent", patient=w.subject, bogus="1")
    assert "bogus" not in self_link(bundle)
    strict = w.client.get(
        "/fhir/AuditEvent",
        params={"patient": w.subject, "bogus": "1"},
        headers={**regulator(w), "Prefer": "handling=strict"},
    )
    assert strict.status_code == 400
    outcome = strict.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["bogus"]


@pytest.mark.parametrize(
    "query", [{"_count": "0"}, {"_cursor": "not-ours"}, {"date": "ap2025"}, {"date:missing": "x"}]
)
def test_bad_search_values_are_operation_outcomes(
    world: tuple[World, dict[str, int]], query: dict[str, str]
) -> None:
    w, _ = world
    response = w.client.get(
        "/fhir/AuditEvent", params={"patient": w.subject, **query}, headers=regulator(w)
    )
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_full_urls_resolve(world: tuple[World, dict[str, int]]) -> None:
    w, _ = world
    for path in ("/fhir/AuditEvent", "/fhir/Consent"):
        for entry in search(w, path, patient=w.subject)["entry"]:
            assert entry["fullUrl"].startswith("http://testserver/fhir/")
            read = w.client.get(entry["fullUrl"], headers=regulator(w))
            assert read.status_code == 200, read.text
            assert read.json() == entry["resource"]
    missing = w.client.get("/fhir/AuditEvent/leaf-999999", headers=regulator(w))
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_consent_search_parameters_and_versioned_reads(
    world: tuple[World, dict[str, int]],
) -> None:
    w, _ = world
    headers = regulator(w)
    assert search(w, "/fhir/Consent", patient=w.subject, status="active")["total"] == 1
    assert search(w, "/fhir/Consent", patient=w.subject, status="inactive")["total"] == 0
    assert search(w, "/fhir/Consent", patient=w.subject, date="ge2030-01-01")["total"] == 0
    assert search(w, "/fhir/Consent", patient=w.subject, _lastUpdated="ge2000")["total"] == 1
    assert search(w, "/fhir/Consent", patient=w.subject, actor="Organization/h-west")["total"] == 1
    assert search(w, "/fhir/Consent", patient=w.subject, actor="Organization/h-north")["total"] == 0
    read = w.client.get(f"/fhir/Consent/{w.consent_id}", headers=headers)
    assert read.headers["etag"] == 'W/"1"'
    version = w.client.get(f"/fhir/Consent/{w.consent_id}/_history/1", headers=headers)
    assert version.status_code == 200
    assert json.loads(version.text) == read.json()
    assert (
        w.client.get(f"/fhir/Consent/{w.consent_id}/_history/2", headers=headers).status_code == 404
    )


def test_openapi_documents_fhir_json_with_schemas_and_examples(
    world: tuple[World, dict[str, int]],
) -> None:
    w, _ = world
    document = w.client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        if not path.startswith("/fhir/"):
            continue
        for operation in operations.values():
            ok = next(v for k, v in operation["responses"].items() if k.startswith("2"))
            body = ok["content"]["application/fhir+json"]
            assert body["schema"]["$ref"].startswith("#/components/schemas/Fhir")
            assert "example" in body or path == "/fhir/metadata"
            error = operation["responses"]["422"]["content"]["application/fhir+json"]
            assert error["schema"]["$ref"] == "#/components/schemas/FhirOperationOutcome"
