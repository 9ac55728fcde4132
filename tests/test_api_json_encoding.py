"""A JSON body is BOM-less UTF-8 or it is refused (RFC 8259 section 8.1), through the real app.

Replays a review: the strict reader decoded bodies as UTF-8 only and let anything it could not
read pass as "not JSON"; the route's reader (``json.loads`` on bytes) then detected a BOM or
UTF-16/32 and read leniently, so a duplicate key (the last wins), NaN, a NUL or a lone surrogate
came through and a consent naming the second grantee was logged. Each such body now gets a 422
problem (an OperationOutcome under /fhir) and nothing is logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

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
)

BOM = b"\xef\xbb\xbf"
TWO_GRANTEES = (
    '{"grantee": {"institution": "h1"}, "categories": ["imaging"],'
    ' "grantee": {"institution": "h2"}}'
)
ONE_GRANTEE = '{"grantee": {"institution": "h1"}, "categories": ["imaging"]}'
ENCODED = {
    "utf-8-bom": lambda text: BOM + text.encode(),
    "utf-16": lambda text: text.encode("utf-16"),
    "utf-16-le": lambda text: text.encode("utf-16-le"),
    "utf-16-be": lambda text: text.encode("utf-16-be"),
    "utf-32": lambda text: text.encode("utf-32"),
    "utf-32-le": lambda text: text.encode("utf-32-le"),
    "utf-32-be": lambda text: text.encode("utf-32-be"),
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(api_settings(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        Institution(test_client, "h1")
        Institution(test_client, "h2")
        yield test_client


@pytest.fixture
def headers(client: TestClient) -> dict[str, str]:
    return resident(client, register_resident(client, "r-1", birth_date=date(1970, 1, 1)))


@pytest.mark.parametrize("text", [TWO_GRANTEES, ONE_GRANTEE], ids=["duplicate-key", "plain"])
@pytest.mark.parametrize("encoding", sorted(ENCODED))
def test_a_consent_body_not_in_bom_less_utf8_is_refused(
    client: TestClient, headers: dict[str, str], encoding: str, text: str
) -> None:
    before = len(leaves(client))
    body = ENCODED[encoding](text)
    response = client.post(
        "/v1/consents", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(":not-utf8"), response.text
    assert len(leaves(client)) == before


@pytest.mark.parametrize(
    "body",
    [
        BOM + b'{"grantee": {"institution": "h1"}, "categories": ["imaging"], "x": NaN}',
        BOM + b'{"grantee": {"institution": "h1"}, "categories": ["imaging"], "note": "a\\u0000b"}',
        b'{"grantee": {"institution": "h1"}, "categories": ["imaging"], "purpose": "\xed\xa0\x80"}',
        b'{"grantee": {"institution": "h1"}, "categories": ["imaging"], "purpose": "\xff"}',
        b'{"grantee": {"institution": "h1"},\x00 "categories": ["imaging"]}',
        BOM + b"[" * 20_000 + b"]" * 20_000,
    ],
    ids=["bom-nan", "bom-nul", "surrogate-bytes", "invalid-byte", "raw-nul", "bom-deep"],
)
def test_bytes_the_strict_reader_cannot_read_never_reach_the_route(
    client: TestClient, headers: dict[str, str], body: bytes
) -> None:
    before = len(leaves(client))
    response = client.post(
        "/v1/consents",
        content=body,
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith(":not-utf8"), response.text
    assert len(leaves(client)) == before


def test_a_resident_name_with_a_nul_behind_a_bom_is_not_registered(client: TestClient) -> None:
    body = BOM + b'{"identifier": "r-9", "name": "A\\u0000B", "birth_date": "1970-01-01"}'
    response = client.post(
        "/v1/admin/residents",
        content=body,
        headers={**admin(client), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith(":not-utf8")


@pytest.mark.parametrize("encoding", ["utf-8-bom", "utf-16-le", "utf-32-be"])
@pytest.mark.parametrize("media", ["application/fhir+json", "application/json", None])
def test_a_fhir_body_not_in_bom_less_utf8_gets_an_operation_outcome(
    client: TestClient, headers: dict[str, str], encoding: str, media: str | None
) -> None:
    text = '{"resourceType": "Consent", "status": "active", "status": "inactive"}'
    extra = {} if media is None else {"Content-Type": media}
    response = client.post(
        "/fhir/Consent", content=ENCODED[encoding](text), headers={**headers, **extra}
    )
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert "UTF-8" in outcome["issue"][0]["diagnostics"]


def test_the_same_consent_in_plain_utf8_is_still_taken(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post(
        "/v1/consents",
        content=ONE_GRANTEE.encode(),
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["consent"]["grantee"]["institution"] == "h1"
