"""Narrowing, revocation and renewal: named cases, each accepted or refused with its reason."""

from __future__ import annotations

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
from consent_api.domain.decide import AccessRequest, decide
from consent_api.domain.errors import InvalidConsentError, NarrowingError
from consent_api.domain.narrowing import narrow
from consent_api.domain.vocab import Category, InstitutionType, Purpose

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
LAB, IMAGING, RX = Category.LAB_RESULTS, Category.IMAGING, Category.PRESCRIPTIONS
TREAT, RESEARCH = Purpose.TREATMENT, Purpose.RESEARCH

OLD = Consent(
    consent_id="c-1",
    subject="subj-1",
    version=1,
    grantor=RESIDENT,
    grantee=Grantee(institution_type=InstitutionType.HOSPITAL),
    categories=frozenset({LAB, IMAGING}),
    purposes=frozenset({TREAT, RESEARCH}),
    period=Period(start=T0, end=T0 + 365 * DAY),
    granted_at=T0,
)


def next_version(old: Consent = OLD, **changes: Any) -> Consent:
    return old.replace(
        **{"version": old.version + 1, "granted_at": old.granted_at + DAY, **changes}
    )


ACCEPTED = {
    "no change at all": next_version(),
    "drop a category": next_version(categories=frozenset({LAB})),
    "drop a purpose": next_version(purposes=frozenset({TREAT})),
    "shorten the period": next_version(period=Period(start=T0 + DAY, end=T0 + 30 * DAY)),
    "restrict to one holder": next_version(holders=frozenset({"hosp-a"})),
    "add a deny provision": next_version(
        provisions=(Provision(type="deny", purposes=frozenset({RESEARCH})),)
    ),
}

REFUSED = {
    "add a category": next_version(categories=frozenset({LAB, IMAGING, RX})),
    "any category instead of two": next_version(categories=frozenset()),
    "extend the period": next_version(period=Period(start=T0, end=T0 + 400 * DAY)),
    "drop the period's end": next_version(period=Period(start=T0)),
    "drop the period's start": next_version(period=Period(end=T0 + 365 * DAY)),
    "another institution type as grantee": next_version(
        grantee=Grantee(institution_type=InstitutionType.CLINIC)
    ),
    # The domain does not know which type an institution is: a request could name hosp-b as a
    # clinic, which the old version (hospitals) did not permit. Revoke and grant instead.
    "one named institution instead of a type": next_version(grantee=Grantee(institution="hosp-b")),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_narrowing_accepted(name: str) -> None:
    assert narrow(OLD, ACCEPTED[name]) == ACCEPTED[name]


@pytest.mark.parametrize("name", list(REFUSED))
def test_narrowing_refused_with_a_witness(name: str) -> None:
    new = REFUSED[name]
    with pytest.raises(NarrowingError, match="more permissive") as refused:
        narrow(OLD, new)
    witness = refused.value.witness
    assert witness is not None
    ask = AccessRequest(
        requester=witness.requester,
        requester_type=witness.requester_type,
        holder=witness.holder,
        subject="subj-1",
        categories=frozenset({witness.category}),
        purpose=witness.purpose,
        at=witness.at,
    )
    lifted = [c.replace(granted_at=min(c.granted_at, witness.at)) for c in (OLD, new)]
    assert decide(ask, [lifted[0]]).decision == "deny"
    assert decide(ask, [lifted[1]]).decision == "permit"


def test_lifting_a_carve_out_is_refused_since_denies_veto_other_consents() -> None:
    carved = next_version(provisions=(Provision(type="deny", categories=frozenset({IMAGING})),))
    without_imaging = next_version(carved, categories=frozenset({LAB}))
    with pytest.raises(NarrowingError) as refused:
        narrow(carved, without_imaging)
    witness = refused.value.witness
    assert witness is not None
    assert witness.category == IMAGING
    keep_the_deny = next_version(carved, categories=frozenset({IMAGING}))
    assert narrow(carved, keep_the_deny) == keep_the_deny


@pytest.mark.parametrize(
    ("name", "new", "message"),
    [
        ("another consent id", next_version(consent_id="c-2"), "keep the consent id"),
        ("another subject", next_version(subject="subj-2"), "keep the consent id"),
        ("a skipped version", OLD.replace(version=3), "the version after 1 is 2"),
        ("granted before its predecessor", next_version(granted_at=T0 - DAY), "before"),
        ("revoked", revoke(next_version(), T0 + 2 * DAY), "must be active"),
        (
            "a guardian rewriting the resident's consent",
            next_version(
                grantor=Grantor(kind="guardian", guardian="g-1"),
                guardian_authority_ends=date(2030, 1, 1),
            ),
            "guardian cannot rewrite",
        ),
    ],
)
def test_narrowing_refused_for_lifecycle(name: str, new: Consent, message: str) -> None:
    with pytest.raises(NarrowingError, match=message):
        narrow(OLD, new)


def test_a_revoked_consent_cannot_be_narrowed() -> None:
    with pytest.raises(NarrowingError, match="revoked"):
        narrow(revoke(OLD, T0 + DAY), next_version())


def test_a_guardian_consent_cannot_be_narrowed_into_a_resident_one_past_the_lapse() -> None:
    by_guardian = OLD.replace(
        grantor=Grantor(kind="guardian", guardian="g-1"),
        guardian_authority_ends=date(2025, 6, 15),
    )
    with pytest.raises(NarrowingError) as refused:
        narrow(
            by_guardian, next_version(by_guardian, grantor=RESIDENT, guardian_authority_ends=None)
        )
    witness = refused.value.witness
    assert witness is not None
    assert witness.at >= datetime(2025, 6, 15, tzinfo=UTC)


def test_revoke_twice_or_before_the_grant_is_refused() -> None:
    revoked = revoke(OLD, T0 + DAY)
    assert revoked.status == "revoked"
    assert revoked.revoked_at == T0 + DAY
    with pytest.raises(InvalidConsentError, match="already revoked"):
        revoke(revoked, T0 + 2 * DAY)
    with pytest.raises(ValueError, match="before it was granted"):
        revoke(OLD, T0 - DAY)


def test_renewal_by_the_resident() -> None:
    birth = date(2011, 6, 15)
    ends = guardian_authority_end(birth)
    lapse = datetime(ends.year, ends.month, ends.day, tzinfo=UTC)
    by_guardian = OLD.replace(
        grantor=Grantor(kind="guardian", guardian="g-1"), guardian_authority_ends=ends
    )
    with pytest.raises(InvalidConsentError, match="14th birthday"):
        renew_by_resident(by_guardian, lapse - DAY)
    renewed = renew_by_resident(by_guardian, lapse + DAY)
    assert renewed.version == 2
    assert renewed.grantor == RESIDENT
    assert renewed.guardian_authority_ends is None
    assert renewed.categories == by_guardian.categories
    with pytest.raises(InvalidConsentError, match="not granted by a guardian"):
        renew_by_resident(OLD, lapse)


@pytest.mark.parametrize(
    ("birth", "fourteenth"),
    [
        (date(2011, 6, 15), date(2025, 6, 15)),
        (date(2012, 2, 29), date(2026, 3, 1)),
        (date(2012, 2, 28), date(2026, 2, 28)),
    ],
)
def test_guardian_authority_ends_on_the_14th_birthday(birth: date, fourteenth: date) -> None:
    assert guardian_authority_end(birth) == fourteenth


def test_versions_too_large_to_check_are_refused_not_trusted() -> None:
    carve_outs = tuple(
        Provision(
            type="deny",
            grantees=frozenset({Grantee(institution=f"hosp-{i}")}),
            holders=frozenset({f"holder-{i}"}),
            period=Period(start=T0 + i * DAY),
        )
        for i in range(24)
    )
    big = OLD.replace(provisions=carve_outs)
    with pytest.raises(NarrowingError, match="too large"):
        narrow(big, next_version(big))
