"""FHIR R4 AuditEvent: a patient's access decisions as a searchset Bundle.

Each logged ``access.decided`` becomes one AuditEvent (``domain.fhir.audit_event_to_fhir``,
which validates it), its id the decision's leaf. A break-glass permit is labelled with the HL7
security label BTG ("break the glass") in ``meta.security``; its outcome text still says what
the consents said.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ..access import decision_of
from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..dependencies import get_vault
from ..domain.fhir import audit_event_to_fhir
from ..domain.vocab import V3_ACT_REASON
from ..identity import SUBJECT_PATTERN, ResidentVault
from ..paging import DEFAULT_LIMIT, After, Limit, next_url, public_url_of, split_page
from .access import Service
from .history import subject_for

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=AUTH_RESPONSES)

FHIR_JSON = "application/fhir+json"
DECIDED = ("access.decided",)
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
    responses={
        200: {
            "content": {FHIR_JSON: {}},
            "description": 'A searchset Bundle, a page of it: its link "next" names the next page',
        }
    },
)
def search_audit_events(
    request: Request,
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
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> JSONResponse:
    """The access decisions about a patient: residents for themselves, regulators for anyone;
    a page at a time (``total`` counts them all)."""
    subject = patient.removeprefix("Patient/")
    if principal.role is Role.RESIDENT:
        subject = subject_for(principal, subject, vault)
    decided, more = split_page(
        service.records.access_page(kinds=DECIDED, after=after, limit=limit + 1, subject=subject),
        limit,
    )
    entries = [
        {
            "fullUrl": f"AuditEvent/leaf-{leaf_index}",
            "resource": audit_event(leaf_index, event),
            "search": {"mode": "match"},
        }
        for leaf_index, _, event in decided
    ]
    links = [{"relation": "self", "url": public_url_of(request)}]
    if more:
        links.append({"relation": "next", "url": next_url(request, decided[-1][0])})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": service.records.count_access(kinds=DECIDED, subject=subject),
        "link": links,
        "entry": entries,
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)
