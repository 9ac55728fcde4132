"""Consents shaped after FHIR R4 Consent: immutable models, their invariants and their lifecycle.

A consent is a root rule (``type``, ``grantee``, ``holders``, ``categories``, ``purposes``,
``period``) with nested ``provisions``, each an exception to its parent. An empty set means
"any". The models are frozen, forbid unknown fields and validate strictly, so they can serve
as API schemas as they are (from JSON, lists become sets and strings become enums and
datetimes; from Python, the exact types are required). Sets serialise sorted, so the JSON of a
consent is deterministic and can be hashed into a ledger leaf.

Lifecycle: a consent is granted as version 1, may be narrowed into later versions
(``narrowing.narrow``), renewed by the resident after a guardian's authority ends
(``renew_by_resident``) and revoked (``revoke``), which takes effect at the instant given.

Instants are timezone-aware and ``Instant``: written with an offset of at most 14 hours, in
whole minutes (what ISO 8601 profiles such as FHIR's dateTime and RFC 3339 can express), any
other offset is normalised to UTC; an instant whose UTC value falls outside years 1 to 9999 is
refused, since no output format can write it. A guardian's authority ends at 00:00 UTC on the
child's 14th birthday (``guardian_authority_ends``, a calendar date), so every replay of a
decision draws the line at the same instant whatever zone its inputs were written in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    model_validator,
)

from consent_api.domain.errors import InvalidConsentError
from consent_api.domain.vocab import Category, InstitutionType, Purpose

MAX_PROVISION_DEPTH: Final = 8
"""Deepest nesting of provisions below the root rule; deeper trees are refused."""

GUARDIAN_AUTHORITY_AGE: Final = 14
"""A guardian's consent for a child lapses on the child's 14th birthday."""

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)

Identifier = Annotated[str, Field(min_length=1, max_length=256)]
"""A pseudonym or an institution id: opaque, never personal data."""

ConsentId = Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
"""A consent id; the FHIR ``id`` syntax, so every consent can be written as a resource."""

ProvisionType = Literal["permit", "deny"]

MAX_OFFSET: Final = timedelta(hours=14)
"""The widest UTC offset an instant is written with (ISO 8601 / FHIR dateTime: ±14:00)."""


def expressible(at: datetime) -> datetime:
    """``at`` as every output format can write it: in UTC if its offset is beyond ±14:00 or
    not in whole minutes; refused if even UTC cannot write it (before year 1, after 9999)."""
    offset = at.utcoffset()
    if offset is None:
        raise InvalidConsentError(f"{at.isoformat()} has no time zone")
    try:
        in_utc = at.astimezone(UTC)
    except OverflowError as error:
        raise InvalidConsentError(
            f"{at.isoformat()} is outside the years 1 to 9999 in UTC"
        ) from error
    if abs(offset) > MAX_OFFSET or offset % timedelta(minutes=1):
        return in_utc
    return at


Instant = Annotated[AwareDatetime, AfterValidator(expressible)]
"""A timezone-aware instant every output format (JSON, FHIR, the auditor's) can write."""


class Period(BaseModel):
    """When a rule is in force: ``start <= at <= end`` (FHIR Period; an open side is unbounded)."""

    model_config = _STRICT

    start: Instant | None = None
    end: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Period:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise InvalidConsentError("period start is after its end")
        return self

    def contains(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at <= self.end)


class Grantee(BaseModel):
    """Who may receive data: one institution by id, or every institution of one type."""

    model_config = _STRICT

    institution: Identifier | None = None
    institution_type: InstitutionType | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Grantee:
        if (self.institution is None) == (self.institution_type is None):
            raise InvalidConsentError("a grantee is exactly one of institution or institution_type")
        return self

    def matches(self, requester: str, requester_type: InstitutionType) -> bool:
        if self.institution is not None:
            return self.institution == requester
        return self.institution_type == requester_type

    def sort_key(self) -> tuple[str, str]:
        return (self.institution or "", self.institution_type or "")


class Provision(BaseModel):
    """A nested exception: when its conditions match (within its parent's), its type applies."""

    model_config = _STRICT

    type: ProvisionType
    grantees: frozenset[Grantee] = frozenset()
    holders: frozenset[Identifier] = frozenset()
    categories: frozenset[Category] = frozenset()
    purposes: frozenset[Purpose] = frozenset()
    period: Period = Period()
    provisions: tuple[Provision, ...] = ()

    @field_serializer("holders", "categories", "purposes")
    def _sorted(self, values: frozenset[str]) -> list[str]:
        return sorted(values)

    @field_serializer("grantees")
    def _sorted_grantees(self, values: frozenset[Grantee]) -> list[Grantee]:
        return sorted(values, key=Grantee.sort_key)


class Grantor(BaseModel):
    """Who gave the consent: the resident, or a guardian (by pseudonym) for a minor."""

    model_config = _STRICT

    kind: Literal["resident", "guardian"]
    guardian: Identifier | None = None

    @model_validator(mode="after")
    def _check(self) -> Grantor:
        if (self.kind == "guardian") != (self.guardian is not None):
            raise InvalidConsentError("guardian is given exactly when the grantor is a guardian")
        return self


RESIDENT: Final = Grantor(kind="resident")


class Consent(BaseModel):
    """One version of a resident's consent about their data (``subject`` is a pseudonym).

    ``type`` is the root rule's: ``permit`` for a grant, ``deny`` for an opt-out (a withholding
    that vetoes what other consents permit). ``grantee`` None means every institution; a
    permit must always name its grantee (see ``_check_tree``).
    """

    model_config = _STRICT

    consent_id: ConsentId
    subject: Identifier
    version: int = Field(ge=1)
    grantor: Grantor
    type: ProvisionType = "permit"
    grantee: Grantee | None
    holders: frozenset[Identifier] = frozenset()
    categories: frozenset[Category] = frozenset()
    purposes: frozenset[Purpose] = frozenset()
    period: Period = Period()
    provisions: tuple[Provision, ...] = ()
    guardian_authority_ends: date | None = None
    status: Literal["active", "revoked"] = "active"
    granted_at: Instant
    revoked_at: Instant | None = None

    @field_serializer("holders", "categories", "purposes")
    def _sorted(self, values: frozenset[str]) -> list[str]:
        return sorted(values)

    @model_validator(mode="after")
    def _check(self) -> Consent:
        if (self.grantor.kind == "guardian") != (self.guardian_authority_ends is not None):
            raise InvalidConsentError(
                "guardian_authority_ends is given exactly when a guardian granted the consent"
            )
        if (self.status == "revoked") != (self.revoked_at is not None):
            raise InvalidConsentError("revoked_at is given exactly when the consent is revoked")
        if self.revoked_at is not None and self.revoked_at < self.granted_at:
            raise InvalidConsentError("a consent cannot be revoked before it was granted")
        if self.type == "permit" and self.grantee is None:
            raise InvalidConsentError("a permit must name its grantee (an institution or a type)")
        _check_tree(self.type, self.provisions, scoped=self.grantee is not None, depth=1)
        return self

    @property
    def guardian_lapses_at(self) -> datetime | None:
        """The instant a guardian's authority ends: 00:00 UTC on the child's 14th birthday."""
        if self.guardian_authority_ends is None:
            return None
        return datetime.combine(self.guardian_authority_ends, time(), UTC)

    def replace(self, **changes: object) -> Consent:
        """A copy with ``changes``, validated again (``model_copy`` would skip validation)."""
        return Consent.model_validate({**dict(self), **changes})


def _check_tree(
    parent_type: ProvisionType, provisions: Iterable[Provision], *, scoped: bool, depth: int
) -> None:
    """Nested rules alternate type and every permit is bound to a grantee.

    A child of the same type as its parent would be no exception (FHIR R4: nested provisions
    are exceptions to their parent), so such a tree has no clear reading and is refused. A
    permit with no grantee on its path would grant every institution.
    """
    for provision in provisions:
        if depth > MAX_PROVISION_DEPTH:
            raise InvalidConsentError(f"provisions nest deeper than {MAX_PROVISION_DEPTH}")
        if provision.type == parent_type:
            raise InvalidConsentError(
                f"a nested {provision.type} inside a {parent_type} is no exception to it"
            )
        here_scoped = scoped or bool(provision.grantees)
        if provision.type == "permit" and not here_scoped:
            raise InvalidConsentError("a nested permit must name grantees (or sit under some)")
        _check_tree(provision.type, provision.provisions, scoped=here_scoped, depth=depth + 1)


def check_nesting(provisions: object, key: str = "provisions") -> None:
    """Refuse raw (parsed JSON) ``provisions`` nested deeper than ``MAX_PROVISION_DEPTH``.

    For the edges, before any recursive reading or validation: walked without recursion, so
    a body nested a thousand deep is refused as such instead of exhausting the stack. ``key``
    names the list of nested rules in each one (``provision`` in FHIR).
    """
    stack: list[tuple[object, int]] = [(provisions, 1)]
    while stack:
        value, depth = stack.pop()
        if not isinstance(value, list):
            continue
        for item in value:
            if not isinstance(item, dict):
                continue
            if depth > MAX_PROVISION_DEPTH:
                raise InvalidConsentError(f"provisions nest deeper than {MAX_PROVISION_DEPTH}")
            stack.append((item.get(key), depth + 1))


def guardian_authority_end(birth_date: date) -> date:
    """The child's 14th birthday, when a guardian's consent lapses (29 February: 1 March)."""
    year = birth_date.year + GUARDIAN_AUTHORITY_AGE
    try:
        return birth_date.replace(year=year)
    except ValueError:  # born on 29 February, the birthday falls in a common year
        return date(year, 3, 1)


def guardian_in_authority(birth_date: date, at: datetime) -> bool:
    """Whether a guardian may still act for (and read about) a child at ``at``: before the
    child's 14th birthday, 00:00 UTC."""
    ends = guardian_authority_end(birth_date)
    return at < datetime.combine(ends, datetime.min.time(), UTC)


def revoke(consent: Consent, at: datetime) -> Consent:
    """The consent revoked at ``at``: from that instant on it permits and denies nothing."""
    if consent.status == "revoked":
        raise InvalidConsentError(f"consent {consent.consent_id} is already revoked")
    return consent.replace(status="revoked", revoked_at=at)


def renew_by_resident(consent: Consent, at: datetime) -> Consent:
    """The next version, granted at ``at`` by the resident themself, of a guardian's consent.

    The rules are kept as they are; only the grantor changes, so the guardian's lapse no longer
    applies. A resident can do this only once they are 14, on or after the lapse.
    """
    lapse = consent.guardian_lapses_at
    if lapse is None:
        raise InvalidConsentError(f"consent {consent.consent_id} was not granted by a guardian")
    if consent.status == "revoked":
        raise InvalidConsentError(f"consent {consent.consent_id} is revoked; grant a new one")
    if at < lapse:
        raise InvalidConsentError("the resident can renew only from their 14th birthday on")
    return consent.replace(
        version=consent.version + 1,
        grantor=RESIDENT,
        guardian_authority_ends=None,
        granted_at=at,
    )


def named_institutions(consent: Consent) -> frozenset[str]:
    """Every institution id ``consent`` names, as grantee or holder, at any depth."""
    names: set[str] = set(consent.holders)
    if consent.grantee is not None and consent.grantee.institution is not None:
        names.add(consent.grantee.institution)
    pending = list(consent.provisions)
    while pending:
        provision = pending.pop()
        names.update(provision.holders)
        names.update(g.institution for g in provision.grantees if g.institution is not None)
        pending.extend(provision.provisions)
    return frozenset(names)
