"""Access events as R4 AuditEvents in the patterns of IHE BALP (Basic Audit Log Patterns).

- A decision follows ``IHE.BasicAudit.AuthZconsent``: type DCM 110113 "Security Alert", subtype
  BALP AuthZsubType ``AuthZ-Consent``, action E; outcome 0 for a permit, 4 for a deny with the
  reason in ``outcomeDesc``. Agents: the requesting institution's system (DCM 110150
  "Application", the requestor), the requesting organization (v3-RoleClass PROV, with the
  purpose of use), the holder (DCM 110153 "Source Role ID") and this ledger as the
  authorization server (extra-security-role-type ``authserver``), which is also
  ``source.observer``. Entities: the patient by pseudonymous identifier and each consent the
  decision relied on; a deny that no consent decided (deny by default) names no consent.
- A release, and a refused redemption, follow ``IHE.BasicAudit.PrivacyDisclosure.Source``:
  type DCM 110106 "Export", subtype ISO 21089 ``disclose``, action R; outcome 0 released, 4
  refused (the refusal code in ``outcomeDesc``). Agents: the holder (source), the requester
  (DCM 110152 "Destination Role ID"), the holder as custodian (SNOMED 159541003) and this ledger
  as the recording application (``source.observer``). Entities: the patient, the grant presented
  (by its reference, with the data categories), and the consents relied on.

The user is never known (institutions sign their own tokens, naming no person), so there is no
user agent; nor is a network address logged. The ledger leaf is an extension on the event. No
name of a person appears: the patient is a pseudonym, institutions are platform ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, Literal

from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

from consent_api.domain.decide import AccessRequest, Decision
from consent_api.domain.errors import InvalidConsentError
from consent_api.domain.vocab import (
    FHIR_BASE,
    INSTITUTION_ID_SYSTEM,
    PSEUDONYM_SYSTEM,
    PURPOSE_CODINGS,
    Category,
    Purpose,
)

Json = dict[str, Any]
DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
SCT: Final = "http://snomed.info/sct"
AUTHZ_SUBTYPE: Final = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
LIFECYCLE: Final = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
ROLE_CLASS: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
SECURITY_ROLE: Final = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
AUDIT_ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
SECURITY_SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
SERVICE_SYSTEM: Final = f"{FHIR_BASE}/sid/service"
GRANT_SYSTEM: Final = f"{FHIR_BASE}/sid/grant"
EXT_LEAF_INDEX: Final = f"{FHIR_BASE}/StructureDefinition/log-leaf"

SECURITY_ALERT: Final = {"system": DCM, "code": "110113", "display": "Security Alert"}
AUTHZ_CONSENT: Final = {
    "system": AUTHZ_SUBTYPE,
    "code": "AuthZ-Consent",
    "display": "Authorization Decision using Roles and Consent",
}
EXPORT: Final = {"system": DCM, "code": "110106", "display": "Export"}
DISCLOSE: Final = {
    "system": LIFECYCLE,
    "code": "disclose",
    "display": "Disclose Record Lifecycle Event",
}
APPLICATION: Final = {"system": DCM, "code": "110150", "display": "Application"}
PROVIDER_ORG: Final = {"system": ROLE_CLASS, "code": "PROV", "display": "healthcare provider"}
SOURCE_ROLE: Final = {"system": DCM, "code": "110153", "display": "Source Role ID"}
DESTINATION_ROLE: Final = {"system": DCM, "code": "110152", "display": "Destination Role ID"}
CUSTODIAN: Final = {"system": SCT, "code": "159541003", "display": "Record keeping/library clerk"}
AUTHSERVER: Final = {
    "system": SECURITY_ROLE,
    "code": "authserver",
    "display": "authorization server",
}


def decision_event(
    request: AccessRequest,
    decision: Decision,
    *,
    leaf_index: int,
    recorded: datetime | None = None,
    observer: str = "consent-ledger",
) -> Json:
    """An access decision as a BALP AuthZconsent-style AuditEvent, validated by the library."""
    purpose = _purpose(request.purpose)
    ledger = _service(observer)
    event = _event(
        leaf_index,
        type_=SECURITY_ALERT,
        subtype=AUTHZ_CONSENT,
        action="E",
        recorded=recorded or request.at,
        failed=decision.decision != "permit",
        outcome=f"{decision.decision}: {decision.reason}",
        purpose=purpose,
        observer=ledger,
        source_type={"system": SECURITY_SOURCE_TYPE, "code": "6", "display": "Security Server"},
    )
    event["agent"] = [
        _agent(APPLICATION, _institution(request.requester), requestor=True),
        {
            **_agent(PROVIDER_ORG, _institution(request.requester), requestor=False),
            "purposeOfUse": purpose,
        },
        _agent(SOURCE_ROLE, _institution(request.holder), requestor=False),
        _agent(AUTHSERVER, ledger, requestor=False),
    ]
    event["entity"] = [
        _patient(request.subject, request.categories),
        *_consents(decision.relied_on),
    ]
    return _validated(event)


def disclosure_event(
    *,
    outcome: Literal["released", "refused"],
    requester: str,
    holder: str,
    subject: str,
    categories: Iterable[Category],
    purpose: Purpose,
    at: datetime,
    grant_ref: str,
    relied_on: Iterable[str],
    refusal: str | None,
    leaf_index: int,
    observer: str = "consent-ledger",
) -> Json:
    """A release (or a refused redemption) as a BALP PrivacyDisclosure-style AuditEvent."""
    purposes = _purpose(purpose)
    ledger = _service(observer)
    event = _event(
        leaf_index,
        type_=EXPORT,
        subtype=DISCLOSE,
        action="R",
        recorded=at,
        failed=outcome == "refused",
        outcome="released" if refusal is None else f"refused: {refusal}",
        purpose=purposes,
        observer=ledger,
        source_type={"system": SECURITY_SOURCE_TYPE, "code": "4", "display": "Application Server"},
    )
    event["agent"] = [
        _agent(SOURCE_ROLE, _institution(holder), requestor=False),
        {
            **_agent(DESTINATION_ROLE, _institution(requester), requestor=True),
            "purposeOfUse": purposes,
        },
        _agent(CUSTODIAN, _institution(holder), requestor=False),
        _agent(APPLICATION, ledger, requestor=False),
    ]
    grant = {
        "what": {"identifier": {"system": GRANT_SYSTEM, "value": grant_ref}},
        "type": {"system": AUDIT_ENTITY_TYPE, "code": "2", "display": "System Object"},
        "description": "the grant presented for this release",
        "detail": [{"type": "data-category", "valueString": c} for c in sorted(categories)],
    }
    event["entity"] = [_patient(subject, ()), grant, *_consents(relied_on)]
    return _validated(event)


def _event(
    leaf_index: int,
    *,
    type_: Json,
    subtype: Json,
    action: str,
    recorded: datetime,
    failed: bool,
    outcome: str,
    purpose: list[Json],
    observer: Json,
    source_type: Json,
) -> Json:
    if leaf_index < 0:
        raise InvalidConsentError("leaf_index is 0-based and cannot be negative")
    return {
        "resourceType": "AuditEvent",
        "id": f"leaf-{leaf_index}",
        "extension": [{"url": EXT_LEAF_INDEX, "valueUnsignedInt": leaf_index}],
        "type": type_,
        "subtype": [subtype],
        "action": action,
        "recorded": recorded.isoformat(),
        "outcome": "4" if failed else "0",
        "outcomeDesc": outcome,
        "purposeOfEvent": purpose,
        "source": {"observer": observer, "type": [source_type]},
    }


def _agent(kind: Json, who: Json, *, requestor: bool) -> Json:
    return {"type": {"coding": [kind]}, "who": who, "requestor": requestor}


def _purpose(purpose: Purpose) -> list[Json]:
    system, code = PURPOSE_CODINGS[purpose]
    return [{"coding": [{"system": system, "code": code}]}]


def _service(observer: str) -> Json:
    """This ledger as a Reference: the same value in ``source.observer`` and its agent."""
    return {
        "type": "Device",
        "identifier": {"system": SERVICE_SYSTEM, "value": observer},
        "display": observer,
    }


def _institution(institution: str) -> Json:
    return {
        "type": "Organization",
        "identifier": {"system": INSTITUTION_ID_SYSTEM, "value": institution},
    }


def _patient(subject: str, categories: Iterable[Category]) -> Json:
    entity: Json = {
        "what": {"type": "Patient", "identifier": {"system": PSEUDONYM_SYSTEM, "value": subject}},
        "type": {"system": AUDIT_ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }
    details = [{"type": "data-category", "valueString": c} for c in sorted(categories)]
    if details:
        entity["detail"] = details
    return entity


def _consents(consent_ids: Iterable[str]) -> list[Json]:
    return [
        {
            "what": {"type": "Consent", "reference": f"Consent/{consent_id}"},
            "type": {"system": RESOURCE_TYPES, "code": "Consent", "display": "Consent"},
            "description": "consent relied on",
        }
        for consent_id in consent_ids
    ]


def _validated(event: Json) -> Json:
    dumped: Json = FhirAuditEvent.model_validate(event).model_dump(mode="json")
    return dumped
