"""Hypothesis properties of the consent domain, some against a naive reference implementation.

- ``decide`` agrees with a reference written from the brief's words (maximal matching paths);
- ``decide`` does not depend on the order of the records;
- narrowing never widens: with the history [old, new] no request is permitted that [old]
  alone did not permit, whatever other consents the resident has; and every refusal comes
  with a witness request that really is permitted more by the new version;
- revocation always yields deny, at once;
- FHIR round trip: ``consent_from_fhir(consent_to_fhir(c)) == c``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Literal

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consent_api.domain.consent import (
    RESIDENT,
    Consent,
    Grantee,
    Grantor,
    Period,
    Provision,
    revoke,
)
from consent_api.domain.decide import AccessRequest, Reason, decide
from consent_api.domain.errors import NarrowingError
from consent_api.domain.fhir import consent_from_fhir, consent_to_fhir
from consent_api.domain.narrowing import cells, narrow
from consent_api.domain.rules import evaluate
from consent_api.domain.vocab import Category, InstitutionType, Purpose

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
INSTITUTIONS = ["hosp-a", "hosp-b", "clinic-c"]
HOLDERS = ["hosp-a", "hosp-b", "lab-d"]
CATEGORIES = [Category.LAB_RESULTS, Category.IMAGING, Category.EMERGENCY_STROKE]
PURPOSES = [Purpose.TREATMENT, Purpose.RESEARCH, Purpose.EMERGENCY]
Kind = Literal["permit", "deny"]

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies -----------------------------------------------------------------------------

days = st.integers(min_value=0, max_value=20).map(lambda d: T0 + d * DAY)
instants = st.builds(
    lambda d, step: T0 + d * DAY + step * TICK,
    st.integers(min_value=-1, max_value=21),
    st.sampled_from([-1, 0, 1]),
)
grantees = st.one_of(
    st.builds(Grantee, institution=st.sampled_from(INSTITUTIONS)),
    st.builds(Grantee, institution_type=st.sampled_from(list(InstitutionType))),
)
holder_sets = st.frozensets(st.sampled_from(HOLDERS), max_size=2)
category_sets = st.frozensets(st.sampled_from(CATEGORIES), max_size=2)
purpose_sets = st.frozensets(st.sampled_from(PURPOSES), max_size=2)


maybe_days = st.none() | days
grantee_sets = st.frozensets(grantees, max_size=2)
maybe_grantee = st.none() | grantees
indices = st.integers(min_value=0, max_value=2**32)


@cache
def periods() -> st.SearchStrategy[Period]:
    return _periods()


@st.composite
def _periods(draw: st.DrawFn) -> Period:
    start = draw(maybe_days)
    end = draw(maybe_days)
    if start is not None and end is not None and start > end:
        start, end = end, start
    return Period(start=start, end=end)


def opposite(kind: Kind) -> Kind:
    return "deny" if kind == "permit" else "permit"


@cache
def exceptions(parent: Kind, scoped: bool, depth: int) -> st.SearchStrategy[tuple[Provision, ...]]:
    return _exceptions(parent, scoped, depth)


@st.composite
def _exceptions(draw: st.DrawFn, parent: Kind, scoped: bool, depth: int) -> tuple[Provision, ...]:
    if depth > 3:
        return ()
    kind = opposite(parent)
    found = []
    for _ in range(draw(st.integers(min_value=0, max_value=2 if depth == 1 else 1))):
        chosen = draw(grantee_sets)
        if kind == "permit" and not scoped and not chosen:
            chosen = frozenset({draw(grantees)})
        found.append(
            Provision(
                type=kind,
                grantees=chosen,
                holders=draw(holder_sets),
                categories=draw(category_sets),
                purposes=draw(purpose_sets),
                period=draw(periods()),
                provisions=draw(exceptions(kind, scoped or bool(chosen), depth + 1)),
            )
        )
    return tuple(found)


@cache
def consents(consent_id: str = "c-1") -> st.SearchStrategy[Consent]:
    return _consents(consent_id)


@st.composite
def _consents(draw: st.DrawFn, consent_id: str) -> Consent:
    kind: Kind = draw(st.sampled_from(["permit", "permit", "deny"]))
    grantee = draw(grantees) if kind == "permit" else draw(maybe_grantee)
    by_guardian = draw(st.integers(min_value=0, max_value=3)) == 0
    return Consent(
        consent_id=consent_id,
        subject="subj-1",
        version=1,
        grantor=Grantor(kind="guardian", guardian="g-1") if by_guardian else RESIDENT,
        type=kind,
        grantee=grantee,
        holders=draw(holder_sets),
        categories=draw(category_sets),
        purposes=draw(purpose_sets),
        period=draw(periods()),
        provisions=draw(exceptions(kind, grantee is not None, 1)),
        guardian_authority_ends=draw(days).date() if by_guardian else None,
        granted_at=draw(days),
    )


@cache
def records(first: int = 1) -> st.SearchStrategy[list[Consent]]:
    return _records(first)


@st.composite
def _records(draw: st.DrawFn, first: int) -> list[Consent]:
    count = draw(st.integers(min_value=0, max_value=3))
    found = []
    for i in range(count):
        consent = draw(consents(consent_id=f"c-{first + i}"))
        if draw(st.integers(min_value=0, max_value=4)) == 0:
            consent = revoke(consent, max(draw(days), consent.granted_at))
        found.append(consent)
    return found


requests = st.builds(
    AccessRequest,
    requester=st.sampled_from([*INSTITUTIONS, "hosp-z"]),
    requester_type=st.sampled_from(list(InstitutionType)),
    holder=st.sampled_from([*HOLDERS, "hosp-z"]),
    subject=st.just("subj-1"),
    categories=st.frozensets(
        st.sampled_from([*CATEGORIES, Category.PRESCRIPTIONS]), min_size=1, max_size=3
    ),
    purpose=st.sampled_from([*PURPOSES, Purpose.REFERRAL]),
    at=instants,
)

# --- the naive reference --------------------------------------------------------------------


def ref_matches(rule: Consent | Provision, requester: str, kind: InstitutionType, holder: str,
                category: Category, purpose: Purpose, at: datetime) -> bool:  # fmt: skip
    if isinstance(rule, Consent):
        named = [] if rule.grantee is None else [rule.grantee]
    else:
        named = list(rule.grantees)
    if named and not any(
        g.institution == requester if g.institution else g.institution_type == kind for g in named
    ):
        return False
    if rule.holders and holder not in rule.holders:
        return False
    if rule.categories and category not in rule.categories:
        return False
    if rule.purposes and purpose not in rule.purposes:
        return False
    if rule.period.start is not None and at < rule.period.start:
        return False
    return not (rule.period.end is not None and at > rule.period.end)


def ref_leaves(rule: Consent | Provision, *point: Any) -> Iterator[Kind]:
    """The type at the end of every maximal path of matching provisions."""
    matching = [p for p in rule.provisions if ref_matches(p, *point)]
    if not matching:
        yield rule.type
    for provision in matching:
        yield from ref_leaves(provision, *point)


def ref_answer(consent: Consent, *point: Any) -> Kind | None:
    at = point[-1]
    if at < consent.granted_at or (consent.revoked_at is not None and consent.revoked_at <= at):
        return None
    ends = consent.guardian_authority_ends
    if ends is not None and at.date() >= ends:  # every instant here is in UTC
        return None
    if not ref_matches(consent, *point):
        return None
    return "deny" if "deny" in set(ref_leaves(consent, *point)) else "permit"


def ref_decide(request: AccessRequest, found: list[Consent]) -> tuple[str, set[str]]:
    permits: set[str] = set()
    denies: set[str] = set()
    covered = set()
    for category in request.categories:
        point = (request.requester, request.requester_type, request.holder, category,
                 request.purpose, request.at)  # fmt: skip
        for consent in found:
            answer = ref_answer(consent, *point)
            if answer == "deny":
                denies.add(consent.consent_id)
            elif answer == "permit":
                permits.add(consent.consent_id)
                covered.add(category)
    if denies:
        return "deny", denies
    if covered == request.categories:
        return "permit", permits
    return "deny", set()


# --- properties -----------------------------------------------------------------------------


@SETTINGS
@given(records(), requests)
def test_decide_agrees_with_the_reference(found: list[Consent], request: AccessRequest) -> None:
    decision = decide(request, found)
    expected, relied_on = ref_decide(request, found)
    assert decision.decision == expected
    if expected == "permit" or relied_on:
        assert set(decision.relied_on) == relied_on
    if relied_on and expected == "deny":
        assert decision.reason == Reason.DENIED_BY_PROVISION


@SETTINGS
@given(records(), requests, st.randoms(use_true_random=False))
def test_decide_ignores_the_order_of_records(
    found: list[Consent], request: AccessRequest, rnd: Any
) -> None:
    shuffled = list(found)
    rnd.shuffle(shuffled)
    assert decide(request, shuffled) == decide(request, found)


@SETTINGS
@given(consents(), requests, st.integers(min_value=0, max_value=25))
def test_revocation_always_yields_deny(consent: Consent, request: AccessRequest, day: int) -> None:
    at = max(consent.granted_at, min(request.at, T0 + day * DAY))
    revoked = revoke(consent, at)
    later = request.model_copy(update={"at": max(request.at, at)})
    decision = decide(later, [revoked])
    assert decision.decision == "deny"
    if decide(later, [consent]).decision == "permit":
        assert decision.reason == Reason.REVOKED


operations = st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=3)
some_categories = st.frozensets(st.sampled_from(CATEGORIES), min_size=1)
some_purposes = st.frozensets(st.sampled_from(PURPOSES), min_size=1)


def _mutations(draw: st.DrawFn, old: Consent) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for op in draw(operations):
        if op == 0:
            changes["categories"] = draw(some_categories)
        elif op == 1:
            changes["purposes"] = draw(some_purposes)
        elif op == 2:
            changes["holders"] = draw(holder_sets)
        elif op == 3:
            start, end = old.period.start, old.period.end
            changes["period"] = {  # may come out empty: then the version is invalid
                "start": max(filter(None, [start, draw(maybe_days)]), default=None),
                "end": min(filter(None, [end, draw(maybe_days)]), default=None),
            }
        elif op == 4 and old.type == "permit":
            extra = draw(exceptions("permit", True, 1))
            changes["provisions"] = old.provisions + extra
        elif op == 5 and old.provisions:
            changes["provisions"] = old.provisions[1:]
        elif op == 6:
            changes["period"] = draw(periods()) if draw(st.booleans()) else Period()
        elif op == 7:
            changes["grantee"] = draw(grantees)
        else:
            rules = draw(consents())
            changes.update(
                type=rules.type, grantee=rules.grantee, provisions=rules.provisions,
                categories=rules.categories, purposes=rules.purposes,
            )  # fmt: skip
    return changes


@st.composite
def narrowing_pairs(draw: st.DrawFn) -> tuple[Consent, Consent]:
    old = draw(consents())
    changes = _mutations(draw, old)
    changes.update(version=2, granted_at=old.granted_at + draw(st.integers(0, 3)) * DAY)
    try:
        new = old.replace(**changes)
    except ValidationError:
        assume(False)
        raise
    return old, new


@settings(SETTINGS, max_examples=120)
@given(narrowing_pairs(), records(first=2), st.data())
def test_narrowing_never_widens(
    pair: tuple[Consent, Consent], others: list[Consent], data: st.DataObject
) -> None:
    old, new = pair
    try:
        narrow(old, new)
    except NarrowingError as refused:
        witness = refused.witness
        event("refused")
        assert witness is not None
        _check_witness(old, new, witness)
        return
    event("accepted" if new != old.replace(version=2, granted_at=new.granted_at) else "unchanged")
    aimed = _asks_about(data, old, new, *others)
    for ask in aimed + data.draw(st.lists(requests, min_size=6, max_size=6)):
        if decide(ask, [old, new, *others]).decision == "permit":
            event("a request permitted after narrowing")
            assert decide(ask, [old, *others]).decision == "permit"


def _asks_about(data: st.DataObject, *found: Consent) -> list[AccessRequest]:
    """Twelve requests aimed at what the consents mention, mostly where one of them permits."""
    points = list(cells(*found))
    points = points[:: max(1, len(points) // 400)]  # thinned, to keep the search quick
    permitted = [
        p for p in points if any(evaluate(c, p, lifecycle=False) == "permitted" for c in found)
    ]
    points = permitted or points
    lifecycle = {t for c in found for t in (c.granted_at, c.revoked_at) if t is not None}
    moments = sorted({t + step for t in lifecycle for step in (-TICK, 0 * TICK, TICK)})
    asks = []
    for _ in range(12):
        point = points[data.draw(indices) % len(points)]
        at = [point.at, moments[data.draw(indices) % len(moments)], data.draw(instants)]
        extra = CATEGORIES[data.draw(indices) % len(CATEGORIES)]
        asks.append(
            AccessRequest(
                requester=point.requester,
                requester_type=point.requester_type,
                holder=point.holder,
                subject="subj-1",
                categories=frozenset({point.category, extra})
                if data.draw(st.booleans())
                else frozenset({point.category}),
                purpose=point.purpose,
                at=at[data.draw(indices) % 3],
            )
        )
    return asks


def _check_witness(old: Consent, new: Consent, witness: Any) -> None:
    """The refusal's witness is a request the new version really treats more generously."""
    lifted = [c.replace(granted_at=min(c.granted_at, witness.at)) for c in (old, new)]
    ask = AccessRequest(
        requester=witness.requester,
        requester_type=witness.requester_type,
        holder=witness.holder,
        subject="subj-1",
        categories=frozenset({witness.category}),
        purpose=witness.purpose,
        at=witness.at,
    )
    if decide(ask, [lifted[1]]).decision == "permit":
        event("witness: permits what was not permitted")
        assert decide(ask, [lifted[0]]).decision == "deny"
        return
    event("witness: lifts a deny")
    probe = Consent(
        consent_id="c-probe",
        subject="subj-1",
        version=1,
        grantor=RESIDENT,
        grantee=Grantee(institution=witness.requester),
        granted_at=witness.at,
    )
    assert decide(ask, [lifted[1], probe]).decision == "permit"
    assert decide(ask, [lifted[0], probe]).decision == "deny"


@settings(SETTINGS, max_examples=80)
@given(consents(), st.booleans(), days)
def test_fhir_round_trip(consent: Consent, revoked: bool, when: datetime) -> None:
    if revoked:
        consent = revoke(consent, max(when, consent.granted_at))
    written = consent_to_fhir(consent)
    assert consent_from_fhir(written) == consent
    assert consent_to_fhir(consent_from_fhir(written)) == written


def test_guardian_dates_in_the_reference_are_utc_days() -> None:
    """The reference compares UTC dates; the domain lapses at 00:00 UTC: the same rule."""
    consent = Consent(
        consent_id="c-1",
        subject="subj-1",
        version=1,
        grantor=Grantor(kind="guardian", guardian="g-1"),
        grantee=Grantee(institution="hosp-a"),
        guardian_authority_ends=date(2025, 1, 10),
        granted_at=T0,
    )
    assert consent.guardian_lapses_at == datetime(2025, 1, 10, tzinfo=UTC)
