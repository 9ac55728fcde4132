"""Who may do what on the access endpoints, who sees which requests, and the flow on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import Role
from tests.api_helpers import admin, api_settings, platform_headers, resident
from tests.test_api_access import (
    World,
    assert_problem,
    assert_refusal_logged,
    make_world,
    redeem_together,
)

REQUEST_ID = "0" * 32


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        yield make_world(client)


def endpoints(world: World) -> list[tuple[str, str, dict[str, Any] | None, frozenset[str]]]:
    """Every access endpoint, a body it would accept, and the roles that may call it."""
    request = {
        "subject": world.subject,
        "holder": "h-west",
        "categories": ["lab-results"],
        "purpose": "treatment",
    }
    redeem = {**request, "grant_token": "A" * 43, "requester": "h-east"}
    del redeem["holder"]
    institution, regulator = frozenset({"institution"}), frozenset({"regulator"})
    return [
        ("POST", "/v1/access-requests", request, institution),
        ("GET", "/v1/access-requests", None, frozenset({"institution", "regulator"})),
        ("POST", "/v1/grants/redeem", redeem, institution),
        ("POST", f"/v1/break-glass/{REQUEST_ID}/justification", {"text": "why"}, institution),
        ("GET", "/v1/break-glass?overdue=true", None, regulator),
        ("GET", f"/v1/break-glass/{REQUEST_ID}/justification", None, regulator),
        ("GET", "/v1/me/access-history", None, frozenset({"resident"})),
        (
            "GET",
            f"/fhir/AuditEvent?patient={world.subject}",
            None,
            frozenset({"resident", "regulator"}),
        ),
    ]


def test_the_role_matrix_of_the_access_endpoints(world: World) -> None:
    headers = {
        "resident": resident(world.client, world.subject),
        "institution": world.east.headers(),
        "regulator": platform_headers(world.client, Role.REGULATOR, "reg-1"),
        "admin": admin(world.client),
    }
    before = world.size()
    for method, url, body, allowed in endpoints(world):
        for role, role_headers in headers.items():
            if role in allowed:
                continue
            response = world.client.request(method, url, json=body, headers=role_headers)
            assert_problem(response, 403, "forbidden")
        assert_problem(world.client.request(method, url, json=body), 401, "unauthorized")
    assert world.size() == before  # no refused call logged anything
    for method, url, body, allowed in endpoints(world):
        for role in allowed:
            response = world.client.request(method, url, json=body, headers=headers[role])
            assert response.status_code < 500, (method, url, role, response.text)
            assert response.status_code not in (401, 403), (method, url, role)


def test_an_institution_sees_only_its_own_requests(world: World) -> None:
    decided = world.permit()
    world.redeem(decided["grant"]["token"])
    world.request(by=world.north, holder="h-east")  # north asks east: denied
    own = world.client.get("/v1/access-requests", headers=world.east.headers()).json()
    assert len(own) == 2
    first = own[0]
    assert (first["request_id"], first["decision"], first["leaf_index"]) == (
        decided["request_id"],
        "permit",
        decided["leaf_index"],
    )
    assert [e["kind"] for e in first["events"]] == ["access.released"]
    as_holder = world.client.get("/v1/access-requests", headers=world.west.headers()).json()
    assert [r["request_id"] for r in as_holder] == [decided["request_id"]]
    norths = world.client.get("/v1/access-requests", headers=world.north.headers()).json()
    assert [(r["requester"], r["decision"]) for r in norths] == [("h-north", "deny")]
    spying = world.client.get(
        "/v1/access-requests", params={"institution": "h-west"}, headers=world.north.headers()
    )
    assert_problem(spying, 403, "forbidden")


def test_a_regulator_reads_all_requests_by_institution_or_subject(world: World) -> None:
    world.permit()
    world.request(by=world.north, holder="h-east")
    headers = platform_headers(world.client, Role.REGULATOR, "reg-1")

    def listed(**params: str) -> list[str]:
        response = world.client.get("/v1/access-requests", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [r["requester"] for r in response.json()]

    assert listed() == ["h-east", "h-north"]
    assert listed(institution="h-west") == ["h-east"]
    assert listed(institution="h-north", subject=world.subject) == ["h-north"]
    assert listed(subject="ef" * 32) == []
    assert_problem(
        world.client.get("/v1/access-requests", params={"subject": "x"}, headers=headers),
        422,
        "validation",
    )


@pytest.mark.postgres
def test_the_access_flow_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(api_settings(tmp_path, pg_url))) as client:
        world = make_world(client)
        decided = world.permit()
        assert decided["relied_on"][0]["leaf_index"] == world.consent_leaf
        assert world.redeem(decided["grant"]["token"]).status_code == 200
        before = world.size()
        replay = world.redeem(decided["grant"]["token"])
        assert_refusal_logged(
            world, replay, 409, "grant-already-redeemed", "already-redeemed", before
        )
        for _ in range(3):
            token = world.permit()["grant"]["token"]
            assert redeem_together(world, token, 4) == [200, 409, 409, 409]
        emergency = world.permit(
            emergency=True, purpose="emergency", categories=["emergency-maternal"]
        )
        assert emergency["breakglass"] is True
        world.clock.advance(days=2)
        regulator = platform_headers(client, Role.REGULATOR, "reg-1")
        overdue = client.get("/v1/break-glass?overdue=true", headers=regulator).json()
        assert [case["request_id"] for case in overdue] == [emergency["request_id"]]
        history = client.get(
            "/v1/me/access-history", headers=resident(client, world.subject)
        ).json()
        assert len(history) == 3 + 3 * (1 + 4) + 1
