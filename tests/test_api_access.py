"""Access requests and grants through the real app: permit, redeem, and every refusal, logged.

The other access test modules import the fixtures and helpers defined here.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent_api.access import get_clock
from consent_api.app import create_app
from consent_api.grants import Claim, GrantStore, token_hash
from tests.api_helpers import Institution, api_settings, leaves, register_resident, resident, state

PROBLEM = "urn:consent-ledger:problem:"
CONSENT_RULES: dict[str, Any] = {
    "grantee": {"institution": "h-east"},
    "holders": ["h-west"],
    "categories": ["lab-results", "imaging"],
    "purposes": ["treatment", "referral"],
}


class MovableClock:
    """The service's clock in tests: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class World:
    client: TestClient
    clock: MovableClock
    east: Institution  # the requester
    west: Institution  # the holder
    north: Institution  # a third hospital
    subject: str
    consent_id: str
    consent_leaf: int

    def size(self) -> int:
        return int(state(self.client, "ledger").tree_size())

    def event(self, leaf_index: int) -> dict[str, Any]:
        return leaves(self.client)[leaf_index]

    def request(self, by: Institution | None = None, **changes: Any) -> Any:
        body = {
            "subject": self.subject,
            "holder": "h-west",
            "categories": ["lab-results"],
            "purpose": "treatment",
            **changes,
        }
        return self.client.post(
            "/v1/access-requests", json=body, headers=(by or self.east).headers()
        )

    def permit(self, **changes: Any) -> dict[str, Any]:
        response = self.request(**changes)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        assert body["decision"] == "permit", body
        return body

    def redeem(self, token: str, by: Institution | None = None, **changes: Any) -> Any:
        body = {
            "grant_token": token,
            "requester": "h-east",
            "subject": self.subject,
            "categories": ["lab-results"],
            "purpose": "treatment",
            **changes,
        }
        return self.client.post("/v1/grants/redeem", json=body, headers=(by or self.west).headers())


def make_world(client: TestClient) -> World:
    clock = MovableClock()
    client.app.dependency_overrides[get_clock] = lambda: clock  # type: ignore[attr-defined]
    east = Institution(client, "h-east")
    west = Institution(client, "h-west")
    north = Institution(client, "h-north", "clinic")
    subject = register_resident(client, "NAT-ACCESS-1", birth_date=date(1975, 3, 9))
    granted = client.post("/v1/consents", json=CONSENT_RULES, headers=resident(client, subject))
    assert granted.status_code == 201, granted.text
    body = granted.json()
    return World(
        client, clock, east, west, north, subject, body["consent"]["consent_id"], body["leaf_index"]
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        yield make_world(client)


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """A problem document, or under /fhir an OperationOutcome carrying the same type."""
    assert response.status_code == status, response.text
    if response.request.url.path.startswith("/fhir/"):
        assert response.headers["content-type"].startswith("application/fhir+json")
        outcome: dict[str, Any] = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert {i["details"]["coding"][0]["code"] for i in outcome["issue"]} == {slug}
        return outcome
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert (body["type"], body["status"]) == (PROBLEM + slug, status)
    return body


def assert_refusal_logged(
    world: World, response: Any, status: int, slug: str, refusal: str, size_before: int
) -> dict[str, Any]:
    """A refused redemption: its problem names the one leaf it added, an ``access.refused``."""
    problem = assert_problem(response, status, slug)
    assert world.size() == size_before + 1
    assert problem["leaf_index"] == size_before
    event = world.event(size_before)
    assert (event["kind"], event["data"]["refusal"]) == ("access.refused", refusal)
    data: dict[str, Any] = event["data"]
    return data


# -- the whole flow --------------------------------------------------------------------------


def test_permit_grant_and_redeem_are_logged_without_the_token(world: World) -> None:
    decided = world.permit()
    assert decided["reason"] == "permitted"
    assert decided["relied_on"] == [
        {"consent_id": world.consent_id, "leaf_index": world.consent_leaf}
    ]
    assert (decided["breakglass"], decided["justify_by"]) == (False, None)
    token = decided["grant"]["token"]
    logged = world.event(decided["leaf_index"])
    assert logged["kind"] == "access.decided"
    assert logged["data"] == {
        "request_id": decided["request_id"],
        "subject": world.subject,
        "requester": "h-east",
        "requester_type": "hospital",
        "holder": "h-west",
        "categories": ["lab-results"],
        "purpose": "treatment",
        "decision": "permit",
        "reason": "permitted",
        "relied_on": decided["relied_on"],
        "at": logged["data"]["at"],
        "breakglass": False,
        "grant_expires_at": logged["data"]["grant_expires_at"],
    }
    expires = datetime.fromisoformat(logged["data"]["grant_expires_at"])
    assert expires - datetime.fromisoformat(logged["data"]["at"]) == timedelta(minutes=5)

    released = world.redeem(token)
    assert released.status_code == 200, released.text
    body = released.json()
    event = world.event(body["leaf_index"])
    assert event["kind"] == "access.released"
    assert event["data"] == {
        "request_id": decided["request_id"],
        "subject": world.subject,
        "requester": "h-east",
        "holder": "h-west",
        "categories": ["lab-results"],
        "purpose": "treatment",
        "grant_ref": hashlib.sha256(token.encode()).hexdigest()[:16],
        "decision_leaf_index": decided["leaf_index"],
        "breakglass": False,
        "relied_on": decided["relied_on"],
        "at": event["data"]["at"],
    }
    assert body["relied_on"] == decided["relied_on"]
    everything = str(leaves(world.client))
    assert token not in everything
    assert hashlib.sha256(token.encode()).hexdigest() not in everything


def test_a_replayed_grant_is_refused_with_409_and_logged(world: World) -> None:
    token = world.permit()["grant"]["token"]
    assert world.redeem(token).status_code == 200
    before = world.size()
    data = assert_refusal_logged(
        world, world.redeem(token), 409, "grant-already-redeemed", "already-redeemed", before
    )
    assert data["holder"] == "h-west"
    assert token not in str(data)


def test_an_expired_grant_is_refused_with_410_and_logged(world: World) -> None:
    token = world.permit()["grant"]["token"]
    world.clock.advance(minutes=5, seconds=1)
    before = world.size()
    assert_refusal_logged(world, world.redeem(token), 410, "grant-expired", "expired", before)


def test_another_party_cannot_redeem_and_does_not_burn_the_grant(world: World) -> None:
    token = world.permit()["grant"]["token"]
    before = world.size()
    data = assert_refusal_logged(
        world, world.redeem(token, by=world.north), 403, "grant-wrong-party", "wrong-party", before
    )
    assert (data["holder"], data["grant_holder"]) == ("h-north", "h-west")
    before = world.size()
    wrong_requester = world.redeem(token, requester="h-north")
    assert_refusal_logged(world, wrong_requester, 403, "grant-wrong-party", "wrong-party", before)
    before = world.size()
    other_data = world.redeem(token, categories=["imaging"])
    assert_refusal_logged(world, other_data, 422, "grant-mismatch", "binding-mismatch", before)
    assert world.redeem(token).status_code == 200  # the rightful holder still can


def test_a_grant_after_revocation_is_refused_and_consumed(world: World) -> None:
    token = world.permit()["grant"]["token"]
    revoked = world.client.delete(
        f"/v1/consents/{world.consent_id}", headers=resident(world.client, world.subject)
    )
    assert revoked.status_code == 200, revoked.text
    before = world.size()
    data = assert_refusal_logged(
        world,
        world.redeem(token),
        422,
        "consent-no-longer-covers",
        "consent-no-longer-covers",
        before,
    )
    assert data["reason"] == "revoked"
    assert data["relied_on"] == [
        {"consent_id": world.consent_id, "leaf_index": revoked.json()["leaf_index"]}
    ]
    before = world.size()
    assert_refusal_logged(
        world, world.redeem(token), 409, "grant-already-redeemed", "already-redeemed", before
    )
    denied = world.request()
    assert (denied.json()["decision"], denied.json()["reason"]) == ("deny", "revoked")


def test_an_unknown_token_is_refused_and_logged_by_hash_prefix(world: World) -> None:
    token = "A" * 43
    before = world.size()
    data = assert_refusal_logged(
        world, world.redeem(token), 404, "grant-unknown", "unknown-grant", before
    )
    assert data["request_id"] == ""
    assert data["grant_ref"] == hashlib.sha256(token.encode()).hexdigest()[:16]


def test_deny_by_default_is_logged(world: World) -> None:
    cases: list[tuple[dict[str, Any], str, list[str]]] = [
        ({"purpose": "research"}, "purpose-not-granted", [world.consent_id]),
        ({"categories": ["prescriptions"]}, "category-not-granted", [world.consent_id]),
        ({"holder": "h-north"}, "holder-mismatch", [world.consent_id]),
    ]
    for changes, reason, relied in cases:
        before = world.size()
        response = world.request(**changes)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["decision"], body["reason"], body["grant"]) == ("deny", reason, None)
        assert [r["consent_id"] for r in body["relied_on"]] == relied
        assert world.size() == before + 1
        assert world.event(body["leaf_index"])["data"]["decision"] == "deny"
    nobody = register_resident(world.client, "NAT-ACCESS-2", birth_date=date(1990, 1, 1))
    body = world.request(subject=nobody).json()
    assert (body["decision"], body["reason"], body["relied_on"]) == ("deny", "no-consent", [])
    by_north = world.request(by=world.north).json()  # the consent names h-east only
    assert (by_north["decision"], by_north["reason"]) == ("deny", "grantee-mismatch")


BAD_REQUESTS: dict[str, tuple[dict[str, Any], int, str]] = {
    "no categories": ({"categories": []}, 422, "validation"),
    "unknown category": ({"categories": ["dreams"]}, 422, "validation"),
    "not a subject": ({"subject": "NAT-ACCESS-1"}, 422, "validation"),
    "extra field": ({"requester": "h-north"}, 422, "validation"),
    "unknown holder": ({"holder": "h-nowhere"}, 422, "unprocessable"),
    "self as holder": ({"holder": "h-east"}, 422, "unprocessable"),
    "unknown subject": ({"subject": "cd" * 32}, 404, "unknown-subject"),
    "emergency, routine purpose": (
        {"emergency": True, "categories": ["emergency-stroke"]},
        422,
        "unprocessable",
    ),
    "emergency, routine data": (
        {"emergency": True, "purpose": "emergency", "categories": ["lab-results"]},
        422,
        "unprocessable",
    ),
}


def test_malformed_requests_and_redemptions_are_problems_and_log_nothing(world: World) -> None:
    before = world.size()
    for name, (changes, status, slug) in BAD_REQUESTS.items():
        response = world.request(**changes)
        assert response.status_code == status, name
        assert_problem(response, status, slug)
    assert world.size() == before
    token = world.permit()["grant"]["token"]
    before = world.size()
    for changes in ({"grant_token": "short"}, {"purpose": "nonsense"}, {"extra": 1}):
        assert_problem(world.redeem(token, **changes), 422, "validation")
    assert world.size() == before
    assert world.redeem(token).status_code == 200


# -- concurrency -----------------------------------------------------------------------------


def redeem_together(world: World, token: str, count: int) -> list[int]:
    """``count`` redemptions of one token, released at the same instant; their statuses."""
    start = threading.Barrier(count)
    statuses: list[int] = []

    def redeem() -> None:
        start.wait()
        statuses.append(world.redeem(token).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_two_concurrent_redemptions_cannot_both_succeed(world: World) -> None:
    for _ in range(3):
        token = world.permit()["grant"]["token"]
        before = world.size()
        assert redeem_together(world, token, 2) == [200, 409]
        kinds = [world.event(i)["kind"] for i in range(before, world.size())]
        assert sorted(kinds) == ["access.refused", "access.released"]


def test_the_claim_is_a_guarded_transition(world: World) -> None:
    grants: GrantStore = state(world.client, "access").grants
    token = world.permit()["grant"]["token"]
    hashed = token_hash(token)
    now = world.clock().timestamp()
    outcomes: list[Claim] = []
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()
        outcomes.append(grants.claim(hashed, now))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == sorted([Claim.CLAIMED] + [Claim.REDEEMED] * 7)
    fresh = token_hash(world.permit()["grant"]["token"])
    assert grants.claim(fresh, now + 301) is Claim.EXPIRED
