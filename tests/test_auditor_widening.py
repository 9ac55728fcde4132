"""The auditor and the service agree on every narrowing: each version pair is a widening to
both or to neither.

``auditor.widening`` runs a quick, sufficient test (``quick_widening``: what it lets through,
the service's exact cell search in ``consent_api.domain.narrowing`` does too) and, when that
cannot tell, its own exact cell search (``auditor.cells``). Random pairs of versions, most of
them edits of the first (a category, holder, provision or the period end taken away or added, a
permit turned into a deny), and hypothesis-drawn nested deny/permit trees with grantees by id
and by type, holders, periods and guardians' lapses are checked by both.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from auditor.rules import CATEGORIES as AUDITOR_CATEGORIES
from auditor.rules import INSTITUTION_TYPES, Rule, Version, micros, midnight, rule_of
from auditor.rules import PURPOSES as AUDITOR_PURPOSES
from auditor.widening import quick_widening, rule_widening, widening
from consent_api.domain.consent import Consent
from consent_api.domain.narrowing import first_broadening
from consent_api.domain.vocab import Category, InstitutionType, Purpose

CATEGORIES = ["lab-results", "imaging", "prescriptions", "emergency-stroke"]
PURPOSES = ["treatment", "referral", "research"]
INSTITUTIONS = {"h1": "hospital", "h2": "hospital", "c1": "clinic"}
T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def some(rng: random.Random, items: list[str]) -> list[str]:
    return [item for item in items if rng.random() < 0.4]


def grantee(rng: random.Random) -> dict[str, str]:
    if rng.random() < 0.5:
        return {"institution": rng.choice(list(INSTITUTIONS))}
    return {"institution_type": rng.choice(sorted(set(INSTITUTIONS.values())))}


def period(rng: random.Random) -> dict[str, str | None]:
    edges = sorted(T0 + timedelta(seconds=rng.randint(0, 100)) for _ in range(2))
    start = edges[0].isoformat() if rng.random() < 0.3 else None
    end = edges[1].isoformat() if rng.random() < 0.3 else None
    return {"start": start, "end": end}


def provisions(rng: random.Random, parent: str, depth: int) -> list[dict[str, Any]]:
    if depth > 2:
        return []
    kind = "deny" if parent == "permit" else "permit"
    return [
        {
            "type": kind,
            "grantees": [grantee(rng)] if rng.random() < 0.3 else [],
            "holders": some(rng, list(INSTITUTIONS)),
            "categories": some(rng, CATEGORIES),
            "purposes": some(rng, PURPOSES),
            "period": period(rng),
            "provisions": provisions(rng, kind, depth + 1),
        }
        for _ in range(rng.randint(0, 2))
    ]


def consent(rng: random.Random) -> dict[str, Any]:
    kind = "permit" if rng.random() < 0.75 else "deny"
    return {
        "consent_id": "c-1",
        "subject": "s",
        "version": 1,
        "grantor": {"kind": "resident"},
        "type": kind,
        "grantee": grantee(rng),
        "holders": some(rng, list(INSTITUTIONS)),
        "categories": some(rng, CATEGORIES),
        "purposes": some(rng, PURPOSES),
        "period": period(rng),
        "provisions": provisions(rng, kind, 1),
        "granted_at": T0.isoformat(),
    }


def edited(rng: random.Random, old: dict[str, Any]) -> dict[str, Any]:
    new: dict[str, Any] = orjson.loads(orjson.dumps(old))
    new["version"] = 2
    edit = rng.randrange(8)
    field = rng.choice(["categories", "purposes", "holders"])
    if edit == 0 and new[field]:
        new[field] = new[field][:-1]
    elif edit == 1:
        new[field] = sorted(
            {*new[field], rng.choice(CATEGORIES if field == "categories" else PURPOSES)}
        )
    elif edit == 2 and new["provisions"]:
        new["provisions"] = new["provisions"][:-1]
    elif edit == 3:
        new["provisions"] = new["provisions"] + provisions(rng, new["type"], 1)
    elif edit == 4:
        new["period"]["end"] = (T0 + timedelta(seconds=rng.randint(0, 100))).isoformat()
    elif edit == 5:
        new["type"], new["provisions"] = "deny", []
    elif edit == 6:
        new["period"] = period(rng)
    else:
        new = {**consent(rng), "version": 2}
    return new


@given(st.integers(min_value=0, max_value=2**32))
@example(516)  # a deny's exception dropped with a deny nested in it: that widened
@settings(max_examples=400, deadline=None)
def test_what_the_auditor_lets_through_the_exact_check_does(seed: int) -> None:
    rng = random.Random(seed)
    old_body = consent(rng)
    new_body = edited(rng, old_body)
    try:
        old = Consent.model_validate_json(orjson.dumps(old_body))
        new = Consent.model_validate_json(orjson.dumps(new_body))
    except ValidationError:
        return  # not a consent (a period that ends before it starts, say)
    logged_old, logged_new = (orjson.loads(c.model_dump_json()) for c in (old, new))
    old_rule, new_rule = rule_of(logged_old, root=True), rule_of(logged_new, root=True)
    if quick_widening(old_rule, new_rule) is None:
        assert first_broadening(old, new) is None
    assert (rule_widening(old_rule, new_rule) is None) == (first_broadening(old, new) is None)


def test_a_reshaped_deny_that_only_removes_permits_is_no_widening() -> None:
    """Issue 12 item 10: the service accepted this narrowing and the auditor reported it."""
    base = {
        "consent_id": "c-1",
        "subject": "s",
        "version": 1,
        "grantor": {"kind": "resident"},
        "grantee": {"institution": "h1"},
        "granted_at": T0.isoformat(),
    }
    old_body = {
        **base,
        "provisions": [
            {
                "type": "deny",
                "categories": ["imaging"],
                "provisions": [
                    {"type": "permit", "categories": ["prescriptions"], "holders": ["x-third"]}
                ],
            }
        ],
    }
    new_body = {
        **base,
        "version": 2,
        "provisions": [
            {"type": "deny", "provisions": [{"type": "permit", "categories": ["prescriptions"]}]}
        ],
    }
    old, new = (Consent.model_validate_json(orjson.dumps(b)) for b in (old_body, new_body))
    assert first_broadening(old, new) is None  # the service: it only removes permits
    old_rule, new_rule = (rule_of(orjson.loads(c.model_dump_json()), root=True) for c in (old, new))
    assert rule_widening(old_rule, new_rule) is None
    # The other way round it widens, for both, and the auditor names a witness.
    assert first_broadening(new, old) is not None
    why = rule_widening(new_rule, old_rule)
    assert why is not None
    assert "x-third" in why


def test_the_checks_agree_on_a_plain_narrowing_and_a_widening() -> None:
    rng = random.Random(1)
    old_body = {**consent(rng), "type": "permit", "categories": ["imaging", "lab-results"]}
    narrower = {**old_body, "version": 2, "categories": ["imaging"]}
    wider = {**old_body, "version": 2, "categories": []}
    old = rule_of(old_body, root=True)
    assert rule_widening(old, rule_of(narrower, root=True)) is None
    assert rule_widening(old, rule_of(wider, root=True)) is not None


# -- hypothesis: nested shapes ------------------------------------------------------------------

EXAMPLES = int(os.environ.get("CROSS_CHECK_EXAMPLES", "150"))
"""Examples per property; raise it (CROSS_CHECK_EXAMPLES=20000) for a deeper run by hand."""

EDGES = [T0 + timedelta(seconds=k) for k in range(4)] + [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
]


def grantees() -> st.SearchStrategy[dict[str, str]]:
    return st.one_of(
        st.builds(lambda i: {"institution": i}, st.sampled_from(["h1", "h2", "c1"])),
        st.builds(
            lambda t: {"institution_type": t},
            st.sampled_from(["hospital", "clinic", "family-doctor-team"]),
        ),
    )


def subsets(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), max_size=3, unique=True).map(sorted)


ALL_CATEGORIES = [c.value for c in Category]


def categories() -> st.SearchStrategy[list[str]]:
    # Now and then every category of the vocabulary: no unmentioned one is left to stand in.
    return st.one_of(subsets(CATEGORIES), st.just(ALL_CATEGORIES))


@st.composite
def periods(draw: st.DrawFn) -> dict[str, str | None]:
    start, end = sorted(draw(st.lists(st.sampled_from(EDGES), min_size=2, max_size=2)))
    return {
        "start": start.isoformat() if draw(st.booleans()) else None,
        "end": end.isoformat() if draw(st.booleans()) else None,
    }


@st.composite
def provision_trees(draw: st.DrawFn, parent: str, depth: int) -> list[dict[str, Any]]:
    if depth > 3:
        return []
    kind = "deny" if parent == "permit" else "permit"
    count = draw(st.integers(0, 2 if depth < 3 else 1))
    return [
        {
            "type": kind,
            "grantees": draw(st.lists(grantees(), max_size=2, unique_by=str)),
            "holders": draw(subsets(["h1", "h2", "x-third"])),
            "categories": draw(categories()),
            "purposes": draw(subsets(PURPOSES)),
            "period": draw(periods()),
            "provisions": draw(provision_trees(kind, depth + 1)),
        }
        for _ in range(count)
    ]


@st.composite
def consents(draw: st.DrawFn, version: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["permit", "deny"]))
    return {
        "consent_id": "c-1",
        "subject": "s",
        "version": version,
        "grantor": {"kind": "resident"},
        "type": kind,
        "grantee": draw(grantees() if kind == "permit" else st.one_of(st.none(), grantees())),
        "holders": draw(subsets(["h1", "h2", "x-third"])),
        "categories": draw(categories()),
        "purposes": draw(subsets(PURPOSES)),
        "period": draw(periods()),
        "provisions": draw(provision_trees(kind, 1)),
        "granted_at": T0.isoformat(),
    }


@st.composite
def successors(draw: st.DrawFn, old: dict[str, Any]) -> dict[str, Any]:
    """A next version: drawn afresh, or the old one with one rule somewhere redrawn or cut."""
    if draw(st.integers(0, 3)) == 0:
        return draw(consents(2))
    new: dict[str, Any] = {**orjson.loads(orjson.dumps(old)), "version": 2}
    rules = [new]
    stack = list(new["provisions"])
    while stack:
        rule = stack.pop()
        rules.append(rule)
        stack.extend(rule["provisions"])
    rule = draw(st.sampled_from(rules))
    field = draw(st.sampled_from(["holders", "categories", "purposes", "period", "provisions"]))
    if field == "period":
        rule["period"] = draw(periods())
    elif field == "provisions":
        kept = (
            draw(st.lists(st.sampled_from(rule["provisions"]), unique_by=id))
            if rule["provisions"]
            else []
        )
        rule["provisions"] = kept + draw(provision_trees(rule.get("type", "permit"), 2))
    elif field == "categories":
        rule["categories"] = draw(categories())
    else:
        rule[field] = draw(subsets(["h1", "h2", "x-third"] if field == "holders" else PURPOSES))
    return new


def validated(body: dict[str, Any]) -> Consent | None:
    try:
        return Consent.model_validate_json(orjson.dumps(body))
    except ValidationError:
        return None


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Consent, Consent]:
    old_body = draw(consents(1))
    old = validated(old_body)
    assume(old is not None)
    new = validated(draw(successors(old_body)))
    assume(new is not None)
    assert old is not None
    assert new is not None
    return old, new


def logged(consent: Consent) -> Rule:
    return rule_of(orjson.loads(consent.model_dump_json()), root=True)


@given(pairs())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
def test_the_auditor_and_the_service_agree_on_nested_shapes(pair: tuple[Consent, Consent]) -> None:
    old, new = pair
    service = first_broadening(old, new)
    auditor = rule_widening(logged(old), logged(new))
    assert (auditor is None) == (service is None), (auditor, service)


@given(pairs(), st.sampled_from(EDGES[:4]), st.integers(-2, 0))
@settings(
    max_examples=EXAMPLES // 3, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
def test_they_agree_under_a_guardians_lapse(
    pair: tuple[Consent, Consent], lapse_day: datetime, earlier: int
) -> None:
    """Both versions a guardian's, the new lapse the same or earlier (it never moves later)."""
    ends = lapse_day.date()
    old, new = (
        c.replace(
            grantor={"kind": "guardian", "guardian": "g-1"},
            guardian_authority_ends=ends + timedelta(days=shift),
        )
        for c, shift in ((pair[0], 0), (pair[1], earlier))
    )
    old_version, new_version = (
        Version(
            version=c.version,
            leaf_index=c.version,
            granted=micros(c.granted_at.isoformat()),
            revoked=None,
            revoke_leaf_index=None,
            lapse=midnight(str(c.guardian_authority_ends)),
            rule=logged(c),
        )
        for c in (old, new)
    )
    auditor = widening(old_version, new_version, guardian=True, renewal=False)
    service = first_broadening(old, new)
    assert (auditor is None) == (service is None), (auditor, service)


def test_the_auditor_knows_the_services_vocabularies() -> None:
    assert list(AUDITOR_CATEGORIES) == [c.value for c in Category]
    assert list(AUDITOR_PURPOSES) == [p.value for p in Purpose]
    assert list(INSTITUTION_TYPES) == [t.value for t in InstitutionType]
