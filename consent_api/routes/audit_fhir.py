"""FHIR R4 AuditEvent: a patient's decisions, releases and refusals, searched or read by id.

Each logged ``access.decided`` is a BALP AuthZconsent-style AuditEvent, each ``access.released``
and ``access.refused`` a PrivacyDisclosure-style one (``domain.fhir_audit``, which validates
them); the id is ``leaf-<leaf index>``. A break-glass permit is labelled with the HL7 security
label BTG ("break the glass") in ``meta.security``; its outcome text still says what the
consents said. Search parameters are those of the CapabilityStatement, each applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..access import decision_of
from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..dependencies import get_vault
from ..domain.fhir_audit import decision_event, disclosure_event
from ..domain.vocab import V3_ACT_REASON, Category, Purpose
from ..errors import NotFoundError
from ..identity import ResidentVault
from ..paging import public_base
from .access import Service
from .fhir_docs import fhir_responses
from .fhir_search import BadSearchError, Search, SearchParam
from .history import subject_for

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=AUTH_RESPONSES)

FHIR_JSON = "application/fhir+json"
_DIGITS: Final = re.compile(r"[0-9]+")
KINDS: Final = ("access.decided", "access.released", "access.refused")
BREAK_THE_GLASS = {"system": V3_ACT_REASON, "code": "BTG", "display": "break the glass"}
SCAN: Final = 1000
"""Events read per range query while filtering a search."""
AUDIT_SEARCH: Final = (
    SearchParam("patient", "reference", "The patient, by pseudonym (Patient/<pseudonym>)."),
    SearchParam("date", "date", "AuditEvent.recorded; prefixes eq ne gt lt ge le sa eb."),
    SearchParam("agent", "reference", "An institution among the agents (Organization/<id>)."),
    SearchParam("entity", "reference", "A Consent relied on (Consent/<id>)."),
    SearchParam("type", "token", "110113 (a decision) or 110106 (a release or refusal)."),
    SearchParam("subtype", "token", "AuthZ-Consent (a decision) or disclose."),
    SearchParam("outcome", "token", "0 (permit, released) or 4 (deny, refused)."),
)

Reader = Annotated[Principal, Depends(require_roles(Role.RESIDENT, Role.REGULATOR))]
Vault = Annotated[ResidentVault, Depends(get_vault)]


def audit_event(leaf_index: int, kind: str, event: dict[str, Any]) -> dict[str, Any]:
    """One logged access event as an R4 AuditEvent with id ``leaf-<leaf_index>``."""
    if kind == "access.decided":
        request, decision = decision_of(event)
        resource = decision_event(request, decision, leaf_index=leaf_index)
    else:
        resource = disclosure_event(
            outcome="released" if kind == "access.released" else "refused",
            requester=event["requester"],
            holder=event["holder"],
            subject=event["subject"],
            categories=[Category(c) for c in event["categories"]],
            purpose=Purpose(event["purpose"]),
            at=datetime.fromisoformat(event["at"]),
            grant_ref=event["grant_ref"],
            relied_on=[r["consent_id"] for r in event.get("relied_on", [])],
            refusal=event.get("refusal"),
            leaf_index=leaf_index,
        )
    if event.get("breakglass"):
        resource["meta"] = {"security": [BREAK_THE_GLASS]}
    return resource


def _patient(principal: Principal, subject: str, vault: ResidentVault) -> str:
    return subject_for(principal, subject, vault) if principal.role is Role.RESIDENT else subject


@router.get("/AuditEvent/{event_id}", response_class=JSONResponse, **fhir_responses("read-audit"))
def read_audit_event(
    event_id: str, principal: Reader, service: Service, vault: Vault
) -> JSONResponse:
    """One AuditEvent by id (``leaf-<leaf index>``), for whom it is about or a regulator."""
    number = event_id.removeprefix("leaf-")
    if not event_id.startswith("leaf-") or not _DIGITS.fullmatch(number) or len(number) > 18:
        raise NotFoundError(f"no AuditEvent {event_id}")
    found = service.records.access_page(kinds=KINDS, after=int(number) - 1, limit=1)
    if not found or found[0][0] != int(number):
        raise NotFoundError(f"no AuditEvent {event_id}")
    leaf_index, kind, event = found[0]
    _patient(principal, event["subject"], vault)  # a resident: only about themself or a child
    return JSONResponse(audit_event(leaf_index, kind, event), media_type=FHIR_JSON)


@router.get("/AuditEvent", response_class=JSONResponse, **fhir_responses("search-audit"))
def search_audit_events(
    request: Request, principal: Reader, service: Service, vault: Vault
) -> JSONResponse:
    """The access events about a patient (residents: themselves or a child; regulators:
    anyone), in log order, a page of ``_count`` at a time (``total`` counts every match)."""
    search = Search(request, AUDIT_SEARCH)
    patients = search.references("patient", "Patient")
    if patients is None or len(patients) != 1:
        raise BadSearchError("patient is required, once (Patient/<pseudonym>)", path="patient")
    subject = _patient(principal, next(iter(patients)), vault)
    base = public_base(request)
    page: list[dict[str, Any]] = []
    last: int | None = None
    more = False
    total = 0
    for leaf_index, resource in _matching(search, service, subject):
        total += 1
        if search.after is not None and leaf_index <= search.after:
            continue
        if len(page) == search.count:
            more = True
            continue
        page.append(
            {
                "fullUrl": f"{base}fhir/AuditEvent/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
        )
        last = leaf_index
    links = [{"relation": "self", "url": search.self_link()}]
    if more and last is not None:
        links.append({"relation": "next", "url": search.next_link(last)})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": page,
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)


def _matching(
    search: Search, service: Service, subject: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every event about ``subject`` that the search's filters keep, in log order."""
    after: int | None = None
    while True:
        rows = service.records.access_page(kinds=KINDS, after=after, limit=SCAN, subject=subject)
        for leaf_index, kind, event in rows:
            resource = audit_event(leaf_index, kind, event)
            if _matches(search, resource):
                yield leaf_index, resource
        if len(rows) < SCAN:
            return
        after = rows[-1][0]


def _matches(search: Search, event: dict[str, Any]) -> bool:
    recorded = datetime.fromisoformat(event["recorded"])
    if not all(d.matches(recorded) for d in search.dates("date")):
        return False
    agents = search.references("agent", "Organization")
    if agents is not None and not agents & _identified(a["who"] for a in event["agent"]):
        return False
    entities = search.references("entity", "Consent")
    named = {e["what"].get("reference", "").removeprefix("Consent/") for e in event["entity"]}
    if entities is not None and not entities & named:
        return False
    for name, codes in (
        ("type", {event["type"]["code"]}),
        ("subtype", {c["code"] for c in event["subtype"]}),
        ("outcome", {event["outcome"]}),
    ):
        wanted = search.tokens(name)
        if wanted is not None and not wanted & codes:
            return False
    return True


def _identified(references: Iterator[dict[str, Any]]) -> set[str]:
    return {r["identifier"]["value"] for r in references if r.get("type") == "Organization"}
