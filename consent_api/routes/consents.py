"""Residents grant, narrow, renew and revoke consents; each change answers with its leaf index."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..consents import ConsentService
from ..domain.consent import Consent, Instant, check_nesting
from ..domain.vocab import INSTITUTION_ID_PATTERN, Category, InstitutionType, Purpose

router = APIRouter(prefix="/v1/consents", tags=["consents"], responses=AUTH_RESPONSES)

Resident = Annotated[Principal, Depends(require_roles(Role.RESIDENT))]
Reader = Annotated[Principal, Depends(require_roles(Role.RESIDENT, Role.REGULATOR, Role.ADMIN))]


def get_consents(request: Request) -> ConsentService:
    service: ConsentService = request.app.state.consents
    return service


Service = Annotated[ConsentService, Depends(get_consents)]
InstitutionId = Annotated[str, Field(pattern=INSTITUTION_ID_PATTERN)]


class GranteeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution: InstitutionId | None = Field(default=None, description="A registered id.")
    institution_type: InstitutionType | None = None


class PeriodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: Instant | None = None
    end: Instant | None = None


class RulesIn(BaseModel):
    """What a consent permits (or, as an opt-out, withholds); empty lists mean "any"."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["permit", "deny"] = "permit"
    grantee: GranteeIn | None = Field(description="One institution, or all of a type.")
    holders: list[InstitutionId] = Field(
        default=[], max_length=64, description="Holding institutions (registered ids)."
    )
    categories: list[Category] = Field(default=[], max_length=16)
    purposes: list[Purpose] = Field(default=[], max_length=8)
    period: PeriodIn = PeriodIn()
    provisions: list[dict[str, Any]] = Field(
        default=[], max_length=32, description="Nested exceptions (FHIR Consent.provision)."
    )

    @field_validator("provisions")
    @classmethod
    def _bounded(cls, provisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        check_nesting(provisions)  # before anything walks them recursively
        return provisions


class GrantIn(RulesIn):
    subject: str | None = Field(
        default=None, description="The resident the consent is about; a guardian names the child."
    )


class ConsentOut(BaseModel):
    consent: Consent
    leaf_index: int = Field(description="The log leaf of this version.")


def _out(result: tuple[int, Consent]) -> ConsentOut:
    leaf_index, consent = result
    return ConsentOut(consent=consent, leaf_index=leaf_index)


def _rules(body: RulesIn) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude={"subject"}, exclude_none=False)


@router.post("", status_code=status.HTTP_201_CREATED)
def grant(body: GrantIn, principal: Resident, service: Service) -> ConsentOut:
    """Grant a consent (as the resident, or as a guardian for a child under 14)."""
    subject = body.subject or principal.id
    return _out(service.grant(principal, _rules(body), subject))


@router.get("")
def list_consents(
    principal: Reader,
    service: Service,
    subject: Annotated[str | None, Query(max_length=256)] = None,
) -> list[ConsentOut]:
    """The latest version of each consent about ``subject`` (default: yourself)."""
    wanted = subject or principal.id
    service.may_read(principal, wanted)
    return [_out(item) for item in service.latest_of(wanted)]


@router.get("/{consent_id}")
def get_consent(consent_id: str, principal: Reader, service: Service) -> list[ConsentOut]:
    """Every logged version of one consent, oldest first."""
    versions = service.records.consent_versions(consent_id)
    current = service.current(consent_id)
    service.may_read(principal, current.subject)
    return [_out(item) for item in versions]


@router.put("/{consent_id}")
def narrow(consent_id: str, body: RulesIn, principal: Resident, service: Service) -> ConsentOut:
    """Narrow a consent: a new version that permits nothing the old one did not."""
    return _out(service.narrow(principal, consent_id, _rules(body)))


@router.post("/{consent_id}/renewal")
def renew(consent_id: str, principal: Resident, service: Service) -> ConsentOut:
    """Take over, at 14, a consent a guardian granted."""
    return _out(service.renew(principal, consent_id))


@router.delete("/{consent_id}")
def revoke(consent_id: str, principal: Resident, service: Service) -> ConsentOut:
    """Revoke a consent; it stops permitting at once."""
    return _out(service.revoke(principal, consent_id))
