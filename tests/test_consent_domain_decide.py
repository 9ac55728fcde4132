"""Decision table for ``decide``: named cases, each a set of consent records and one request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from consent_api.domain.consent import (
    RESIDENT,
    Consent,
    Grantee,
    Grantor,
    Period,
    Provision,
    guardian_authority_end,
    renew_by_resident,
    revoke,
)
from consent_api.domain.decide import (
    AccessRequest,
    Decision,
    Reason,
    covering_consents,
    decide,
    findings,
)
from consent_api.domain.errors import InvalidConsentError
from consent_api.domain.vocab import EMERGENCY_CATEGORIES, Category, InstitutionType, Purpose

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
LAB, IMAGING, STROKE = Category.LAB_RESULTS, Category.IMAGING, Category.EMERGENCY_STROKE
TREAT, RESEARCH, EMERGENCY = Purpose.TREATMENT, Purpose.RESEARCH, Purpose.EMERGENCY
HOSPITAL, CLINIC = InstitutionType.HOSPITAL, InstitutionType.CLINIC


def consent(**changes: Any) -> Consent:
    """hosp-b may see lab results for treatment, granted at T0 by the resident."""
    fields: dict[str, Any] = {
        "consent_id": "c-1",
        "subject": "subj-1",
        "version": 1,
        "grantor": RESIDENT,
        "grantee": Grantee(institution="hosp-b"),
        "categories": frozenset({LAB}),
        "purposes": frozenset({TREAT}),
        "granted_at": T0,
    }
    return Consent(**{**fields, **changes})


def request(**changes: Any) -> AccessRequest:
    """hosp-b (a hospital) asks hosp-a for subj-1's lab results for treatment, a day after T0."""
    fields: dict[str, Any] = {
        "requester": "hosp-b",
        "requester_type": HOSPITAL,
        "holder": "hosp-a",
        "subject": "subj-1",
        "categories": frozenset({LAB}),
        "purpose": TREAT,
        "at": T0 + DAY,
    }
    return AccessRequest(**{**fields, **changes})


def permit(*relied_on: str) -> Decision:
    return Decision(decision="permit", relied_on=relied_on, reason=Reason.PERMITTED)


def deny(reason: Reason, *relied_on: str) -> Decision:
    return Decision(decision="deny", relied_on=relied_on, reason=reason)


BIRTH = date(2011, 6, 15)
LAPSE = guardian_authority_end(BIRTH)  # 2025-06-15
LAPSE_AT = datetime(LAPSE.year, LAPSE.month, LAPSE.day, tzinfo=UTC)
GUARDIAN = Grantor(kind="guardian", guardian="guardian-7")
BY_GUARDIAN = consent(grantor=GUARDIAN, guardian_authority_ends=LAPSE)
RENEWED = renew_by_resident(BY_GUARDIAN, LAPSE_AT + 2 * DAY)
CARVED = consent(
    categories=frozenset({LAB, IMAGING}),
    purposes=frozenset({TREAT, RESEARCH, EMERGENCY}),
    provisions=(
        Provision(
            type="deny",
            categories=frozenset({IMAGING}),
            provisions=(Provision(type="permit", purposes=frozenset({EMERGENCY})),),
        ),
        Provision(type="deny", holders=frozenset({"hosp-x"})),
    ),
)
OPT_OUT = consent(
    consent_id="c-out",
    type="deny",
    grantee=None,
    holders=frozenset({"hosp-a"}),
    categories=frozenset(),
    purposes=frozenset(),
)


@dataclass(frozen=True)
class Case:
    name: str
    consents: list[Consent]
    request: AccessRequest
    expected: Decision
    note: str = field(default="")


CASES = [
    Case("deny by default: no consent at all", [], request(), deny(Reason.NO_CONSENT)),
    Case(
        "another subject's consent does not count",
        [consent(subject="subj-2")],
        request(),
        deny(Reason.NO_CONSENT),
    ),
    Case("a matching consent permits", [consent()], request(), permit("c-1")),
    Case(
        "revocation is effective at the instant given",
        [revoke(consent(), T0 + DAY)],
        request(),
        deny(Reason.REVOKED, "c-1"),
    ),
    Case(
        "a replay before the revocation still permits",
        [revoke(consent(), T0 + DAY + TICK)],
        request(),
        permit("c-1"),
    ),
    Case(
        "expired: the period ended just before",
        [consent(period=Period(end=T0 + DAY - TICK))],
        request(),
        deny(Reason.EXPIRED, "c-1"),
    ),
    Case(
        "the period's end is included",
        [consent(period=Period(end=T0 + DAY))],
        request(),
        permit("c-1"),
    ),
    Case(
        "not yet valid: the period starts later",
        [consent(period=Period(start=T0 + 2 * DAY))],
        request(),
        deny(Reason.NOT_YET_VALID, "c-1"),
    ),
    Case(
        "not yet valid: granted after the request",
        [consent(granted_at=T0 + 2 * DAY)],
        request(),
        deny(Reason.NOT_YET_VALID, "c-1"),
    ),
    Case(
        "guardian: the day before the 14th birthday permits",
        [BY_GUARDIAN],
        request(at=LAPSE_AT - TICK),
        permit("c-1"),
    ),
    Case(
        "guardian: on the 14th birthday the consent has lapsed",
        [BY_GUARDIAN],
        request(at=LAPSE_AT),
        deny(Reason.GUARDIAN_AUTHORITY_LAPSED, "c-1"),
    ),
    Case(
        "guardian: lapsed until the resident renews",
        [BY_GUARDIAN, RENEWED],
        request(at=LAPSE_AT + DAY),
        deny(Reason.GUARDIAN_AUTHORITY_LAPSED, "c-1"),
    ),
    Case(
        "guardian: renewed by the resident permits again",
        [BY_GUARDIAN, RENEWED],
        request(at=LAPSE_AT + 3 * DAY),
        permit("c-1"),
    ),
    Case(
        "grantee by type: any hospital",
        [consent(grantee=Grantee(institution_type=HOSPITAL))],
        request(requester="hosp-z"),
        permit("c-1"),
    ),
    Case(
        "grantee by type: a clinic is not a hospital",
        [consent(grantee=Grantee(institution_type=HOSPITAL))],
        request(requester="clinic-c", requester_type=CLINIC),
        deny(Reason.GRANTEE_MISMATCH, "c-1"),
    ),
    Case(
        "grantee by id: another hospital",
        [consent()],
        request(requester="hosp-z"),
        deny(Reason.GRANTEE_MISMATCH, "c-1"),
    ),
    Case(
        "holder: only the named custodian's records",
        [consent(holders=frozenset({"hosp-c"}))],
        request(),
        deny(Reason.HOLDER_MISMATCH, "c-1"),
    ),
    Case(
        "category not granted",
        [consent()],
        request(categories=frozenset({IMAGING})),
        deny(Reason.CATEGORY_NOT_GRANTED, "c-1"),
    ),
    Case(
        "every requested category must be granted",
        [consent()],
        request(categories=frozenset({LAB, IMAGING})),
        deny(Reason.CATEGORY_NOT_GRANTED, "c-1"),
    ),
    Case(
        "purpose not granted",
        [consent()],
        request(purpose=RESEARCH),
        deny(Reason.PURPOSE_NOT_GRANTED, "c-1"),
    ),
    Case(
        "nested deny wins within its consent",
        [CARVED],
        request(categories=frozenset({IMAGING}), purpose=RESEARCH),
        deny(Reason.DENIED_BY_PROVISION, "c-1"),
    ),
    Case(
        "outside the carve-out the root permit stands",
        [CARVED],
        request(categories=frozenset({LAB}), purpose=RESEARCH),
        permit("c-1"),
    ),
    Case(
        "the deepest matching provision decides: emergency re-permitted",
        [CARVED],
        request(categories=frozenset({IMAGING}), purpose=EMERGENCY),
        permit("c-1"),
    ),
    Case(
        "deny beats permit between branches",
        [CARVED],
        request(categories=frozenset({IMAGING}), purpose=EMERGENCY, holder="hosp-x"),
        deny(Reason.DENIED_BY_PROVISION, "c-1"),
    ),
    Case(
        "consents combine: each category covered by some consent",
        [consent(), consent(consent_id="c-2", categories=frozenset({IMAGING}))],
        request(categories=frozenset({LAB, IMAGING})),
        permit("c-1", "c-2"),
    ),
    Case(
        "a deny in any applicable consent wins over permits in others",
        [consent(), OPT_OUT],
        request(),
        deny(Reason.DENIED_BY_PROVISION, "c-out"),
    ),
    Case(
        "an opt-out of one holder leaves other holders' records",
        [consent(), OPT_OUT],
        request(holder="hosp-q"),
        permit("c-1"),
    ),
    Case(
        "an opt-out alone permits nothing",
        [OPT_OUT],
        request(holder="hosp-q"),
        deny(Reason.NO_CONSENT),
    ),
    Case(
        "the most informative reason: a revoked consent for the requester",
        [
            revoke(consent(), T0),
            consent(consent_id="c-2", grantee=Grantee(institution="clinic-c")),
        ],
        request(),
        deny(Reason.REVOKED, "c-1"),
    ),
    Case(
        "break-glass: any hospital, emergency categories, emergency purpose",
        [
            consent(
                grantee=Grantee(institution_type=HOSPITAL),
                categories=EMERGENCY_CATEGORIES,
                purposes=frozenset({EMERGENCY}),
            )
        ],
        request(requester="hosp-z", categories=frozenset({STROKE}), purpose=EMERGENCY),
        permit("c-1"),
    ),
    Case(
        "break-glass consent does not cover ordinary treatment",
        [
            consent(
                grantee=Grantee(institution_type=HOSPITAL),
                categories=EMERGENCY_CATEGORIES,
                purposes=frozenset({EMERGENCY}),
            )
        ],
        request(requester="hosp-z", categories=frozenset({STROKE})),
        deny(Reason.PURPOSE_NOT_GRANTED, "c-1"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decision_table(case: Case) -> None:
    assert decide(case.request, case.consents) == case.expected
    assert decide(case.request, list(reversed(case.consents))) == case.expected


def test_versions_each_govern_from_their_grant() -> None:
    v1 = consent(categories=frozenset({LAB, IMAGING}))
    v2 = v1.replace(version=2, categories=frozenset({LAB}), granted_at=T0 + 5 * DAY)
    imaging = frozenset({IMAGING})
    assert decide(request(categories=imaging, at=T0 + 4 * DAY), [v1, v2]) == permit("c-1")
    assert decide(request(categories=imaging, at=T0 + 5 * DAY), [v1, v2]) == deny(
        Reason.CATEGORY_NOT_GRANTED, "c-1"
    )


def test_a_revoked_record_supersedes_the_same_version() -> None:
    active = consent()
    assert decide(request(), [active, revoke(active, T0)]) == deny(Reason.REVOKED, "c-1")


def test_two_different_records_of_one_version_are_refused() -> None:
    with pytest.raises(InvalidConsentError, match="two different records"):
        decide(request(), [consent(), consent(categories=frozenset({IMAGING}))])


def test_covering_consents_and_findings_explain_the_decision() -> None:
    records = [consent(), consent(consent_id="c-2", categories=frozenset({LAB, IMAGING}))]
    ask = request(categories=frozenset({LAB, IMAGING, STROKE}))
    assert covering_consents(ask, records) == {
        LAB: ("c-1", "c-2"),
        IMAGING: ("c-2",),
        STROKE: (),
    }
    trace = findings(ask, records)
    assert len(trace) == 6
    assert {(f.consent_id, f.category, f.reason) for f in trace if f.category == STROKE} == {
        ("c-1", STROKE, Reason.CATEGORY_NOT_GRANTED),
        ("c-2", STROKE, Reason.CATEGORY_NOT_GRANTED),
    }
    assert decide(ask, records) == deny(Reason.CATEGORY_NOT_GRANTED, "c-1", "c-2")


def test_decision_json_is_stable() -> None:
    decision = decide(request(), [consent()])
    assert decision.model_dump_json() == (
        '{"decision":"permit","relied_on":["c-1"],"reason":"permitted"}'
    )
    assert Decision.model_validate_json(decision.model_dump_json()) == decision


def test_a_request_needs_a_category_and_an_aware_instant() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        request(categories=frozenset())
    with pytest.raises(ValueError, match="timezone"):
        request(at=datetime(2025, 3, 2))
