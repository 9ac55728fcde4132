"""Platform administration (admins only): institutions and their keys, residents, tokens, erasure.

What is logged carries no personal data: an institution's id, type and key thumbprint; a
resident's pseudonymous subject and the time of their erasure.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from ledger.batcher import GroupCommitter

from .. import institution_keys
from ..auth import (
    AUTH_RESPONSES,
    Authenticator,
    PlatformKeys,
    Role,
    get_authenticator,
    require_roles,
)
from ..dependencies import (
    get_committer,
    get_institutions,
    get_platform_keys,
    get_pseudonym_key,
    get_records,
    get_settings,
    get_vault,
)
from ..domain.vocab import INSTITUTION_ID_PATTERN, InstitutionType
from ..errors import (
    PROBLEM_JSON,
    ErasedError,
    UnknownSubjectError,
    UnprocessableError,
)
from ..identity import (
    SUBJECT_ERASED,
    SUBJECT_PATTERN,
    PersonalRecord,
    PseudonymKey,
    ResidentVault,
    Subject,
    normalize_identifier,
    subject_erased_event,
)
from ..institutions import (
    Institution,
    InstitutionRegistry,
    jwk_of,
    key_problem,
    public_key_from_jwk,
    public_key_from_pem,
)
from ..records import Records
from ..settings import ApiSettings
from .lapse import forget_lapse_dates


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {}}}


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_roles(Role.ADMIN))],
    responses=AUTH_RESPONSES,
)

InstitutionId = Annotated[str, Field(pattern=INSTITUTION_ID_PATTERN)]


# -- schemas ---------------------------------------------------------------------------------


class PublicJwk(BaseModel):
    """An Ed25519 public key as an OKP JWK (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(pattern=r"^[A-Za-z0-9_-]{43}$", description="The 32-byte key, base64url.")


class Ed25519Jwk(PublicJwk):
    """A JWK as an institution may send it: the public key, optionally with kid, alg and use."""

    model_config = ConfigDict(extra="forbid")

    kid: str | None = Field(default=None, max_length=128)
    alg: Literal["EdDSA"] | None = None
    use: Literal["sig"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_private_key(cls, value: Any) -> Any:
        if isinstance(value, dict) and "d" in value:
            raise ValueError("this JWK holds a private key; send only the public key")
        return value


class InstitutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: InstitutionId
    name: str = Field(min_length=1, max_length=200)
    type: InstitutionType
    public_key: Ed25519Jwk | Annotated[str, Field(max_length=2000)] = Field(
        description="The key the institution signs its tokens with: a JWK, or PEM text."
    )


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: Ed25519Jwk | Annotated[str, Field(max_length=2000)] = Field(
        description="The institution's new public key: a JWK, or PEM text."
    )


class InstitutionOut(BaseModel):
    id: str
    name: str
    type: InstitutionType
    public_key: PublicJwk
    key_thumbprint: str = Field(description="RFC 7638 thumbprint of the public key.")
    active: bool
    registered_at: datetime
    deactivated_at: datetime | None
    key_refused: str | None = Field(
        default=None,
        description="Why the registered key verifies no token (small order), if it does not.",
    )

    @classmethod
    def of(cls, institution: Institution) -> InstitutionOut:
        return cls(
            id=institution.id,
            name=institution.name,
            type=institution.type,
            public_key=PublicJwk.model_validate(jwk_of(institution.public_key)),
            key_thumbprint=institution.key_thumbprint,
            active=institution.active,
            registered_at=institution.registered_at,
            deactivated_at=institution.deactivated_at,
            key_refused=key_problem(institution.public_key),
        )


class InstitutionLogged(InstitutionOut):
    leaf_index: int = Field(description="The leaf of the logged registration or revocation.")


class ResidentIn(BaseModel):
    """A resident's identifier and personal fields; stored encrypted, never logged."""

    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(min_length=1, max_length=128, description="e.g. a national id.")
    name: str = Field(min_length=1, max_length=200)
    birth_date: date
    contact: str | None = Field(default=None, max_length=200)
    guardians: list[Subject] = Field(default=[], max_length=8)


class ResidentOut(BaseModel):
    subject: str = Field(description="The pseudonymous subject id: the same for one identifier.")
    created: bool


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal[Role.RESIDENT, Role.REGULATOR]
    subject: str = Field(
        min_length=1, max_length=128, description="A resident's subject id or a regulator's id."
    )
    ttl: StrictInt | None = Field(default=None, gt=0, description="Seconds; default: token_ttl.")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = Field(default="Bearer")
    expires_in: int
    expires_at: datetime


class ErasureOut(BaseModel):
    subject: str
    erased_at: datetime
    leaf_index: int = Field(description="The leaf of the subject.erased event.")


# -- institutions ----------------------------------------------------------------------------


@router.post(
    "/institutions",
    status_code=201,
    responses={409: _problem("The id or the key is already registered")},
)
def register_institution(
    body: InstitutionIn,
    registry: Annotated[InstitutionRegistry, Depends(get_institutions)],
    committer: Annotated[GroupCommitter, Depends(get_committer)],
    settings: Annotated[ApiSettings, Depends(get_settings)],
) -> InstitutionLogged:
    """Register an institution and the public key of its tokens; logs ``institution.registered``.

    The institution keeps the private key; ``consent-ledger institution add`` makes a key pair,
    registers it and writes the private key file to hand over."""
    institution, leaf_index = institution_keys.register(
        registry,
        committer.append,
        issuer=settings.token_issuer,
        institution_id=body.id,
        name=body.name,
        institution_type=body.type,
        key=_public_key(body.public_key),
    )
    return InstitutionLogged(**InstitutionOut.of(institution).model_dump(), leaf_index=leaf_index)


@router.put(
    "/institutions/{institution_id}/key",
    responses={
        404: _problem("No such institution"),
        409: _problem("Deactivated, or the key is already registered"),
    },
)
def rotate_institution_key(
    institution_id: Annotated[str, Path(pattern=INSTITUTION_ID_PATTERN)],
    body: KeyIn,
    registry: Annotated[InstitutionRegistry, Depends(get_institutions)],
    committer: Annotated[GroupCommitter, Depends(get_committer)],
) -> InstitutionLogged:
    """Replace the institution's key: tokens signed with the old one are refused from now on
    (within a second in other workers); logs ``institution.key_rotated``."""
    institution, leaf_index = institution_keys.rotate(
        registry, committer.append, institution_id, _public_key(body.public_key)
    )
    return InstitutionLogged(**InstitutionOut.of(institution).model_dump(), leaf_index=leaf_index)


def _public_key(sent: Ed25519Jwk | str) -> Ed25519PublicKey:
    try:
        if isinstance(sent, Ed25519Jwk):
            return public_key_from_jwk(sent.model_dump(include={"kty", "crv", "x"}))
        return public_key_from_pem(sent)
    except ValueError as exc:
        raise UnprocessableError(str(exc)) from exc


@router.get("/institutions")
def list_institutions(
    registry: Annotated[InstitutionRegistry, Depends(get_institutions)],
) -> list[InstitutionOut]:
    """Every registered institution, active or not, by id."""
    return [InstitutionOut.of(institution) for institution in registry.all()]


@router.post(
    "/institutions/{institution_id}/deactivate",
    responses={404: _problem("No such institution"), 409: _problem("Already deactivated")},
)
def deactivate_institution(
    institution_id: Annotated[str, Path(pattern=INSTITUTION_ID_PATTERN)],
    registry: Annotated[InstitutionRegistry, Depends(get_institutions)],
    committer: Annotated[GroupCommitter, Depends(get_committer)],
) -> InstitutionLogged:
    """Refuse the institution's tokens from now on; logs ``institution.revoked``."""
    institution = registry.deactivate(institution_id)
    assert institution.deactivated_at is not None
    revoked_at = institution.deactivated_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    leaf_index = committer.append(
        "institution.revoked", {"institution_id": institution.id, "revoked_at": revoked_at}
    )
    return InstitutionLogged(**InstitutionOut.of(institution).model_dump(), leaf_index=leaf_index)


# -- residents -------------------------------------------------------------------------------


@router.post(
    "/residents",
    status_code=201,
    responses={
        200: {"model": ResidentOut, "description": "Known already: personal fields replaced"},
        410: _problem("This resident was erased"),
    },
)
def register_resident(
    body: ResidentIn,
    response: Response,
    vault: Annotated[ResidentVault, Depends(get_vault)],
    pseudonyms: Annotated[PseudonymKey, Depends(get_pseudonym_key)],
) -> ResidentOut:
    """Register a resident (or replace their personal fields) and return their subject id."""
    identifier = normalize_identifier(body.identifier)
    if not identifier:
        raise UnprocessableError("the identifier is blank")
    if body.birth_date > datetime.now(UTC).date():
        raise UnprocessableError("the birth date is in the future")
    subject = pseudonyms.subject_of(identifier)
    for guardian in body.guardians:
        if guardian == subject:
            raise UnprocessableError("a resident cannot be their own guardian")
        try:
            vault.ensure_registered(guardian)
        except (UnknownSubjectError, ErasedError) as exc:
            raise UnprocessableError(f"guardian {guardian} is not a registered resident") from exc
    record = PersonalRecord(
        identifier=identifier,
        name=body.name,
        birth_date=body.birth_date,
        contact=body.contact,
        guardians=tuple(body.guardians),
    )
    created = vault.put(subject, record)
    response.status_code = 201 if created else 200
    return ResidentOut(subject=subject, created=created)


@router.delete(
    "/residents/{subject}",
    responses={404: _problem("No such resident"), 410: _problem("Already erased")},
)
def erase_resident(
    subject: Annotated[str, Path(pattern=SUBJECT_PATTERN)],
    vault: Annotated[ResidentVault, Depends(get_vault)],
    committer: Annotated[GroupCommitter, Depends(get_committer)],
    records: Annotated[Records, Depends(get_records)],
    authenticator: Annotated[Authenticator, Depends(get_authenticator)],
) -> ErasureOut:
    """Erase a resident's personal data by deleting their key; logs ``subject.erased``. Their
    tokens stop working at once."""
    erasure, erased_now = vault.erase(subject)
    authenticator.forget_resident(subject)
    forget_lapse_dates(records, subject)  # also on a retry: it is idempotent
    if not erased_now and erasure.leaf_index is not None:
        raise ErasedError(f"resident {subject} was already erased", leaf_index=erasure.leaf_index)
    # Erased first, logged second: a failed append leaves leaf_index unset, and a retry logs it.
    leaf_index = committer.append(SUBJECT_ERASED, subject_erased_event(erasure))
    vault.record_erasure_logged(subject, leaf_index)
    return ErasureOut(subject=subject, erased_at=erasure.erased_at, leaf_index=leaf_index)


# -- tokens ----------------------------------------------------------------------------------


@router.post(
    "/tokens",
    status_code=201,
    responses={404: _problem("No such resident"), 410: _problem("This resident was erased")},
)
def issue_platform_token(
    body: TokenIn,
    platform: Annotated[PlatformKeys, Depends(get_platform_keys)],
    vault: Annotated[ResidentVault, Depends(get_vault)],
) -> TokenOut:
    """Issue a platform token to a registered resident or to a regulator."""
    try:
        issued = platform.issue(body.role, body.subject, body.ttl)
    except ValueError as exc:
        raise UnprocessableError(str(exc)) from exc
    if body.role is Role.RESIDENT:
        vault.ensure_registered(body.subject)
    return TokenOut(
        access_token=issued.token,
        expires_in=max(0, issued.expires_at - int(time.time())),
        expires_at=datetime.fromtimestamp(issued.expires_at, UTC),
    )
