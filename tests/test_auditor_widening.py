"""The auditor's narrowing check is sound: what it lets through, the service's exact one does.

``auditor.widening`` is a simpler, sufficient test (it may refuse a narrowing the exact cell
search of ``consent_api.domain.narrowing`` accepts, never the other way round). Random pairs of
versions, most of them edits of the first (a category, holder, provision or the period end
taken away or added, a permit turned into a deny), are checked by both.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from auditor.rules import rule_of
from auditor.widening import rule_widening
from consent_api.domain.consent import Consent
from consent_api.domain.narrowing import first_broadening

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
    verdict = rule_widening(rule_of(logged_old, root=True), rule_of(logged_new, root=True))
    if verdict is None:
        assert first_broadening(old, new) is None


def test_the_checks_agree_on_a_plain_narrowing_and_a_widening() -> None:
    rng = random.Random(1)
    old_body = {**consent(rng), "type": "permit", "categories": ["imaging", "lab-results"]}
    narrower = {**old_body, "version": 2, "categories": ["imaging"]}
    wider = {**old_body, "version": 2, "categories": []}
    old = rule_of(old_body, root=True)
    assert rule_widening(old, rule_of(narrower, root=True)) is None
    assert rule_widening(old, rule_of(wider, root=True)) is not None
