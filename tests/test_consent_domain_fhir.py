"""FHIR R4 Consent in and out: refusals by element on a valid resource, and round trips.

What each of the eight HL7 examples means and does here is in
``test_consent_domain_fhir_examples.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B import __fhir_version__ as r4b_version
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.consent import Consent as FhirConsent

from consent_api.domain.consent import RESIDENT, Consent, Grantee, Period
from consent_api.domain.decide import AccessRequest
from consent_api.domain.errors import InvalidConsentError, UnsupportedConsentError
from consent_api.domain.fhir import consent_from_fhir, consent_to_fhir
from consent_api.domain.vocab import (
    CONSENT_ACTION_SYSTEM,
    V3_ACT_REASON,
    Category,
    InstitutionType,
    Purpose,
)
from tests.paths import FHIR

EXAMPLES = FHIR / "consent"
LAB, IMAGING = Category.LAB_RESULTS, Category.IMAGING
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def pseudonymise(reference: str) -> str:
    """A stand-in for the platform's pseudonymisation: never the reference itself."""
    return "ps-" + reference.split("/", 1)[1]


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (EXAMPLES / f"Consent-consent-example-{name}.json").read_text()
    )
    return data


def load(name: str) -> Consent:
    return consent_from_fhir(example(name), pseudonymise=pseudonymise)


def ask(
    requester: str,
    holder: str,
    *,
    at: datetime,
    requester_type: InstitutionType = InstitutionType.HOSPITAL,
    purpose: Purpose = Purpose.TREATMENT,
    categories: frozenset[Category] = frozenset({LAB}),
) -> AccessRequest:
    return AccessRequest(
        requester=requester,
        requester_type=requester_type,
        holder=holder,
        subject="ps-f001",
        categories=categories,
        purpose=purpose,
        at=at,
    )


def any_hospital_may_see_everything(granted_at: datetime) -> Consent:
    """Another consent of the same resident, to show what the examples veto."""
    return Consent(
        consent_id="c-open",
        subject="ps-f001",
        version=1,
        grantor=RESIDENT,
        grantee=Grantee(institution_type=InstitutionType.HOSPITAL),
        granted_at=granted_at,
    )


def test_every_example_is_valid_r4_for_the_library() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert len(names) == 8
    for name in names:
        FhirConsent.model_validate(json.loads((EXAMPLES / name).read_text()))


# --- refusals of elements the ledger cannot express, on an otherwise valid resource ---------


def base_resource() -> dict[str, Any]:
    granted = datetime(2025, 3, 1, tzinfo=UTC)
    return consent_to_fhir(
        Consent(
            consent_id="c-1",
            subject="subj-1",
            version=1,
            grantor=RESIDENT,
            grantee=Grantee(institution="hosp-b"),
            categories=frozenset({LAB}),
            purposes=frozenset({Purpose.TREATMENT}),
            period=Period(start=granted, end=granted + timedelta(days=365)),
            granted_at=granted,
        )
    )


Edit = Callable[[dict[str, Any]], None]
CODING = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}


def action(code: str) -> dict[str, Any]:
    return {"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": code}]}


def _set(path: str, value: object) -> Edit:
    def edit(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if last.isdigit() and int(last) == len(node):
            node.append(value)
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return edit


UNSUPPORTED: dict[str, tuple[Edit, str]] = {
    "security label": (
        _set("provision.securityLabel", [CODING]),
        "Consent.provision.securityLabel",
    ),
    "clinical code": (
        _set("provision.code", [{"coding": [{"system": "http://loinc.org", "code": "18842-5"}]}]),
        "Consent.provision.code",
    ),
    "class outside our categories": (
        _set("provision.class", [{"system": "urn:ietf:bcp:13", "code": "application/pdf"}]),
        "Consent.provision.class[0]",
    ),
    "data references": (
        _set(
            "provision.data", [{"meaning": "instance", "reference": {"reference": "Observation/1"}}]
        ),
        "Consent.provision.data",
    ),
    "data period": (
        _set("provision.dataPeriod", {"start": "2015-01-01"}),
        "Consent.provision.dataPeriod",
    ),
    "policy by URI": (_set("policy", [{"uri": "https://example.org/policy"}]), "Consent.policy"),
    "implicit rules": (_set("implicitRules", "https://example.org/rules"), "Consent.implicitRules"),
    "contained resources": (
        _set("contained", [{"resourceType": "Organization", "id": "o1"}]),
        "Consent.contained",
    ),
    "a modifier extension": (
        _set(
            "provision.modifierExtension", [{"url": "https://example.org/x", "valueBoolean": True}]
        ),
        "Consent.provision.modifierExtension",
    ),
    "an unknown extension": (
        _set("extension", [{"url": "https://example.org/x", "valueBoolean": True}]),
        "Consent.extension[0].url",
    ),
    "an extension on a primitive": (
        _set("_dateTime", {"extension": [{"url": "https://example.org/x", "valueBoolean": True}]}),
        "Consent._dateTime",
    ),
    "a research scope": (
        _set(
            "scope",
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "research",
                    }
                ]
            },
        ),
        "Consent.scope",
    ),
    "a draft": (_set("status", "draft"), "Consent.status"),
    "inactive without a revocation time": (_set("status", "inactive"), "Consent.status"),
    "a policy rule other than opt-in or opt-out": (
        _set(
            "policyRule",
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTINR"}
                ]
            },
        ),
        "Consent.policyRule",
    ),
    "a practitioner as recipient": (
        _set("provision.actor.0.reference", {"reference": "Practitioner/p1"}),
        "Consent.provision.actor[0].reference.reference",
    ),
    "an author role": (
        _set("provision.actor.0.role", {"coding": [{"system": PARTICIPATION, "code": "AUT"}]}),
        "Consent.provision.actor[0].role",
    ),
    "an unknown organization": (
        _set("provision.actor.0.reference", {"reference": "Organization/elsewhere/x"}),
        "Consent.provision.actor[0].reference.reference",
    ),
    "permitting correction": (
        _set("provision.action", [action("access"), action("correct")]),
        "Consent.provision.action",
    ),
    "a rule only about correction": (
        _set("provision.action", [action("correct")]),
        "Consent.provision.action",
    ),
    "a deny that does not cover access": (
        _set("provision.provision", [{"type": "deny", "action": [action("use")]}]),
        "Consent.provision.provision[0].action",
    ),
    "a nested rule without a type": (
        _set("provision.provision", [{"purpose": [{"system": V3_ACT_REASON, "code": "HRESCH"}]}]),
        "Consent.provision.provision[0].type",
    ),
    "a purpose this ledger does not know": (
        _set("provision.purpose", [{"system": V3_ACT_REASON, "code": "HMARKT"}]),
        "Consent.provision.purpose[0]",
    ),
    "two grantees on the root": (
        _set(
            "provision.actor.1",
            {
                "role": {"coding": [{"system": PARTICIPATION, "code": "PRCP"}]},
                "reference": {"reference": "Organization/hosp-c"},
            },
        ),
        "Consent.provision.actor",
    ),
    "a practitioner giving consent": (
        _set("performer", [{"reference": "Practitioner/p1"}]),
        "Consent.performer[0].reference",
    ),
    "a guardian without the lapse date": (
        _set("performer", [{"reference": "RelatedPerson/r1"}]),
        "Consent.performer",
    ),
    "a literal patient reference with no pseudonymise": (
        _set("patient", {"reference": "Patient/p1"}),
        "Consent.patient.reference",
    ),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_elements_are_refused_by_name(name: str) -> None:
    edit, path = UNSUPPORTED[name]
    resource = base_resource()
    edit(resource)
    FhirConsent.model_validate(resource)  # still valid R4: the refusal is ours
    with pytest.raises(UnsupportedConsentError) as refused:
        consent_from_fhir(resource, pseudonymise=pseudonymise if "literal" not in name else None)
    assert refused.value.path == path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("resourceType", "Patient"), "not a valid FHIR R4 Consent"),
        (_set("status", 7), "not a valid FHIR R4 Consent"),
        (_set("dateTime", "2025-03-01T10:00:00"), "not a valid FHIR R4 Consent"),
        (_set("provision.period", {"start": "2025-03-02", "end": "2025-03-01"}), "after its end"),
    ],
)
def test_invalid_resources_are_refused(edit: Edit, message: str) -> None:
    resource = base_resource()
    edit(resource)
    with pytest.raises(InvalidConsentError, match=message):
        consent_from_fhir(resource)


def test_missing_date_time_is_refused() -> None:
    resource = base_resource()
    del resource["dateTime"]
    with pytest.raises(InvalidConsentError, match="dateTime is required"):
        consent_from_fhir(resource)


def test_literal_organizations_go_through_resolve_org() -> None:
    resource = base_resource()
    resource["provision"]["actor"][0]["reference"] = {"reference": "Organization/ORG-17"}
    imported = consent_from_fhir(resource, resolve_org={"Organization/ORG-17": "hosp-b"}.get)
    assert imported.grantee == Grantee(institution="hosp-b")
    with pytest.raises(UnsupportedConsentError, match="unknown organization"):
        consent_from_fhir(resource, resolve_org=lambda _: None)


def test_date_only_values_are_days_in_the_given_zone() -> None:
    resource = base_resource()
    resource["dateTime"] = "2025-03-01"
    resource["provision"]["period"] = {"start": "2025-03", "end": "2026"}
    zone = datetime(2025, 1, 1).astimezone().tzinfo or UTC
    imported = consent_from_fhir(resource, date_zone=zone)
    assert imported.granted_at == datetime(2025, 3, 1, tzinfo=zone)
    assert imported.period == Period(
        start=datetime(2025, 3, 1, tzinfo=zone),
        end=datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=zone),
    )


# --- the library and the FHIR version -------------------------------------------------------

R4_CONSENT = {
    "Consent": {
        "identifier", "status", "scope", "category", "patient", "dateTime", "performer",
        "organization", "sourceAttachment", "sourceReference", "policy", "policyRule",
        "verification", "provision",
    },
    "ConsentPolicy": {"authority", "uri"},
    "ConsentVerification": {"verified", "verifiedWith", "verificationDate"},
    "ConsentProvision": {
        "type", "period", "actor", "action", "securityLabel", "purpose", "class", "code",
        "dataPeriod", "data", "provision",
    },
    "ConsentProvisionActor": {"role", "reference"},
    "ConsentProvisionData": {"meaning", "reference"},
}  # fmt: skip
R4_AUDIT_EVENT = {
    "AuditEvent": {
        "type", "subtype", "action", "period", "recorded", "outcome", "outcomeDesc",
        "purposeOfEvent", "agent", "source", "entity",
    },
    "AuditEventAgent": {
        "type", "role", "who", "altId", "name", "requestor", "location", "policy", "media",
        "network", "purposeOfUse",
    },
    "AuditEventAgentNetwork": {"address", "type"},
    "AuditEventSource": {"site", "observer", "type"},
    "AuditEventEntity": {
        "what", "type", "role", "lifecycle", "securityLabel", "name", "description", "query",
        "detail",
    },
    "AuditEventEntityDetail": {"type", "valueString", "valueBase64Binary"},
}  # fmt: skip
"""The elements of R4 (4.0.1) Consent and AuditEvent, from hl7.org/fhir/R4."""

_BASE = {"id", "extension", "modifierExtension", "meta", "implicitRules", "language", "text",
         "contained", "fhir_comments", "resource_type"}  # fmt: skip


@pytest.mark.parametrize("module_name", ["consent", "auditevent"])
def test_the_r4b_models_have_exactly_the_r4_elements(module_name: str) -> None:
    """R4B changed neither resource; the library ships R4B, so check it against R4's elements."""
    import importlib

    assert r4b_version == "4.3.0"
    module = importlib.import_module(f"fhir.resources.R4B.{module_name}")
    expected = R4_CONSENT if module_name == "consent" else R4_AUDIT_EVENT
    for class_name, elements in expected.items():
        fields = getattr(module, class_name).model_fields
        names = {
            (field.alias or name)
            for name, field in fields.items()
            if not name.endswith("__ext") and name not in _BASE
        }
        assert names == elements, class_name


def test_the_hl7_audit_event_examples_parse_with_the_same_library() -> None:
    paths = sorted((FHIR / "auditevent").glob("*.json"))
    assert len(paths) == 5
    for path in paths:
        event = FhirAuditEvent.model_validate(json.loads(path.read_text()))
        assert event.get_resource_type() == "AuditEvent"


def test_rules_nested_too_deep_are_refused() -> None:
    resource = base_resource()
    rule = resource["provision"]
    kind = "deny"
    for _ in range(9):  # deny, permit, deny... under the permit root: all scoped by its grantee
        nested: dict[str, Any] = {"type": kind}
        rule["provision"] = [nested]
        rule, kind = nested, ("permit" if kind == "deny" else "deny")
    with pytest.raises(UnsupportedConsentError, match="deeper than 8"):
        consent_from_fhir(resource)
