"""Numbers in requests are ASCII digits: ``str.isdigit`` takes "²" and "٣", which ``int`` then
refuses ("²") or reads as a number the client did not write ("٣"), so a search's ``_count``, an
AuditEvent id or a FHIR version were a 500 (or a silent reading) before they were a 400/404.

Replays a review's requests through the real app, then feeds odd numerals to every integer
parameter the OpenAPI document declares (and to the FHIR searches' ``_count``), asserting no 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent_api.app import create_app
from consent_api.auth import Role
from consent_api.domain.errors import InvalidConsentError
from consent_api.domain.fhir_json import parse_instant
from tests.api_helpers import (
    Institution,
    admin,
    api_settings,
    platform_headers,
    register_resident,
    resident,
)

ODD_NUMERALS = [
    "\u00b2",
    "\u00b9\u00b2",
    "\u0663",
    "\uff11",
    "\u0967",
    "\u216b",
    "\u00bd",
    "\U0001d7d7",
    "+1",
    " 1",
    "1_0",
    "-0",
    "0x1",
    "1e3",
]


class World:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        Institution(client, "h1")
        self.subject = register_resident(client, "r-1", birth_date=date(1970, 1, 1))
        self.resident = resident(client, self.subject)
        self.regulator = platform_headers(client, Role.REGULATOR, "reg-1")
        self.admin = admin(client)
        body = {"grantee": {"institution": "h1"}, "categories": ["imaging"]}
        created = client.post("/v1/consents", json=body, headers=self.resident)
        assert created.status_code == 201, created.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = Path(tmp_path_factory.mktemp("ascii-digits"))
    app = create_app(api_settings(tmp).model_copy(update={"caller_burst": 100_000}))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client)


@pytest.mark.parametrize("numeral", ["\u00b2", "\u0663", "\uff11"])
@pytest.mark.parametrize("path", ["/fhir/Consent", "/fhir/AuditEvent"])
def test_a_search_count_of_unicode_digits_is_a_400(world: World, path: str, numeral: str) -> None:
    response = world.client.get(
        path, params={"patient": world.subject, "_count": numeral}, headers=world.resident
    )
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("numeral", ["\u00b2", "\u0663", "\uff11"])
@pytest.mark.parametrize("who", ["resident", "regulator"])
def test_an_audit_event_id_of_unicode_digits_is_a_404(world: World, numeral: str, who: str) -> None:
    response = world.client.get(f"/fhir/AuditEvent/leaf-{numeral}", headers=getattr(world, who))
    assert response.status_code == 404, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_fhir_date_of_other_digits_is_not_read_as_a_year() -> None:
    arabic, fullwidth = "\u0662\u0660\u0662\u0660", "\uff12\uff10\uff12\uff10"
    for text in [arabic, fullwidth, "+2020", "2020-\u0660\u0661"]:
        with pytest.raises(InvalidConsentError):
            parse_instant(text, "Consent.provision.period.start", zone=UTC, end=False)
    assert (
        parse_instant("2020-01", "Consent.provision.period.start", zone=UTC, end=False).year == 2020
    )


def _integer_parameters(client: TestClient) -> list[tuple[str, str, str]]:
    """(path, where, name) of every GET parameter the OpenAPI document types as an integer."""
    found = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        operation = operations.get("get")
        for parameter in [] if operation is None else operation.get("parameters", []):
            schema = parameter.get("schema", {})
            types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
            if "integer" in types and parameter["in"] in ("query", "path"):
                found.append((path, parameter["in"], parameter["name"]))
    found += [("/fhir/Consent", "query", "_count"), ("/fhir/AuditEvent", "query", "_count")]
    return found


odd_numbers = st.one_of(
    st.sampled_from(ODD_NUMERALS),
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6),
)


def test_every_integer_parameter_refuses_odd_numerals_without_a_5xx(world: World) -> None:
    parameters = _integer_parameters(world.client)
    assert len(parameters) >= 15, parameters  # the document still declares them

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(parameters), odd_numbers, st.sampled_from(["resident", "regulator"]))
    def check(parameter: tuple[str, str, str], numeral: str, who: str) -> None:
        path, where, name = parameter
        params: dict[str, str] = {}
        if where == "path":
            path = path.replace("{" + name + "}", numeral)
        else:
            params[name] = numeral
        if path.startswith("/fhir/") and where == "query":
            params["patient"] = world.subject
        for other in path.split("{")[1:]:  # any other path parameter: a plain 1
            path = path.replace("{" + other.split("}")[0] + "}", "1")
        response = world.client.get(path, params=params, headers=getattr(world, who))
        assert response.status_code < 500, (path, params, response.text)

    check()


def raw_post_status(world: World, content_length: bytes) -> int:
    """POST with this Content-Length, as raw ASGI: an HTTP client would not send such a
    header (uvicorn's h11 would refuse it too, but the app does not count on its server)."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/consents",
        "raw_path": b"/v1/consents",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", content_length), (b"content-type", b"application/json")],
        "client": ("198.51.100.3", 1),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(world.client.app, scope, receive, send)  # type: ignore[arg-type]
    status: int = sent[0]["status"]
    return status


@pytest.mark.parametrize("declared", [b"+1", b" 1", b"1_0", b"\xd9\xa3", b"-0", b""])
def test_a_content_length_of_other_than_ascii_digits_is_a_400(
    world: World, declared: bytes
) -> None:
    assert raw_post_status(world, declared) == 400


def test_a_content_length_of_many_digits_is_a_413_not_a_500(world: World) -> None:
    assert raw_post_status(world, b"9" * 5000) == 413
