"""Access decisions: may ``requester`` pull ``subject``'s data from ``holder`` for ``purpose`` now?

``decide`` is pure and deterministic: the same request and the same consent records give the
same ``Decision``, whatever their order, so an auditor replaying a ledger leaf with the consent
records of that time must reach the decision that was logged.

Rules, in order:

1. Only the subject's records count, and of each consent id only the version in force at
   ``at``: the highest version granted at or before ``at`` (or, if none is yet, the first, which
   then answers "not-yet-valid"). Two different records of one version are an error, except
   that a revoked record supersedes the same version still active.
2. Each requested category is judged on its own by every such record (``rules.evaluate``).
3. Any record that denies any category makes the decision deny ("denied-by-provision"), even
   if others permit: a deny always wins.
4. Otherwise the decision permits when every category is permitted by at least one record;
   ``relied_on`` lists them all.
5. Otherwise deny by default, with the most informative reason (``rules.NOT_APPLICABLE_RANK``)
   among the records that explain why a category was left uncovered
   (``rules.explains_refusal``: a permit not covering it, or a consent that would have
   permitted it but is revoked, expired, not yet valid or lapsed), else "no-consent".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from consent_api.domain.consent import Consent, Identifier, Instant
from consent_api.domain.errors import InvalidConsentError
from consent_api.domain.rules import (
    NOT_APPLICABLE_RANK,
    Point,
    Reason,
    evaluate,
    explains_refusal,
)
from consent_api.domain.vocab import Category, InstitutionType, Purpose

__all__ = [
    "AccessRequest",
    "Decision",
    "Finding",
    "Reason",
    "covering_consents",
    "decide",
    "findings",
    "records_in_force",
]

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


class AccessRequest(BaseModel):
    """``requester`` (an institution of ``requester_type``) asks ``holder`` for data at ``at``."""

    model_config = _STRICT

    requester: Identifier
    requester_type: InstitutionType
    holder: Identifier
    subject: Identifier
    categories: frozenset[Category] = Field(min_length=1)
    purpose: Purpose
    at: Instant

    @field_serializer("categories")
    def _sorted(self, values: frozenset[Category]) -> list[str]:
        return sorted(values)

    def points(self) -> list[Point]:
        """One point per requested category, in category order."""
        return [
            Point(self.requester, self.requester_type, self.holder, c, self.purpose, self.at)
            for c in sorted(self.categories)
        ]


class Decision(BaseModel):
    """The outcome, the consent ids it rests on (sorted), and a stable reason code."""

    model_config = _STRICT

    decision: Literal["permit", "deny"]
    relied_on: tuple[str, ...]
    reason: Reason


class Finding(BaseModel):
    """What one consent record said about one requested category."""

    model_config = _STRICT

    consent_id: str
    version: int
    category: Category
    reason: Reason


def records_in_force(consents: Iterable[Consent], subject: str, at: datetime) -> list[Consent]:
    """Of each of ``subject``'s consent ids, the one record that governs ``at`` (rule 1)."""
    by_version: dict[tuple[str, int], Consent] = {}
    for consent in consents:
        if consent.subject != subject:
            continue
        key = (consent.consent_id, consent.version)
        known = by_version.get(key)
        by_version[key] = consent if known is None else _same_version(known, consent)
    versions: defaultdict[str, list[Consent]] = defaultdict(list)
    for consent in by_version.values():
        versions[consent.consent_id].append(consent)
    chosen = []
    for consent_id in sorted(versions):
        history = sorted(versions[consent_id], key=lambda c: c.version)
        granted = [c for c in history if c.granted_at <= at]
        chosen.append(granted[-1] if granted else history[0])
    return chosen


def _same_version(a: Consent, b: Consent) -> Consent:
    if a == b:
        return a
    active, revoked = (a, b) if a.status == "active" else (b, a)
    if (
        active.status == "active"
        and revoked.status == "revoked"
        and active.replace(status="revoked", revoked_at=revoked.revoked_at) == revoked
    ):
        return revoked
    raise InvalidConsentError(
        f"two different records of consent {a.consent_id} version {a.version}"
    )


def findings(request: AccessRequest, consents: Iterable[Consent]) -> list[Finding]:
    """Every record in force, on every requested category (the trace behind ``decide``)."""
    in_force = records_in_force(consents, request.subject, request.at)
    return [finding for finding, _ in _trace(request, in_force)]


def _trace(request: AccessRequest, in_force: Sequence[Consent]) -> list[tuple[Finding, bool]]:
    """Each finding, and whether it explains a refusal (``rules.explains_refusal``)."""
    trace = []
    for point in request.points():
        for consent in in_force:
            reason = evaluate(consent, point)
            finding = Finding(
                consent_id=consent.consent_id,
                version=consent.version,
                category=point.category,
                reason=reason,
            )
            trace.append((finding, explains_refusal(consent, point, reason)))
    return trace


def covering_consents(
    request: AccessRequest, consents: Iterable[Consent]
) -> dict[Category, tuple[str, ...]]:
    """For each requested category, the ids of the records that permit it (maybe none)."""
    trace = findings(request, consents)
    return {
        category: tuple(
            f.consent_id for f in trace if f.category == category and f.reason is Reason.PERMITTED
        )
        for category in sorted(request.categories)
    }


def decide(request: AccessRequest, consents: Iterable[Consent]) -> Decision:
    """Permit or deny ``request`` given the subject's consent records (see the module rules)."""
    in_force = records_in_force(consents, request.subject, request.at)
    return _conclude(_trace(request, in_force), request.categories)


def _conclude(trace: Sequence[tuple[Finding, bool]], categories: frozenset[Category]) -> Decision:
    found = [finding for finding, _ in trace]
    denying = sorted({f.consent_id for f in found if f.reason is Reason.DENIED_BY_PROVISION})
    if denying:
        return Decision(
            decision="deny", relied_on=tuple(denying), reason=Reason.DENIED_BY_PROVISION
        )
    permitted = {f.category for f in found if f.reason is Reason.PERMITTED}
    if permitted >= categories:
        relied_on = sorted({f.consent_id for f in found if f.reason is Reason.PERMITTED})
        return Decision(decision="permit", relied_on=tuple(relied_on), reason=Reason.PERMITTED)
    silent = [f for f, explains in trace if explains and f.category not in permitted]
    if not silent:
        return Decision(decision="deny", relied_on=(), reason=Reason.NO_CONSENT)
    reason = max((f.reason for f in silent), key=NOT_APPLICABLE_RANK.__getitem__)
    relied_on = sorted({f.consent_id for f in silent if f.reason is reason})
    return Decision(decision="deny", relied_on=tuple(relied_on), reason=reason)
