"""Access decisions rendered as FHIR R4 AuditEvents, validated by the FHIR library."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

from consent_api.domain.consent import RESIDENT, Consent, Grantee
from consent_api.domain.decide import AccessRequest, decide
from consent_api.domain.errors import InvalidConsentError
from consent_api.domain.fhir import audit_event_to_fhir
from consent_api.domain.vocab import (
    INSTITUTION_ID_SYSTEM,
    LEAF_INDEX_SYSTEM,
    PSEUDONYM_SYSTEM,
    V3_ACT_REASON,
    Category,
    InstitutionType,
    Purpose,
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


def request(**changes: Any) -> AccessRequest:
    fields: dict[str, Any] = {
        "requester": "hosp-b",
        "requester_type": InstitutionType.HOSPITAL,
        "holder": "hosp-a",
        "subject": "subj-1",
        "categories": frozenset({Category.LAB_RESULTS, Category.IMAGING}),
        "purpose": Purpose.TREATMENT,
        "at": T0,
    }
    return AccessRequest(**{**fields, **changes})


def entity_of(event: dict[str, Any], description: str) -> list[dict[str, Any]]:
    return [e for e in event["entity"] if e.get("description") == description]


def test_a_permit_as_an_audit_event() -> None:
    ask = request(categories=frozenset({Category.LAB_RESULTS}))
    decision = decide(ask, [CONSENT])
    event = audit_event_to_fhir(ask, decision, leaf_index=41)
    FhirAuditEvent.model_validate(event)
    assert event["outcome"] == "0"
    assert event["outcomeDesc"] == "permit: permitted"
    assert datetime.fromisoformat(event["recorded"]) == T0
    assert event["purposeOfEvent"] == [{"coding": [{"system": V3_ACT_REASON, "code": "TREAT"}]}]
    requester, holder = event["agent"]
    assert requester["requestor"] is True
    assert requester["who"]["identifier"] == {"system": INSTITUTION_ID_SYSTEM, "value": "hosp-b"}
    assert requester["role"][0]["coding"][0]["code"] == "hospital"
    assert holder["requestor"] is False
    assert holder["who"]["identifier"]["value"] == "hosp-a"
    patient = event["entity"][0]
    assert patient["what"] == {
        "type": "Patient",
        "identifier": {"system": PSEUDONYM_SYSTEM, "value": "subj-1"},
    }
    assert patient["detail"] == [{"type": "data-category", "valueString": "lab-results"}]
    (relied,) = entity_of(event, "consent relied on")
    assert relied["what"] == {"type": "Consent", "reference": "Consent/c-1"}
    (leaf,) = entity_of(event, "ledger leaf recording this decision")
    assert leaf["what"]["identifier"] == {"system": LEAF_INDEX_SYSTEM, "value": "41"}


def test_a_deny_as_an_audit_event() -> None:
    ask = request(purpose=Purpose.EMERGENCY)
    decision = decide(ask, [CONSENT])
    assert decision.decision == "deny"
    recorded = datetime(2025, 3, 1, 9, 31, tzinfo=UTC)
    event = audit_event_to_fhir(ask, decision, leaf_index=0, recorded=recorded)
    FhirAuditEvent.model_validate(event)
    assert event["outcome"] == "4"
    assert event["outcomeDesc"] == f"deny: {decision.reason}"
    assert datetime.fromisoformat(event["recorded"]) == recorded
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert [d["valueString"] for d in event["entity"][0]["detail"]] == ["imaging", "lab-results"]
    (leaf,) = entity_of(event, "ledger leaf recording this decision")
    assert leaf["what"]["identifier"]["value"] == "0"


@pytest.mark.parametrize("purpose", list(Purpose))
def test_every_purpose_renders(purpose: Purpose) -> None:
    ask = request(purpose=purpose)
    event = audit_event_to_fhir(ask, decide(ask, [CONSENT]), leaf_index=7)
    assert FhirAuditEvent.model_validate(event).purposeOfEvent is not None


def test_the_rendering_is_deterministic_and_holds_no_names() -> None:
    ask = request()
    decision = decide(ask, [CONSENT])
    first = audit_event_to_fhir(ask, decision, leaf_index=3)
    assert json.dumps(first, sort_keys=True) == json.dumps(
        audit_event_to_fhir(ask, decision, leaf_index=3), sort_keys=True
    )
    assert '"name"' not in json.dumps(first)


def test_a_negative_leaf_index_is_refused() -> None:
    ask = request()
    with pytest.raises(InvalidConsentError, match="0-based"):
        audit_event_to_fhir(ask, decide(ask, [CONSENT]), leaf_index=-1)
