"""FHIR R4 AuditEvent: a patient's access decisions as a searchset Bundle.

Each logged ``access.decided`` becomes one AuditEvent (``domain.fhir.audit_event_to_fhir``,
which validates it), its id the decision's leaf. A break-glass permit is labelled with the HL7
security label BTG ("break the glass") in ``meta.security``; its outcome text still says what
the consents said.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from ..access import decision_of
from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..dependencies import get_vault
from ..domain.fhir import audit_event_to_fhir
from ..domain.vocab import V3_ACT_REASON
from ..identity import SUBJECT_PATTERN, ResidentVault
from .access import Service
from .history import subject_for

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=AUTH_RESPONSES)

FHIR_JSON = "application/fhir+json"
BREAK_THE_GLASS = {"system": V3_ACT_REASON, "code": "BTG", "display": "break the glass"}

Reader = Annotated[Principal, Depends(require_roles(Role.RESIDENT, Role.REGULATOR))]


def audit_event(leaf_index: int, event: dict[str, Any]) -> dict[str, Any]:
    """One logged decision as an R4 AuditEvent with id ``leaf-<leaf_index>``."""
    request, decision = decision_of(event)
    resource = audit_event_to_fhir(request, decision, leaf_index=leaf_index)
    resource["id"] = f"leaf-{leaf_index}"
    if event.get("breakglass"):
        resource["meta"] = {"security": [BREAK_THE_GLASS]}
    return resource


@router.get(
    "/AuditEvent",
    response_class=JSONResponse,
    responses={200: {"content": {FHIR_JSON: {}}, "description": "A searchset Bundle"}},
)
def search_audit_events(
    principal: Reader,
    service: Service,
    vault: Annotated[ResidentVault, Depends(get_vault)],
    patient: Annotated[
        str,
        Query(
            pattern=SUBJECT_PATTERN.replace("^", "^(Patient/)?"),
            description="The patient's pseudonym (or Patient/<pseudonym>).",
        ),
    ],
) -> JSONResponse:
    """The access decisions about a patient: residents for themselves, regulators for anyone."""
    subject = patient.removeprefix("Patient/")
    if principal.role is Role.RESIDENT:
        subject = subject_for(principal, subject, vault)
    entries = [
        {
            "fullUrl": f"AuditEvent/leaf-{leaf_index}",
            "resource": audit_event(leaf_index, event),
            "search": {"mode": "match"},
        }
        for leaf_index, kind, event in service.records.access_for(subject=subject)
        if kind == "access.decided"
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "entry": entries,
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)
