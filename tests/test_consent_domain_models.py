"""The consent models' invariants and their JSON (API schemas and ledger leaves)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pytest
from pydantic import ValidationError

from consent_api.domain.consent import (
    RESIDENT,
    Consent,
    Grantee,
    Grantor,
    Provision,
)
from consent_api.domain.vocab import Category, InstitutionType, Purpose

T0 = datetime(2025, 3, 1, tzinfo=UTC)
HOSP_B = Grantee(institution="hosp-b")


def consent(**changes: Any) -> Consent:
    fields: dict[str, Any] = {
        "consent_id": "c-1",
        "subject": "subj-1",
        "version": 1,
        "grantor": RESIDENT,
        "grantee": HOSP_B,
        "granted_at": T0,
    }
    return Consent(**{**fields, **changes})


def deny(**changes: Any) -> Provision:
    return Provision(type="deny", **changes)


def permit(**changes: Any) -> Provision:
    return Provision(type="permit", **changes)


def alternating(depth: int, kind: Literal["permit", "deny"] = "deny") -> Provision:
    """A chain of ``depth`` nested provisions, deny and permit in turn."""
    other: Literal["permit", "deny"] = "permit" if kind == "deny" else "deny"
    inner = () if depth == 1 else (alternating(depth - 1, other),)
    return Provision(type=kind, provisions=inner)


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "naive granted_at": ({"granted_at": datetime(2025, 3, 1)}, "timezone"),
    "naive period": ({"period": {"start": datetime(2025, 3, 1)}}, "timezone"),
    "period ends before it starts": (
        {"period": {"start": T0, "end": T0 - timedelta(seconds=1)}},
        "start is after its end",
    ),
    "a permit to every institution": ({"grantee": None}, "permit must name its grantee"),
    "version 0": ({"version": 0}, "greater than or equal to 1"),
    "consent id not a FHIR id": ({"consent_id": "c 1"}, "pattern"),
    "guardian without the lapse date": (
        {"grantor": Grantor(kind="guardian", guardian="g-1")},
        "guardian_authority_ends is given exactly",
    ),
    "lapse date for a resident's consent": (
        {"guardian_authority_ends": date(2030, 1, 1)},
        "guardian_authority_ends is given exactly",
    ),
    "revoked without a time": ({"status": "revoked"}, "revoked_at is given exactly"),
    "revocation time on an active consent": ({"revoked_at": T0}, "revoked_at is given exactly"),
    "a deny nested in the permit root's deny": (
        {"provisions": (deny(provisions=(deny(),)),)},
        "nested deny inside a deny",
    ),
    "a permit nested in the permit root": ({"provisions": (permit(),)}, "no exception"),
    "a permit with no grantee on its path": (
        {"type": "deny", "grantee": None, "provisions": (permit(),)},
        "must name grantees",
    ),
    "too deep": ({"provisions": (alternating(depth=9),)}, "deeper than 8"),
    "an unknown field": ({"note": "x"}, "Extra inputs"),
    "a list where a set is required (strict)": ({"categories": ["lab-results"]}, "frozenset"),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_consents_are_refused(name: str) -> None:
    changes, message = INVALID[name]
    with pytest.raises(ValidationError, match=message):
        consent(**changes)


def test_a_grantee_is_exactly_one_of_institution_or_type() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Grantee()
    with pytest.raises(ValidationError, match="exactly one"):
        Grantee(institution="hosp-b", institution_type=InstitutionType.HOSPITAL)


def test_models_are_immutable_and_hashable() -> None:
    c = consent()
    with pytest.raises(ValidationError, match="frozen"):
        c.version = 2
    assert len({c, consent()}) == 1


def test_json_is_sorted_and_round_trips() -> None:
    c = consent(
        categories=frozenset({Category.PRESCRIPTIONS, Category.IMAGING, Category.LAB_RESULTS}),
        purposes=frozenset({Purpose.TREATMENT, Purpose.EMERGENCY}),
        holders=frozenset({"hosp-z", "hosp-a"}),
        provisions=(
            deny(
                grantees=frozenset(
                    {Grantee(institution_type=InstitutionType.CLINIC), Grantee(institution="x")}
                ),
                categories=frozenset({Category.IMAGING, Category.EMERGENCY_STROKE}),
            ),
        ),
    )
    text = c.model_dump_json()
    assert '"categories":["imaging","lab-results","prescriptions"]' in text
    assert '"purposes":["emergency","treatment"]' in text
    assert '"holders":["hosp-a","hosp-z"]' in text
    assert (
        '"grantees":[{"institution":null,"institution_type":"clinic"},'
        '{"institution":"x","institution_type":null}]'
    ) in text
    assert Consent.model_validate_json(text) == c
    assert Consent.model_validate_json(text).model_dump_json() == text


def test_json_schema_is_available_for_the_api() -> None:
    schema = Consent.model_json_schema()
    assert schema["additionalProperties"] is False
    assert {"consent_id", "subject", "grantor", "grantee", "granted_at"} <= set(schema["required"])
