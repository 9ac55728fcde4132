"""FHIR R4 Consent: create from a resource, read (current or one version), search.

A ``Patient/<id>`` reference in an incoming resource is the resident's identifier at the
hospital's edge; it is pseudonymised on the way in and never stored or logged. Resources this
service writes name the patient by pseudonym identifier. Whatever the model cannot express is
refused whole with a 422 listing every element that blocks it, never half-applied; an
institution named as recipient or custodian must be registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..consents import ConsentService
from ..dependencies import get_institutions
from ..domain.consent import Consent, Provision
from ..domain.errors import InvalidConsentError, UnsupportedConsentError
from ..domain.fhir import consent_from_fhir, consent_to_fhir
from ..errors import NotFoundError, UnprocessableError
from ..identity import PseudonymKey
from ..institutions import InstitutionRegistry
from ..paging import public_base
from .consents import get_consents
from .fhir_docs import fhir_responses
from .fhir_search import BadSearchError, Search, SearchParam

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=AUTH_RESPONSES)

FHIR_JSON = "application/fhir+json"
RULE_FIELDS = {"type", "grantee", "holders", "categories", "purposes", "period", "provisions"}
CONSENT_SEARCH: Final = (
    SearchParam("patient", "reference", "The patient, by pseudonym (Patient/<pseudonym>)."),
    SearchParam("status", "token", "active, or inactive (revoked)."),
    SearchParam("actor", "reference", "An institution named in any rule (Organization/<id>)."),
    SearchParam("date", "date", "Consent.dateTime (the current version's time of grant)."),
    SearchParam("_lastUpdated", "date", "meta.lastUpdated: the current version's time."),
)

Resident = Annotated[Principal, Depends(require_roles(Role.RESIDENT))]
Reader = Annotated[Principal, Depends(require_roles(Role.RESIDENT, Role.REGULATOR, Role.ADMIN))]
Service = Annotated[ConsentService, Depends(get_consents)]
Institutions = Annotated[InstitutionRegistry, Depends(get_institutions)]


def _pseudonym_key(request: Request) -> PseudonymKey:
    key: PseudonymKey = request.app.state.pseudonym_key
    return key


class FhirJSONResponse(JSONResponse):
    """FHIR's own JSON media type, documented as such in the OpenAPI."""

    media_type = FHIR_JSON


def consent_url(request: Request, consent: Consent, *, versioned: bool = False) -> str:
    url = f"{public_base(request)}fhir/Consent/{consent.consent_id}"
    return f"{url}/_history/{consent.version}" if versioned else url


def _versioned(request: Request, consent: Consent, status_code: int = 200) -> FhirJSONResponse:
    headers = {"ETag": f'W/"{consent.version}"', "Last-Modified": _http_date(consent)}
    if status_code == 201:
        headers["Location"] = consent_url(request, consent, versioned=True)
    return FhirJSONResponse(consent_to_fhir(consent), status_code=status_code, headers=headers)


@router.post(
    "/Consent", status_code=201, response_class=FhirJSONResponse, **fhir_responses("create")
)
def create_consent(
    request: Request,
    resource: Annotated[dict[str, Any], Body(description="An R4 Consent resource.")],
    principal: Resident,
    service: Service,
    institutions: Institutions,
    key: Annotated[PseudonymKey, Depends(_pseudonym_key)],
) -> FhirJSONResponse:
    """Create a consent from an R4 Consent; the server assigns its id and time of grant."""

    def pseudonymise(reference: str) -> str:
        return key.subject_of(reference.split("/", 1)[1])

    def registered(institution: str) -> bool:
        return institutions.get(institution) is not None

    try:
        parsed = consent_from_fhir(resource, pseudonymise=pseudonymise, is_institution=registered)
    except UnsupportedConsentError as exc:
        blockers = [{"path": b.path, "reason": b.reason} for b in exc.blockers]
        raise UnprocessableError(
            f"this Consent cannot be expressed here: {exc}", path=exc.path, blockers=blockers
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
    response = _versioned(request, consent, 201)
    response.headers["X-Ledger-Leaf-Index"] = str(leaf_index)
    return response


@router.get("/Consent/{consent_id}", response_class=FhirJSONResponse, **fhir_responses("read"))
def read_consent(
    request: Request, consent_id: str, principal: Reader, service: Service
) -> FhirJSONResponse:
    """The current version of a consent as an R4 Consent (``ETag`` its version)."""
    consent = service.current(consent_id)
    service.may_read(principal, consent.subject)
    return _versioned(request, consent)


@router.get(
    "/Consent/{consent_id}/_history/{version_id}",
    response_class=FhirJSONResponse,
    **fhir_responses("vread"),
)
def read_consent_version(
    request: Request, consent_id: str, version_id: str, principal: Reader, service: Service
) -> FhirJSONResponse:
    """One version of a consent, as it was (versions count from 1)."""
    current = service.current(consent_id)
    service.may_read(principal, current.subject)
    for _, consent in service.records.consent_versions(consent_id):
        if str(consent.version) == version_id:
            return _versioned(request, consent)
    raise NotFoundError(f"consent {consent_id} has no version {version_id}")


@router.get("/Consent", response_class=FhirJSONResponse, **fhir_responses("search-consent"))
def search_consents(request: Request, principal: Reader, service: Service) -> FhirJSONResponse:
    """A searchset Bundle of a patient's consents (current versions), in log order; the
    parameters are those of the CapabilityStatement, each applied."""
    search = Search(request, CONSENT_SEARCH)
    patients = search.references("patient", "Patient")
    if patients is None or len(patients) != 1:
        raise BadSearchError("patient is required, once (Patient/<pseudonym>)", path="patient")
    (subject,) = patients
    service.may_read(principal, subject)
    matches = [
        (leaf, consent)
        for leaf, consent in sorted(service.latest_of(subject), key=lambda pair: pair[0])
        if _matches(search, consent)
    ]
    page = [(leaf, c) for leaf, c in matches if search.after is None or leaf > search.after]
    more = len(page) > search.count
    page = page[: search.count]
    links = [{"relation": "self", "url": search.self_link()}]
    if more:
        links.append({"relation": "next", "url": search.next_link(page[-1][0])})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "link": links,
        "entry": [
            {
                "fullUrl": consent_url(request, consent),
                "resource": consent_to_fhir(consent),
                "search": {"mode": "match"},
            }
            for _, consent in page
        ],
    }
    return FhirJSONResponse(bundle)


def _matches(search: Search, consent: Consent) -> bool:
    statuses = search.tokens("status")
    if statuses is not None and _status(consent) not in statuses:
        return False
    actors = search.references("actor", "Organization")
    if actors is not None and not actors & set(institutions_named(consent)):
        return False
    if not all(d.matches(consent.granted_at) for d in search.dates("date")):
        return False
    return all(d.matches(last_updated(consent)) for d in search.dates("_lastUpdated"))


def _status(consent: Consent) -> str:
    return "active" if consent.status == "active" else "inactive"


def last_updated(consent: Consent) -> datetime:
    return consent.revoked_at or consent.granted_at


def _http_date(consent: Consent) -> str:
    return format_datetime(last_updated(consent).astimezone(UTC), usegmt=True)


def institutions_named(consent: Consent) -> Iterator[str]:
    """Every institution a consent's rules name, as grantee or holder, at any depth."""
    if consent.grantee is not None and consent.grantee.institution is not None:
        yield consent.grantee.institution
    yield from consent.holders
    yield from _named(consent.provisions)


def _named(provisions: tuple[Provision, ...]) -> Iterator[str]:
    for provision in provisions:
        yield from (g.institution for g in provision.grantees if g.institution is not None)
        yield from provision.holders
        yield from _named(provision.provisions)
