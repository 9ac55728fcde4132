"""Links the service writes start with its configured public URL, never with the Host header.

An attacker who sends ``Host: evil.example`` must not get (or, through a shared cache, hand
others) a ``Link`` header, FHIR Bundle ``next`` or log page ``next`` pointing at their host.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import Role
from consent_api.settings import ApiSettings, served_url
from tests.api_helpers import api_settings, platform_headers
from tests.test_api_access import World, make_world

PUBLIC = "https://consent.region.example/ledger"
EVIL = {"Host": "evil.example"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = api_settings(tmp_path).model_copy(update={"public_url": PUBLIC, "page_size": 1})
    with TestClient(create_app(settings)) as client:
        yield make_world(client)


def test_the_link_header_ignores_the_host_header(world: World) -> None:
    world.permit()
    world.permit()
    regulator = platform_headers(world.client, Role.REGULATOR, "reg-1")
    response = world.client.get("/v1/access-requests?limit=1", headers={**regulator, **EVIL})
    assert response.status_code == 200, response.text
    link = response.headers["link"]
    assert "evil.example" not in link
    assert link.startswith(f"<{PUBLIC}/v1/access-requests?limit=1&after=")


def test_fhir_bundle_links_ignore_the_host_header(world: World) -> None:
    world.permit()
    world.permit()
    regulator = platform_headers(world.client, Role.REGULATOR, "reg-1")
    url = f"/fhir/AuditEvent?patient={world.subject}&_count=1"
    response = world.client.get(url, headers={**regulator, **EVIL})
    assert response.status_code == 200, response.text
    links = {link["relation"]: link["url"] for link in response.json()["link"]}
    assert links["self"].startswith(f"{PUBLIC}/fhir/AuditEvent")
    assert links["next"].startswith(f"{PUBLIC}/fhir/AuditEvent?")
    assert "evil.example" not in str(links)


def test_log_pages_ignore_the_host_header(world: World) -> None:
    page = world.client.get("/v1/log/leaves?start=0", headers=EVIL).json()
    assert page["next"] == f"{PUBLIC}/v1/log/leaves?start=1"


def test_the_public_url_must_be_an_http_base_url() -> None:
    for bad in ("evil.example", "http://a.example/x?y=1", "ftp://a.example", "http://u@a.example"):
        with pytest.raises(ValueError, match="public_url"):
            ApiSettings(public_url=bad)


def test_serve_assumes_the_address_it_listens_on() -> None:
    assert served_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert served_url("0.0.0.0", 9000) == "http://127.0.0.1:9000"
    assert served_url("::1", 8000) == "http://[::1]:8000"
