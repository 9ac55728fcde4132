"""FHIR R4 Consent: create from a resource, read one, search by patient.

A ``Patient/<id>`` reference in an incoming resource is the resident's identifier at the
hospital's edge; it is pseudonymised on the way in and never stored or logged. Resources this
service writes name the patient by pseudonym identifier. Whatever the model cannot express is
refused whole with a 422 naming the element, never half-applied.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse

from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..consents import ConsentService
from ..domain.errors import InvalidConsentError, UnsupportedConsentError
from ..domain.fhir import consent_from_fhir, consent_to_fhir
from ..errors import UnprocessableError
from ..identity import PseudonymKey
from .consents import get_consents

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=AUTH_RESPONSES)

FHIR_JSON = "application/fhir+json"
RULE_FIELDS = {"type", "grantee", "holders", "categories", "purposes", "period", "provisions"}

Resident = Annotated[Principal, Depends(require_roles(Role.RESIDENT))]
Reader = Annotated[Principal, Depends(require_roles(Role.RESIDENT, Role.REGULATOR, Role.ADMIN))]
Service = Annotated[ConsentService, Depends(get_consents)]


def _pseudonym_key(request: Request) -> PseudonymKey:
    key: PseudonymKey = request.app.state.pseudonym_key
    return key


class FhirJSONResponse(JSONResponse):
    """FHIR's own JSON media type, documented as such in the OpenAPI."""

    media_type = FHIR_JSON


def _fhir(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> FhirJSONResponse:
    return FhirJSONResponse(body, status_code=status_code, headers=headers)


@router.post("/Consent", status_code=201, response_class=FhirJSONResponse)
def create_consent(
    resource: Annotated[dict[str, Any], Body(description="An R4 Consent resource.")],
    principal: Resident,
    service: Service,
    key: Annotated[PseudonymKey, Depends(_pseudonym_key)],
) -> FhirJSONResponse:
    """Create a consent from an R4 Consent; the server assigns its id and time of grant."""

    def pseudonymise(reference: str) -> str:
        return key.subject_of(reference.split("/", 1)[1])

    try:
        parsed = consent_from_fhir(resource, pseudonymise=pseudonymise)
    except UnsupportedConsentError as exc:
        raise UnprocessableError(
            f"this Consent cannot be expressed here: {exc}", path=exc.path
        ) from exc
    except (InvalidConsentError, ValueError) as exc:
        raise UnprocessableError(f"not a usable R4 Consent: {exc}") from exc
    if parsed.status != "active":
        raise UnprocessableError("only an active Consent can be created; revoke with DELETE")
    expected = parsed.subject if parsed.grantor.kind == "resident" else parsed.grantor.guardian
    if principal.id != expected:
        raise UnprocessableError("the Consent's consenting person is not the caller")
    rules = parsed.model_dump(mode="json", include=RULE_FIELDS)
    leaf_index, consent = service.grant(principal, rules, parsed.subject)
    return _fhir(
        consent_to_fhir(consent),
        201,
        {"Location": f"/fhir/Consent/{consent.consent_id}", "X-Ledger-Leaf-Index": str(leaf_index)},
    )


@router.get("/Consent/{consent_id}", response_class=FhirJSONResponse)
def read_consent(consent_id: str, principal: Reader, service: Service) -> FhirJSONResponse:
    """The current version of a consent as an R4 Consent."""
    consent = service.current(consent_id)
    service.may_read(principal, consent.subject)
    return _fhir(consent_to_fhir(consent))


@router.get("/Consent", response_class=FhirJSONResponse)
def search_consents(
    principal: Reader,
    service: Service,
    patient: Annotated[str, Query(max_length=300, description="The patient's pseudonym.")],
) -> FhirJSONResponse:
    """A searchset Bundle of the patient's consents (current versions)."""
    subject = patient.removeprefix("Patient/")
    service.may_read(principal, subject)
    entries = [
        {"fullUrl": f"Consent/{consent.consent_id}", "resource": consent_to_fhir(consent)}
        for _, consent in service.latest_of(subject)
    ]
    return _fhir(
        {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    )
