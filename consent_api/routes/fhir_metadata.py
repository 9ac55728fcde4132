"""``GET /fhir/metadata``: the CapabilityStatement, built from what the routes declare.

Its search parameters are the very ``SearchParam`` tuples the search routes read their query
with, so it cannot advertise a parameter that is not applied (nor miss one that is).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..paging import public_base
from .audit_fhir import AUDIT_SEARCH
from .fhir_consent import CONSENT_SEARCH
from .fhir_docs import fhir_responses
from .fhir_search import DEFAULT_COUNT, MAX_COUNT, SearchParam

router = APIRouter(prefix="/fhir", tags=["fhir"])

FHIR_JSON = "application/fhir+json"
SEARCH_NOTE: Final = (
    f"_count pages the results (default {DEFAULT_COUNT}, at most {MAX_COUNT}); the Bundle's "
    "next link carries an opaque _cursor. patient is required. Values of a parameter separated "
    "by commas match any of them; a parameter repeated must hold each time (date=ge..&date=le..). "
    "Unknown parameters are ignored and left out of the self link, or refused with a 400 when "
    "the request says Prefer: handling=strict. Modifiers (:exact, :missing...) and the date "
    "prefix ap are refused with a 400."
)


def capability_statement(base_url: str) -> dict[str, Any]:
    """What this server supports, for ``base_url`` (ending with a slash)."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2025-01-01",
        "kind": "instance",
        "software": {"name": "consent-ledger"},
        "implementation": {
            "description": "consent-ledger: consents and access audit for a regional platform",
            "url": f"{base_url}fhir",
        },
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": SEARCH_NOTE,
                "security": {
                    "cors": False,
                    "description": "Bearer tokens (Authorization: Bearer): residents, "
                    "regulators and admins hold platform-issued EdDSA JWTs. Residents read and "
                    "create their own consents (or a child's as guardian) and read the audit of "
                    "access to their records; regulators read everything; admins read consents.",
                },
                "resource": [
                    {
                        "type": "Consent",
                        "versioning": "versioned",
                        "readHistory": True,
                        "updateCreate": False,
                        "conditionalCreate": False,
                        "interaction": [
                            {
                                "code": "create",
                                "documentation": "Refused whole (422, "
                                "OperationOutcome listing every blocking element) unless its "
                                "every rule is explicit: see the README's FHIR section.",
                            },
                            {"code": "read"},
                            {"code": "vread"},
                            {"code": "search-type"},
                        ],
                        "searchParam": _params(CONSENT_SEARCH),
                    },
                    {
                        "type": "AuditEvent",
                        "profile": "http://hl7.org/fhir/StructureDefinition/AuditEvent",
                        "supportedProfile": [
                            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.AuthZconsent",
                            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PrivacyDisclosure.Source",
                        ],
                        "versioning": "no-version",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": _params(AUDIT_SEARCH),
                    },
                ],
            }
        ],
    }


def _params(params: tuple[SearchParam, ...]) -> list[dict[str, str]]:
    return [{"name": p.name, "type": p.type, "documentation": p.documentation} for p in params]


@router.get("/metadata", response_class=JSONResponse, **fhir_responses("metadata"))
def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement: resources, interactions, search parameters, formats, security."""
    return JSONResponse(capability_statement(public_base(request)), media_type=FHIR_JSON)
