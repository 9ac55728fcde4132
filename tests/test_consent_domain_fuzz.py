"""Hypothesis on the consent domain's inputs: whatever arrives, only the domain's own errors.

Consent JSON with instants at every offset a parser takes (up to ±23:59) and at the ends of the
calendar, provisions nested far past the limit, odd Unicode and wrong JSON types; FHIR Consent
resources built of the same. The domain either takes an input or refuses it with its typed
errors (``ValidationError`` from the models, ``InvalidConsentError``,
``UnsupportedConsentError``, ``NarrowingError``); and whatever it takes, every output format
(its JSON, FHIR, a decision, a narrowing check) can write without an error.

``DOMAIN_FUZZ_EXAMPLES`` raises the examples per property for a deeper run.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consent_api.domain.consent import MAX_PROVISION_DEPTH, Consent, check_nesting
from consent_api.domain.decide import AccessRequest, decide
from consent_api.domain.errors import InvalidConsentError, NarrowingError, UnsupportedConsentError
from consent_api.domain.fhir import consent_from_fhir, consent_to_fhir
from consent_api.domain.narrowing import narrow
from consent_api.domain.vocab import Category, InstitutionType, Purpose

EXAMPLES = int(os.environ.get("DOMAIN_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REFUSALS = (ValidationError, InvalidConsentError, UnsupportedConsentError)
ID = st.from_regex(r"\A[A-Za-z0-9\-.]{1,12}\Z")
"""An institution or pseudonym as the edges let them in (their own patterns refuse others)."""


@st.composite
def instants(draw: st.DrawFn) -> str:
    """ISO 8601 instants: ordinary ones, the ends of the calendar, any offset up to ±23:59."""
    year = draw(st.one_of(st.integers(2020, 2040), st.sampled_from([1, 2, 9998, 9999])))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    hour, minute = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    fraction = draw(st.sampled_from(["", ".5", ".999999", ".000001"]))
    zone = draw(
        st.one_of(
            st.just("Z"),
            st.builds(
                lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
                st.sampled_from("+-"),
                st.integers(0, 23),
                st.integers(0, 59),
            ),
        )
    )
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00{fraction}{zone}"


ODD = st.one_of(
    st.text(max_size=8),  # any Unicode, including none at all
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
)


def maybe_odd(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``strategy``, now and then a value of another JSON type or odd Unicode."""
    return st.tuples(st.integers(0, 15), strategy, ODD).map(lambda t: t[2] if t[0] == 0 else t[1])


def periods() -> st.SearchStrategy[Any]:
    return maybe_odd(
        st.fixed_dictionaries(
            {}, optional={"start": st.one_of(st.none(), instants()), "end": instants()}
        )
    )


def grantees() -> st.SearchStrategy[Any]:
    return maybe_odd(
        st.one_of(
            st.builds(lambda i: {"institution": i}, ID),
            st.builds(lambda t: {"institution_type": t}, st.sampled_from(list(InstitutionType))),
        )
    )


def sets(values: list[str]) -> st.SearchStrategy[Any]:
    return maybe_odd(st.lists(st.sampled_from(values), max_size=3, unique=True))


@st.composite
def provisions(draw: st.DrawFn, parent: str, depth: int, limit: int) -> list[dict[str, Any]]:
    if depth > limit:
        return []
    kind = "deny" if parent == "permit" else "permit"
    if draw(st.integers(0, 9)) == 0:
        kind = parent  # not an exception to its parent: refused
    return [
        {
            "type": kind,
            "grantees": draw(st.lists(grantees(), max_size=2)),
            "holders": draw(maybe_odd(st.lists(ID, max_size=2))),
            "categories": draw(sets(list(Category))),
            "purposes": draw(sets(list(Purpose))),
            "period": draw(periods()),
            "provisions": draw(provisions(kind, depth + 1, limit)),
        }
        for _ in range(draw(st.integers(1 if depth < limit else 0, 1)))
    ]


def chain(kind: str, below: list[dict[str, Any]], levels: int) -> list[dict[str, Any]]:
    """``below`` wrapped in ``levels`` more provisions of alternating type under ``kind``."""
    for level in range(levels):
        own = ("deny" if kind == "permit" else "permit") if level % 2 == levels % 2 else kind
        below = [{"type": own, "provisions": below}]
    return below


@st.composite
def consent_json(draw: st.DrawFn, version: int = 1) -> dict[str, Any]:
    kind = draw(st.sampled_from(["permit", "deny"]))
    tree = draw(provisions(kind, 1, draw(st.integers(0, 2))))
    extra = draw(
        st.integers(0, 3).flatmap(
            lambda n: st.integers(MAX_PROVISION_DEPTH - 2, 40) if n == 0 else st.just(0)
        )
    )
    return {
        "consent_id": "c-1",
        "subject": draw(maybe_odd(ID)),
        "version": version,
        "grantor": {"kind": "resident"},
        "type": kind,
        "grantee": draw(grantees()),
        "holders": draw(maybe_odd(st.lists(ID, max_size=2))),
        "categories": draw(sets(list(Category))),
        "purposes": draw(sets(list(Purpose))),
        "period": draw(periods()),
        "provisions": chain(kind, tree, extra) if extra else tree,
        "granted_at": draw(maybe_odd(instants())),
    }


def taken(body: dict[str, Any]) -> Consent | None:
    try:
        return Consent.model_validate_json(json.dumps(body))
    except REFUSALS:
        return None


@given(consent_json())
@FUZZ
def test_a_consent_is_taken_or_refused_and_what_is_taken_can_be_written(
    body: dict[str, Any],
) -> None:
    consent = taken(body)
    if consent is None:
        return
    for instant in (consent.period.start, consent.period.end, consent.granted_at):
        if instant is not None:  # written in a zone every ISO 8601 profile allows
            offset = instant.utcoffset()
            assert offset is not None
            assert abs(offset.total_seconds()) <= 14 * 3600
    assert Consent.model_validate_json(consent.model_dump_json()) == consent
    resource = consent_to_fhir(consent)  # R4-validated on the way out
    again = consent_from_fhir(resource)
    assert again.model_dump(exclude={"subject", "grantor"}) == consent.model_dump(
        exclude={"subject", "grantor"}
    )


@given(consent_json(), instants(), st.sampled_from(list(Category)))
@FUZZ
def test_a_decision_about_any_taken_consent_at_any_instant_is_made(
    body: dict[str, Any], at: str, category: Category
) -> None:
    consent = taken(body)
    if consent is None:
        return
    try:
        request = AccessRequest.model_validate_json(
            orjson.dumps(
                {
                    "requester": "h1",
                    "requester_type": "hospital",
                    "holder": "h2",
                    "subject": consent.subject,
                    "categories": [category],
                    "purpose": "treatment",
                    "at": at,
                }
            )
        )
    except ValidationError:
        return
    decision = decide(request, [consent])
    assert decision.decision in ("permit", "deny")


@given(consent_json(1), consent_json(2))
@FUZZ
def test_narrowing_any_pair_answers_or_refuses(old_body: Any, new_body: Any) -> None:
    old, new = taken(old_body), taken({**new_body, "subject": old_body["subject"]})
    if old is None or new is None:
        return
    try:
        accepted = narrow(old, new)
    except NarrowingError:
        return  # refused with the domain's own error
    assert accepted == new


def fhir_provision(draw: st.DrawFn, depth: int, extra: int) -> dict[str, Any]:
    node: dict[str, Any] = {
        "type": draw(maybe_odd(st.sampled_from(["permit", "deny"]))),
        "period": draw(
            maybe_odd(st.fixed_dictionaries({}, optional={"start": instants(), "end": instants()}))
        ),
    }
    if depth > 0:
        node["provision"] = [fhir_provision(draw, depth - 1, extra)]
    else:
        for level in range(extra):  # far past the limit, built without drawing
            node = {"type": "deny" if level % 2 else "permit", "provision": [node]}
    return node


@st.composite
def fhir_json(draw: st.DrawFn) -> dict[str, Any]:
    depth = draw(st.integers(0, 3))
    extra = draw(st.one_of(st.just(0), st.sampled_from([MAX_PROVISION_DEPTH, 130, 400])))
    return {
        "resourceType": "Consent",
        "status": draw(maybe_odd(st.just("active"))),
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"value": draw(maybe_odd(ID))}},
        "dateTime": draw(maybe_odd(instants())),
        "provision": fhir_provision(draw, depth, extra),
    }


@given(fhir_json())
@FUZZ
def test_a_fhir_consent_is_read_or_refused_with_the_domains_errors(
    resource: dict[str, Any],
) -> None:
    try:
        consent = consent_from_fhir(resource, pseudonymise=lambda reference: "p-1")
    except (InvalidConsentError, UnsupportedConsentError, ValueError):
        return  # what the FHIR route maps to 422
    consent_to_fhir(consent)


@pytest.mark.parametrize("depth", [MAX_PROVISION_DEPTH + 1, 1000, 100_000])
def test_nesting_is_bounded_without_recursion(depth: int) -> None:
    provisions: list[dict[str, Any]] = []
    for _ in range(depth):
        provisions = [{"type": "deny", "provisions": provisions}]
    with pytest.raises(InvalidConsentError, match="deeper than"):
        check_nesting(provisions)


def test_an_instant_beyond_14_hours_is_the_same_instant_in_utc() -> None:
    body = {"start": None, "end": "2030-01-01T00:00:00-15:00"}
    consent = Consent.model_validate_json(
        orjson.dumps(
            {
                "consent_id": "c-1",
                "subject": "s",
                "version": 1,
                "grantor": {"kind": "resident"},
                "grantee": {"institution": "h1"},
                "period": body,
                "granted_at": "2026-01-01T00:00:00Z",
            }
        )
    )
    assert consent.period.end == datetime(2030, 1, 1, 15, tzinfo=UTC)
    assert consent.period.end is not None
    assert consent.period.end.utcoffset() == UTC.utcoffset(None)
