"""Paging of the list endpoints through the real app, on SQLite and PostgreSQL: a cursor walks
everything exactly once, the next page is named by a Link header (or a Bundle's link), bad
limits are problems, and an institution cannot page into other institutions' requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import Role
from tests.api_helpers import api_settings, platform_headers, register_resident, resident
from tests.test_api_access import World, assert_problem, make_world

NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    with TestClient(create_app(api_settings(tmp_path, db_url))) as client:
        yield make_world(client)


def regulator(world: World) -> dict[str, str]:
    return platform_headers(world.client, Role.REGULATOR, "reg-1")


def walk(world: World, url: str, headers: dict[str, str]) -> tuple[list[Any], list[int]]:
    """Every item reachable from ``url`` by following rel="next", and each page's length."""
    items: list[Any] = []
    sizes: list[int] = []
    next_url: str | None = url
    while next_url is not None:
        response = world.client.get(next_url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page
        sizes.append(len(page))
        link = response.headers.get("link")
        if link is None:
            next_url = None
        else:
            match = NEXT.match(link)
            assert match is not None, link
            next_url = match.group(1)
            assert len(sizes) < 100, "the walk does not end"
    return items, sizes


def traffic(world: World) -> dict[str, set[str]]:
    """Eleven decisions among three hospitals, one redeemed; request ids by requester."""
    other = register_resident(world.client, "NAT-PAGE-2", birth_date=date(1980, 1, 1))
    by: dict[str, set[str]] = {"h-east": set(), "h-west": set(), "h-north": set()}
    for n in range(5):
        by["h-east"].add(world.permit()["request_id"])
        denied = world.request(by=world.north, subject=other if n % 2 else world.subject)
        by["h-north"].add(denied.json()["request_id"])
    from_west = world.request(by=world.west, holder="h-north")
    by["h-west"].add(from_west.json()["request_id"])
    return by


def test_a_cursor_walks_every_decision_exactly_once(world: World) -> None:
    by = traffic(world)
    first = world.permit()
    by["h-east"].add(first["request_id"])
    released = world.redeem(first["grant"]["token"])
    assert released.status_code == 200, released.text
    everything = world.client.get("/v1/access-requests?limit=1000", headers=regulator(world))
    assert "link" not in everything.headers  # one page holds it all
    whole = everything.json()
    assert len(whole) == 12

    walked, sizes = walk(world, "/v1/access-requests?limit=5", regulator(world))
    assert walked == whole  # the same items, each once, in the same (log) order
    assert sizes == [5, 5, 2]
    leaves = [item["leaf_index"] for item in walked]
    assert leaves == sorted(leaves)
    redeemed = next(item for item in walked if item["request_id"] == first["request_id"])
    assert [event["kind"] for event in redeemed["events"]] == ["access.released"]

    exact, sizes = walk(world, "/v1/access-requests?limit=4", regulator(world))
    assert exact == whole
    assert sizes == [4, 4, 4]  # a full last page has no link to an empty one

    subject_only, _ = walk(
        world, f"/v1/access-requests?limit=2&subject={world.subject}", regulator(world)
    )
    assert subject_only == [item for item in whole if item["subject"] == world.subject]


def test_the_next_link_keeps_the_filters_and_moves_only_the_cursor(world: World) -> None:
    traffic(world)
    url = f"/v1/access-requests?limit=2&subject={world.subject}&institution=h-east"
    response = world.client.get(url, headers=regulator(world))
    assert response.status_code == 200, response.text
    match = NEXT.match(response.headers["link"])
    assert match is not None
    query = parse_qs(urlsplit(match.group(1)).query)
    assert query == {
        "limit": ["2"],
        "subject": [world.subject],
        "institution": ["h-east"],
        "after": [str(response.json()[-1]["leaf_index"])],
    }


def test_an_institution_pages_only_through_its_own_requests(world: World) -> None:
    by = traffic(world)
    for institution in (world.east, world.west, world.north):
        walked, _ = walk(world, "/v1/access-requests?limit=2", institution.headers())
        ids = {item["request_id"] for item in walked}
        # Its own requests and those it holds the data of; nothing else, whatever the cursor.
        assert all(institution.id in (item["requester"], item["holder"]) for item in walked)
        assert by[institution.id] <= ids
    east_pages = world.client.get("/v1/access-requests?limit=1", headers=regulator(world))
    cursor = east_pages.json()[0]["leaf_index"]
    # A cursor from someone else's listing moves north along its own requests only.
    from_cursor = world.client.get(
        f"/v1/access-requests?after={cursor}&limit=1000", headers=world.north.headers()
    ).json()
    assert {item["request_id"] for item in from_cursor} == by["h-north"] | by["h-west"]
    assert_problem(
        world.client.get(
            "/v1/access-requests?institution=h-east&after=0", headers=world.north.headers()
        ),
        403,
        "forbidden",
    )


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=-5", "limit=ten", "after=-1", "after=x", f"after={2**63}"],
)
def test_bad_paging_parameters_are_problems(world: World, query: str) -> None:
    for path in ("/v1/access-requests", "/v1/break-glass"):
        assert_problem(
            world.client.get(f"{path}?{query}", headers=regulator(world)), 422, "validation"
        )
    mine = resident(world.client, world.subject)
    assert_problem(
        world.client.get(f"/v1/me/access-history?{query}", headers=mine), 422, "validation"
    )
    fhir_query = query.replace("limit", "_count").replace("after", "_cursor")
    assert_problem(
        world.client.get(f"/fhir/AuditEvent?patient={world.subject}&{fhir_query}", headers=mine),
        400,
        "bad-search",
    )


def test_a_residents_history_and_audit_events_page(world: World) -> None:
    for _ in range(3):
        token = world.permit()["grant"]["token"]
        assert world.redeem(token).status_code == 200
    denied = world.request(categories=["prescriptions"])
    assert denied.json()["decision"] == "deny", denied.text
    mine = resident(world.client, world.subject)
    whole = world.client.get("/v1/me/access-history?limit=1000", headers=mine).json()
    assert len(whole) == 7
    walked, sizes = walk(world, "/v1/me/access-history?limit=3", mine)
    assert walked == whole
    assert sizes == [3, 3, 1]

    entries: list[dict[str, Any]] = []
    url: str | None = f"/fhir/AuditEvent?patient=Patient/{world.subject}&_count=3"
    sizes = []
    while url is not None:
        bundle = world.client.get(url, headers=mine).json()
        assert bundle["total"] == 7  # all matches (decisions and releases), not the page
        entries += bundle["entry"]
        sizes.append(len(bundle["entry"]))
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next")
    assert sizes == [3, 3, 1]
    assert [entry["fullUrl"] for entry in entries] == [
        f"http://testserver/fhir/AuditEvent/leaf-{item['leaf_index']}" for item in whole
    ]
