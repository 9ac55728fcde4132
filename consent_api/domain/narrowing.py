"""Narrowing: a new version of a consent may only take away, never add.

The check is exact, not a syntactic comparison. A consent's answer can change only where one
of the values it mentions changes: named institutions and holders, listed categories and
purposes, and the edges of its periods and of a guardian's authority. So the request space
splits into finitely many cells on which both versions are constant, and ``narrow`` evaluates
both versions on a representative of every cell with the very evaluator ``decide`` uses
(``rules.evaluate``), refusing the new version at the first cell where it is more permissive
(deny < silent < permit): there it names a witness request.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import product
from math import prod
from typing import Any, Final, TypeVar

from consent_api.domain.consent import Consent, Grantee, Provision
from consent_api.domain.errors import NarrowingError
from consent_api.domain.rules import Point, evaluate, permissiveness
from consent_api.domain.vocab import Category, InstitutionType, Purpose

MAX_WORK: Final = 2_000_000
"""Most cells times rules ``narrow`` will evaluate (a second or so): larger pairs are refused,
never waved through, so a huge consent cannot stall the API."""

_TICK = timedelta(microseconds=1)
_T = TypeVar("_T")


def narrow(old: Consent, new: Consent) -> Consent:
    """``new`` if it is a valid next version of ``old`` that permits nothing ``old`` did not.

    Raises ``NarrowingError`` otherwise; when the rules are the problem, ``witness`` is one
    point at which ``new`` permits (or stops denying) what ``old`` did not.
    """
    if new.consent_id != old.consent_id or new.subject != old.subject:
        raise NarrowingError("a new version must keep the consent id and the subject")
    if old.status != "active":
        raise NarrowingError(f"consent {old.consent_id} is revoked and cannot be narrowed")
    if new.status != "active":
        raise NarrowingError("a new version must be active")
    if new.version != old.version + 1:
        raise NarrowingError(f"the version after {old.version} is {old.version + 1}")
    if new.granted_at < old.granted_at:
        raise NarrowingError("a new version cannot be granted before the version it replaces")
    if new.grantor.kind == "guardian" and old.grantor.kind != "guardian":
        raise NarrowingError("a guardian cannot rewrite a consent the resident gave themself")
    rules = sum(1 for consent in (old, new) for _ in _walk(consent))
    if cell_count(old, new) * rules > MAX_WORK:
        raise NarrowingError(
            "these versions are too large to prove one narrower than the other: "
            "revoke and grant a new consent instead"
        )
    witness = first_broadening(old, new)
    if witness is not None:
        raise NarrowingError(
            f"version {new.version} is more permissive than version {old.version} for "
            f"{witness.category} / {witness.purpose} to {witness.requester} "
            f"({witness.requester_type}) from {witness.holder} at {witness.at.isoformat()}",
            witness=witness,
        )
    return new


def first_broadening(old: Consent, new: Consent) -> Point | None:
    """The first point where ``new``'s rules say more than ``old``'s, or None if there is none."""
    for point in cells(old, new):
        before = evaluate(old, point, lifecycle=False)
        after = evaluate(new, point, lifecycle=False)
        if permissiveness(after) > permissiveness(before):
            return point
    return None


def cells(*consents: Consent) -> Iterator[Point]:
    """One representative point of every cell on which all of ``consents`` are constant."""
    for values in product(*_dimensions(consents)):
        yield Point(*values)


def cell_count(*consents: Consent) -> int:
    """How many points ``cells`` yields, without yielding them."""
    return prod(len(values) for values in _dimensions(consents))


def _dimensions(consents: tuple[Consent, ...]) -> tuple[list[Any], ...]:
    """The representative values of each field of a ``Point``, in ``Point``'s order."""
    institutions: set[str] = set()
    holders: set[str] = set()
    categories: set[Category] = set()
    purposes: set[Purpose] = set()
    edges: set[datetime] = set()
    for rule in (rule for consent in consents for rule in _walk(consent)):
        grantees: Iterable[Grantee] = (
            rule.grantees if isinstance(rule, Provision) else filter(None, [rule.grantee])
        )
        institutions.update(g.institution for g in grantees if g.institution is not None)
        holders.update(rule.holders)
        categories.update(rule.categories)
        purposes.update(rule.purposes)
        edges.update(t for t in (rule.period.start, rule.period.end) if t is not None)
    edges.update(c.guardian_lapses_at for c in consents if c.guardian_lapses_at is not None)
    return (
        [*sorted(institutions), _fresh(institutions, "other-institution")],
        list(InstitutionType),
        [*sorted(holders), _fresh(holders, "other-holder")],
        _with_other(categories, list(Category)),
        _with_other(purposes, list(Purpose)),
        _instants(edges, fallback=consents[0].granted_at),
    )


def _walk(consent: Consent) -> Iterator[Consent | Provision]:
    yield consent
    stack = list(consent.provisions)
    while stack:
        provision = stack.pop()
        yield provision
        stack.extend(provision.provisions)


def _fresh(taken: set[str], stem: str) -> str:
    """A value none of the rules mention, standing for every unmentioned one."""
    candidate = stem
    while candidate in taken:
        candidate += "~"
    return candidate


def _with_other(mentioned: set[_T], universe: list[_T]) -> list[_T]:
    """The mentioned values, in ``universe`` order, and one unmentioned one if any is left."""
    listed = [value for value in universe if value in mentioned]
    rest = [value for value in universe if value not in mentioned]
    return listed + rest[:1]


def _instants(edges: Iterable[datetime], *, fallback: datetime) -> list[datetime]:
    """Each edge and its two neighbours at datetime's resolution: every interval is visited."""
    instants: set[datetime] = set()
    for edge in edges:
        instants.add(edge)
        for step in (-_TICK, _TICK):
            try:
                instants.add(edge + step)
            except OverflowError:  # an edge at the very end of datetime's range
                continue
    return sorted(instants) if instants else [fallback]
