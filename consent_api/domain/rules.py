"""What one consent says about one point: requester, holder, one category, purpose, instant.

This is the single evaluator behind ``decide`` (and so behind any replay of a decision) and
behind ``narrow``'s check, so the API, an auditor and narrowing cannot read a consent apart.

Provision semantics (FHIR R4 Consent, where nested provisions are exceptions to their parent):

- The root rule applies when every one of its conditions matches: grantee (or any when None),
  holder, category, purpose (an empty set matches anything) and period (``start <= at <= end``).
  When it does not, the consent is silent about the point (not applicable).
- Within an applying rule, its nested provisions whose own conditions match are its exceptions.
  A rule with no matching exception decides by its own type; otherwise each matching
  exception is evaluated the same way (so the deepest matching provision on a branch decides)
  and if any branch says deny the rule says deny: deny beats permit between siblings. Nested
  types alternate (``consent._check_tree``), so a permit can only carve into a deny and a deny
  into a permit, and nothing nested can reach outside the root's conditions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from consent_api.domain.consent import Consent, Grantee, Provision, ProvisionType
from consent_api.domain.vocab import Category, InstitutionType, Purpose


class Reason(StrEnum):
    """Why a consent (and so a decision) came out as it did; stable codes for logs and tests."""

    PERMITTED = "permitted"
    NO_CONSENT = "no-consent"
    GRANTEE_MISMATCH = "grantee-mismatch"
    HOLDER_MISMATCH = "holder-mismatch"
    CATEGORY_NOT_GRANTED = "category-not-granted"
    PURPOSE_NOT_GRANTED = "purpose-not-granted"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    GUARDIAN_AUTHORITY_LAPSED = "guardian-authority-lapsed"
    REVOKED = "revoked"
    DENIED_BY_PROVISION = "denied-by-provision"


NOT_APPLICABLE_RANK: Final[dict[Reason, int]] = {
    Reason.GRANTEE_MISMATCH: 0,
    Reason.HOLDER_MISMATCH: 1,
    Reason.CATEGORY_NOT_GRANTED: 2,
    Reason.PURPOSE_NOT_GRANTED: 3,
    Reason.NOT_YET_VALID: 4,
    Reason.EXPIRED: 5,
    Reason.GUARDIAN_AUTHORITY_LAPSED: 6,
    Reason.REVOKED: 7,
}
"""How far a silent consent came towards the point: the higher, the more informative its reason.

Scope is checked before time and state, so "revoked" is only said of a consent that would
otherwise have covered the request.
"""


@dataclass(frozen=True)
class Point:
    """One cell of the request space: everything a consent's answer can depend on."""

    requester: str
    requester_type: InstitutionType
    holder: str
    category: Category
    purpose: Purpose
    at: datetime


def evaluate(consent: Consent, point: Point, *, lifecycle: bool = True) -> Reason:
    """PERMITTED, DENIED_BY_PROVISION, or the reason the consent is silent about ``point``.

    With ``lifecycle`` False, grant time and revocation are ignored: what is left is what the
    consent's rules say, which is what narrowing compares between versions.
    """
    if consent.grantee is not None and not consent.grantee.matches(
        point.requester, point.requester_type
    ):
        return Reason.GRANTEE_MISMATCH
    if consent.holders and point.holder not in consent.holders:
        return Reason.HOLDER_MISMATCH
    if consent.categories and point.category not in consent.categories:
        return Reason.CATEGORY_NOT_GRANTED
    if consent.purposes and point.purpose not in consent.purposes:
        return Reason.PURPOSE_NOT_GRANTED
    if lifecycle and consent.revoked_at is not None and consent.revoked_at <= point.at:
        return Reason.REVOKED
    if (lifecycle and point.at < consent.granted_at) or (
        consent.period.start is not None and point.at < consent.period.start
    ):
        return Reason.NOT_YET_VALID
    if consent.period.end is not None and point.at > consent.period.end:
        return Reason.EXPIRED
    lapse = consent.guardian_lapses_at
    if lapse is not None and point.at >= lapse:
        return Reason.GUARDIAN_AUTHORITY_LAPSED
    if _resolve(consent.type, consent.provisions, point) == "permit":
        return Reason.PERMITTED
    return Reason.DENIED_BY_PROVISION


SCOPE_REASONS: Final = frozenset(
    {
        Reason.GRANTEE_MISMATCH,
        Reason.HOLDER_MISMATCH,
        Reason.CATEGORY_NOT_GRANTED,
        Reason.PURPOSE_NOT_GRANTED,
    }
)


def explains_refusal(consent: Consent, point: Point, reason: Reason) -> bool:
    """Whether a silent consent's ``reason`` tells why ``point`` was not permitted.

    A permit that does not cover the point explains it (wrong grantee, category...). Time and
    state (revoked, expired, not yet valid, lapsed) explain it only if the consent's rules
    would otherwise have permitted the point: a revoked opt-out explains nothing.
    """
    if reason in SCOPE_REASONS:
        return consent.type == "permit"
    if reason in NOT_APPLICABLE_RANK:
        return _resolve(consent.type, consent.provisions, point) == "permit"
    return False


def _resolve(own: ProvisionType, exceptions: Iterable[Provision], point: Point) -> ProvisionType:
    results = [
        _resolve(provision.type, provision.provisions, point)
        for provision in exceptions
        if _matches(provision, point)
    ]
    if not results:
        return own
    return "deny" if "deny" in results else "permit"


def _matches(provision: Provision, point: Point) -> bool:
    return (
        _grantees_match(provision.grantees, point)
        and (not provision.holders or point.holder in provision.holders)
        and (not provision.categories or point.category in provision.categories)
        and (not provision.purposes or point.purpose in provision.purposes)
        and provision.period.contains(point.at)
    )


def _grantees_match(grantees: frozenset[Grantee], point: Point) -> bool:
    return not grantees or any(g.matches(point.requester, point.requester_type) for g in grantees)


def permissiveness(reason: Reason) -> int:
    """Order of one consent's answers: deny (0) < silent (1) < permit (2).

    Combining consents (deny wins, then any permit, else deny) is monotone in this order, so a
    version that is nowhere more permissive can never make any decision more permissive.
    """
    if reason is Reason.PERMITTED:
        return 2
    if reason is Reason.DENIED_BY_PROVISION:
        return 0
    return 1
