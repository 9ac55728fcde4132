"""Who viewed my records, with receipts once anchored; decisions as FHIR AuditEvents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle

from consent_api.app import create_app
from consent_api.auth import Role
from ledger.anchoring import Anchorer
from ledger.log import Ledger
from ledger.receipts import verify_receipt
from tests.api_helpers import api_settings, platform_headers, register_resident, resident, state
from tests.test_api_access import World, assert_problem, make_world

EMERGENCY = {"emergency": True, "purpose": "emergency", "categories": ["emergency-trauma"]}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        yield make_world(client)


def history(world: World, subject: str | None = None, headers: Any = None) -> Any:
    params = {} if subject is None else {"subject": subject}
    return world.client.get(
        "/v1/me/access-history",
        params=params,
        headers=headers or resident(world.client, world.subject),
    )


def anchor(world: World) -> None:
    ledger: Ledger = state(world.client, "ledger")
    anchorer = Anchorer(ledger)
    try:
        assert anchorer.run_once(force_seal=True).error is None
    finally:
        anchorer.close()


def some_of_everything(world: World) -> dict[str, int]:
    """A permit released, a replay refused, a denial and a break-glass; their leaves."""
    permit = world.permit()
    released = world.redeem(permit["grant"]["token"]).json()
    refused = world.redeem(permit["grant"]["token"]).json()
    denied = world.request(purpose="research").json()
    emergency = world.permit(**EMERGENCY)
    return {
        "permit": permit["leaf_index"],
        "released": released["leaf_index"],
        "refused": refused["leaf_index"],
        "denied": denied["leaf_index"],
        "breakglass": emergency["leaf_index"],
    }


def test_history_lists_every_decision_release_and_refusal_with_receipts(world: World) -> None:
    logged = some_of_everything(world)
    response = history(world)
    assert response.status_code == 200, response.text
    entries = response.json()
    assert [e["leaf_index"] for e in entries] == sorted(logged.values())
    by_leaf = {e["leaf_index"]: e for e in entries}
    assert [by_leaf[logged[name]]["decision"] for name in logged] == [
        "permit",
        "released",
        "refused",
        "deny",
        "permit",
    ]
    assert by_leaf[logged["refused"]]["refusal"] == "already-redeemed"
    assert by_leaf[logged["breakglass"]]["breakglass"] is True
    permit = by_leaf[logged["permit"]]
    assert (permit["requester"], permit["holder"], permit["purpose"]) == (
        "h-east",
        "h-west",
        "treatment",
    )
    assert permit["categories"] == ["lab-results"]
    assert permit["relied_on"] == [
        {"consent_id": world.consent_id, "leaf_index": world.consent_leaf}
    ]
    assert all(e["receipt"] is None and e["pending_anchor"] for e in entries)

    anchor(world)
    ledger: Ledger = state(world.client, "ledger")
    anchored = history(world).json()
    for entry in anchored:
        assert entry["pending_anchor"] is False
        check = verify_receipt(entry["receipt"], ledger.verifier)
        assert check.leaf_index == entry["leaf_index"]
        assert entry["receipt"]["event"]["kind"] == entry["kind"]
        assert entry["receipt"]["event"]["data"]["subject"] == world.subject

    later = world.request(purpose="research").json()["leaf_index"]
    newest = history(world).json()[-1]
    assert (newest["leaf_index"], newest["receipt"], newest["pending_anchor"]) == (
        later,
        None,
        True,
    )


def test_history_is_the_residents_own_or_their_childs(world: World) -> None:
    world.permit()
    child = register_resident(
        world.client, "NAT-CHILD-9", birth_date=date(2019, 4, 4), guardians=(world.subject,)
    )
    world.request(subject=child)
    stranger = register_resident(world.client, "NAT-STRANGER", birth_date=date(1970, 1, 1))
    assert len(history(world).json()) == 1
    assert len(history(world, child).json()) == 1
    assert history(world, child).json()[0]["decision"] == "deny"
    assert history(world, headers=resident(world.client, stranger)).json() == []
    assert_problem(
        history(world, child, headers=resident(world.client, stranger)), 403, "forbidden"
    )
    assert_problem(history(world, "not-a-subject"), 422, "validation")


def test_decisions_read_as_a_fhir_searchset_of_audit_events(world: World) -> None:
    logged = some_of_everything(world)
    response = world.client.get(
        "/fhir/AuditEvent",
        params={"patient": world.subject},
        headers=resident(world.client, world.subject),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert (bundle["type"], bundle["total"]) == ("searchset", 5)  # as many as history entries
    events = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    assert set(events) == {f"leaf-{leaf}" for leaf in logged.values()}
    permit = events[f"leaf-{logged['permit']}"]
    assert (permit["outcome"], permit["outcomeDesc"]) == ("0", "permit: permitted")
    assert events[f"leaf-{logged['released']}"]["type"]["code"] == "110106"  # Export
    refused = events[f"leaf-{logged['refused']}"]
    assert (refused["outcome"], refused["outcomeDesc"]) == ("4", "refused: already-redeemed")
    assert events[f"leaf-{logged['denied']}"]["outcome"] == "4"
    emergency = events[f"leaf-{logged['breakglass']}"]
    assert emergency["outcome"] == "0"
    assert emergency["meta"]["security"][0]["code"] == "BTG"
    assert "meta" not in permit

    regulator = platform_headers(world.client, Role.REGULATOR, "reg-1")
    as_reference = world.client.get(
        "/fhir/AuditEvent", params={"patient": f"Patient/{world.subject}"}, headers=regulator
    )
    assert as_reference.json()["total"] == 5
    stranger = register_resident(world.client, "NAT-STRANGER", birth_date=date(1970, 1, 1))
    for headers in (resident(world.client, stranger), world.east.headers()):
        refused = world.client.get(
            "/fhir/AuditEvent", params={"patient": world.subject}, headers=headers
        )
        assert_problem(refused, 403, "forbidden")
