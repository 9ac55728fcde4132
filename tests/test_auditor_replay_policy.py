"""The replay holds the service to the regulator's limits, not to the times the service logs.

Each case is a log a dishonest service could write (backdated decisions, revocations dated in
the future, break-glass deadlines and grant lifetimes of its own choosing, permits for a
deactivated institution, a "narrowing" that widens, a permit of nothing), and the lawful
variant next to it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditor.cli import build_parser
from auditor.findings import FindingCode
from auditor.policy import Policy
from auditor.report_sections import activity_section
from auditor.rules import micros
from auditor.state import AuditorState
from tests.test_auditor_replay_rules import (
    EMERGENCY,
    EXPIRES,
    LATER,
    SUBJECT,
    T0,
    Log,
    consent_body,
    justify,
    log,
    relied,
)

__all__ = ["log"]  # the fixture, imported for pytest to find

Code = FindingCode


# -- H2.1: backdated events ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "backdated"),
    [
        pytest.param("2026-03-01T10:59:55.000000Z", False, id="within the tolerance"),
        pytest.param("2026-03-01T10:59:54.999999Z", True, id="beyond the tolerance"),
        pytest.param("2026-03-01T09:00:00.000000Z", True, id="an hour early"),
    ],
)
def test_an_event_dated_before_one_logged_earlier_is_backdated(
    log: Log, at: str, backdated: bool
) -> None:
    leaf = log.consent()
    first = log.decide("deny", at=LATER)
    second = log.decide("deny", at=at)
    log.decide(relied_on=relied(leaf), at=EXPIRES)  # back in order: no finding
    assert log.codes(EXPIRES) == ([(Code.BACKDATED, (first, second))] if backdated else [])


def test_a_decision_backdated_to_before_a_logged_revocation_is_flagged(log: Log) -> None:
    granted = log.consent()
    revoked = log.consent("consent.revoked", revoked_at="2026-03-01T12:00:00.000000Z")
    permit = log.decide(at="2026-03-01T11:00:00.000000Z", relied_on=relied(granted))
    assert log.codes() == [(Code.BACKDATED, (revoked, permit))]


def test_the_clock_tolerance_is_the_regulators() -> None:
    log = Log(policy=Policy.of_seconds(clock_tolerance=0))
    first = log.add("subject.erased", {"subject": "x", "at": LATER})
    second = log.add("subject.erased", {"subject": "y", "at": "2026-03-01T10:59:59.999999Z"})
    assert log.codes() == [(Code.BACKDATED, (first, second))]


# -- H2.2: effective times are the leaf's own ----------------------------------------------------


@pytest.mark.parametrize(
    ("revoked_at", "misdated"),
    [
        pytest.param("2026-03-01T10:30:00.000000Z", False, id="at the leaf's instant"),
        pytest.param("2026-03-01T10:30:04.000000Z", False, id="within the tolerance"),
        pytest.param("2099-01-01T00:00:00.000000Z", True, id="far in the future"),
        pytest.param("2026-03-01T10:00:00.000000Z", True, id="in the past"),
    ],
)
def test_a_revocation_takes_effect_when_it_is_logged(
    log: Log, revoked_at: str, misdated: bool
) -> None:
    log.consent()
    body = consent_body(revoked_at=revoked_at)
    revoked = log.add("consent.revoked", {"consent": body, "at": "2026-03-01T10:30:00.000000Z"})
    assert log.codes() == ([(Code.MISDATED, (revoked,))] if misdated else [])


def test_a_new_version_granted_at_another_time_than_its_leaf_is_misdated(log: Log) -> None:
    log.consent()
    body = consent_body(version=2, granted_at="2026-03-01T10:30:00.000000Z", holders=["h-hold"])
    narrowed = log.add("consent.narrowed", {"consent": body, "at": LATER})
    assert log.codes() == [(Code.MISDATED, (narrowed,))]


def test_a_revocation_dated_in_the_future_does_not_keep_the_consent_in_force(log: Log) -> None:
    """The reviewer's case: the consent still covered a permit after its revocation leaf."""
    log.consent()
    body = consent_body(revoked_at="2099-01-01T00:00:00.000000Z")
    revoked = log.add("consent.revoked", {"consent": body, "at": "2026-03-01T10:30:00.000000Z"})
    log.decide(relied_on=relied(revoked))
    assert (Code.MISDATED, (revoked,)) in log.codes()


# -- H2.3: break-glass deadlines -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("justify_by", "flagged"),
    [
        pytest.param("2026-03-02T11:00:00.000000Z", False, id="the policy's window"),
        pytest.param("2026-03-01T12:00:00.000000Z", False, id="an earlier deadline"),
        pytest.param("2026-03-02T11:00:05.000000Z", False, id="within the tolerance"),
        pytest.param("2099-01-01T00:00:00.000000Z", True, id="far in the future"),
        pytest.param(None, True, id="missing"),
    ],
)
def test_a_breakglass_deadline_is_bounded_by_the_policy(
    log: Log, justify_by: str | None, flagged: bool
) -> None:
    fields: dict[str, Any] = {**EMERGENCY, "justify_by": justify_by}
    if justify_by is None:
        del fields["justify_by"]
    permit = log.decide(**fields)
    assert log.codes() == ([(Code.BREAKGLASS_DEADLINE, (permit,))] if flagged else [])
    # Overdue by the policy's deadline, whatever was logged (never "pending" for ever).
    late = "2026-03-02T11:00:05.000001Z"
    assert (Code.BREAKGLASS_UNJUSTIFIED, (permit,)) in log.codes(now=late)
    (case,) = activity_section(log.state, micros(late) / 1e6)["breakglass"]
    assert case["status"] == "overdue"


def test_a_breakglass_justified_after_the_policy_deadline_is_late(log: Log) -> None:
    permit = log.decide(**{**EMERGENCY, "justify_by": "2099-01-01T00:00:00.000000Z"})
    justification = justify(log, permit, "2026-03-03T00:00:00.000000Z")
    assert log.codes() == [
        (Code.BREAKGLASS_DEADLINE, (permit,)),
        (Code.BREAKGLASS_LATE, (permit, justification)),
    ]


def test_the_justification_window_is_the_regulators() -> None:
    log = Log(policy=Policy.of_seconds(justify_within=3600))
    log.institution("h-req")
    log.institution("h-hold")
    permit = log.decide(**EMERGENCY)  # the service allowed a day
    assert log.codes() == [(Code.BREAKGLASS_DEADLINE, (permit,))]


# -- H2.4: grant lifetimes -----------------------------------------------------------------------


def test_a_grant_living_longer_than_the_policy_is_flagged_and_held_to_it(log: Log) -> None:
    leaf = log.consent()
    ok = log.decide(relied_on=relied(leaf), grant_expires_at="2026-03-01T12:00:00.000000Z")
    long = log.decide(relied_on=relied(leaf), grant_expires_at="2099-01-01T00:00:00.000000Z")
    none = log.decide(relied_on=relied(leaf), grant_expires_at=None)
    late = log.release(long, at="2026-03-01T12:00:00.000001Z")
    assert log.codes() == [
        (Code.GRANT_LIFETIME, (long,)),
        (Code.GRANT_LIFETIME, (none,)),
        (Code.GRANT_EXPIRED, (long, late)),
    ]
    assert ok < long


def test_a_breakglass_release_years_later_is_expired(log: Log) -> None:
    permit = log.decide(**EMERGENCY, grant_expires_at="2099-01-01T00:00:00.000000Z")
    justify(log, permit, "2026-03-01T12:00:00.000000Z")
    release = log.release(permit, at="2031-01-01T00:00:00.000000Z")
    assert log.codes() == [
        (Code.GRANT_LIFETIME, (permit,)),
        (Code.GRANT_EXPIRED, (permit, release)),
    ]


def test_a_breakglass_release_to_other_parties(log: Log) -> None:
    permit = log.decide(**EMERGENCY)
    release = log.release(permit, requester="h-hold", holder="h-req")
    assert log.codes() == [(Code.UNCOVERED_RELEASE, (permit, release))]


def test_the_grant_lifetime_is_the_regulators() -> None:
    log = Log(policy=Policy.of_seconds(grant_ttl=60))
    log.institution("h-req")
    log.institution("h-hold")
    leaf = log.consent()
    permit = log.decide(relied_on=relied(leaf))  # five minutes, the service's default
    assert log.codes() == [(Code.GRANT_LIFETIME, (permit,))]


# -- H2.5: deactivated and unregistered institutions ---------------------------------------------


def deactivate(log: Log, institution: str) -> int:
    return log.add("institution.revoked", {"institution_id": institution, "revoked_at": T0})


@pytest.mark.parametrize("who", ["h-req", "h-hold"])
def test_no_permit_involves_a_deactivated_institution(log: Log, who: str) -> None:
    leaf = log.consent()
    before = log.decide(relied_on=relied(leaf), at="2026-03-01T10:50:00.000000Z")
    gone = deactivate(log, who)
    release = log.release(before, at="2026-03-01T10:51:00.000000Z")
    permit = log.decide(relied_on=relied(leaf))
    emergency = log.decide(**EMERGENCY)
    assert log.codes() == [
        (Code.UNCOVERED_RELEASE, (before, release)),
        (Code.UNCOVERED_PERMIT, (permit,)),
        (Code.BREAKGLASS_INVALID, (emergency,)),
    ]
    assert gone < permit


def test_a_breakglass_release_after_deactivation(log: Log) -> None:
    permit = log.decide(**EMERGENCY)
    deactivate(log, "h-req")
    release = log.release(permit, at="2026-03-01T11:01:00.000000Z")
    assert log.codes() == [(Code.UNCOVERED_RELEASE, (permit, release))]


def test_a_breakglass_needs_registered_parties_and_a_resident_not_erased() -> None:
    log = Log()
    log.institution("h-req")
    unregistered_holder = log.decide(**EMERGENCY)
    log.institution("h-hold")
    unregistered_requester = log.decide(**EMERGENCY, requester="h-none")
    log.add("subject.erased", {"subject": SUBJECT, "erased_at": T0})
    erased = log.decide(**EMERGENCY)
    assert log.codes() == [
        (Code.BREAKGLASS_INVALID, (unregistered_holder,)),
        (Code.BREAKGLASS_INVALID, (unregistered_requester,)),
        (Code.BREAKGLASS_INVALID, (erased,)),
    ]


def test_a_permit_from_an_unregistered_holder() -> None:
    log = Log()
    log.institution("h-req")
    leaf = log.consent()
    permit = log.decide(relied_on=relied(leaf))
    assert log.codes() == [(Code.UNCOVERED_PERMIT, (permit,))]


# -- H2.6: a narrowing that widens ---------------------------------------------------------------

NARROWED_AT = "2026-03-01T10:30:00.000000Z"
PERIOD = {"start": "2026-03-01T00:00:00.000000Z", "end": "2026-04-01T00:00:00.000000Z"}
DENY_IMAGING = {"type": "deny", "categories": ["imaging"], "provisions": []}


@pytest.mark.parametrize(
    ("before", "after", "widens"),
    [
        pytest.param({}, {"categories": ["lab-results"]}, False, id="same rules"),
        pytest.param(
            {"categories": ["lab-results", "imaging"]}, {}, False, id="a category dropped"
        ),
        pytest.param({}, {"categories": ["lab-results", "imaging"]}, True, id="category added"),
        pytest.param({}, {"categories": []}, True, id="categories to any"),
        pytest.param({}, {"purposes": ["treatment", "research"]}, True, id="purpose added"),
        pytest.param({}, {"holders": ["h-hold"]}, False, id="a holder named"),
        pytest.param({"holders": ["h-hold"]}, {}, True, id="holders to any"),
        pytest.param({}, {"period": PERIOD}, False, id="a period set"),
        pytest.param({"period": PERIOD}, {}, True, id="the period dropped"),
        pytest.param(
            {"period": PERIOD},
            {"period": {**PERIOD, "end": "2026-05-01T00:00:00.000000Z"}},
            True,
            id="the period extended",
        ),
        pytest.param({}, {"grantee": "h-other"}, True, id="another grantee"),
        pytest.param(
            {"categories": ["lab-results", "imaging"], "provisions": [DENY_IMAGING]},
            {"categories": ["lab-results", "imaging"]},
            True,
            id="a deny provision removed",
        ),
        pytest.param(
            {"categories": [], "provisions": [DENY_IMAGING]},
            {"categories": ["lab-results"], "provisions": [DENY_IMAGING]},
            True,
            id="a deny narrowed out of scope",
        ),
        pytest.param(
            {"categories": [], "provisions": [DENY_IMAGING]},
            {"categories": ["lab-results", "imaging"], "provisions": [DENY_IMAGING]},
            False,
            id="scope narrowed, the deny kept inside",
        ),
        pytest.param({}, {"provisions": [DENY_IMAGING]}, False, id="a deny provision added"),
        pytest.param({}, {"type": "deny"}, False, id="a permit becomes a deny"),
        pytest.param({"type": "deny"}, {"type": "permit"}, True, id="a deny becomes a permit"),
        pytest.param(
            {"type": "deny", "categories": ["lab-results", "imaging"]},
            {"type": "deny"},
            True,
            id="a deny narrowed",
        ),
        pytest.param(
            {
                "categories": [],
                "provisions": [
                    {
                        "type": "deny",
                        "categories": ["imaging"],
                        "provisions": [
                            {
                                "type": "permit",
                                "categories": ["prescriptions"],
                                "holders": ["x-third"],
                            }
                        ],
                    }
                ],
            },
            {
                "categories": [],
                "provisions": [
                    {
                        "type": "deny",
                        "provisions": [{"type": "permit", "categories": ["prescriptions"]}],
                    }
                ],
            },
            False,
            id="a deny exception reshaped that only removes permits (issue 12, item 10)",
        ),
    ],
)
def test_a_new_version_must_permit_nothing_more(
    log: Log, before: dict[str, Any], after: dict[str, Any], widens: bool
) -> None:
    first = log.consent(**before)
    second = log.consent("consent.narrowed", version=2, granted_at=NARROWED_AT, **after)
    assert log.codes() == ([(Code.WIDENING_NARROWING, (first, second))] if widens else [])


def test_a_widening_version_does_not_cover_silently(log: Log) -> None:
    log.consent(categories=["imaging"])
    widened = log.consent(
        "consent.narrowed",
        version=2,
        categories=["imaging", "lab-results"],
        granted_at=NARROWED_AT,
    )
    log.decide(relied_on=relied(widened))
    assert (Code.WIDENING_NARROWING, (widened - 1, widened)) in log.codes()


def test_a_revoked_consent_is_not_brought_back_by_a_new_version(log: Log) -> None:
    log.consent()
    revoked = log.consent("consent.revoked", revoked_at=NARROWED_AT)
    again = log.consent("consent.narrowed", version=2, granted_at=LATER)
    assert log.codes() == [(Code.WIDENING_NARROWING, (revoked - 1, again))]


def test_a_guardians_lapse_may_not_be_dropped_or_moved_later() -> None:
    log = Log()
    first = log.consent(guardian_ends="2026-03-10")
    later = log.consent(
        "consent.narrowed", version=2, granted_at=NARROWED_AT, guardian_ends="2027-03-10"
    )
    body = consent_body(version=3, granted_at=LATER)  # the resident's grantor, no lapse
    dropped = log.add("consent.narrowed", {"consent": body, "at": LATER})
    renewal = consent_body(version=4, granted_at="2026-03-10T00:00:00.000000Z")
    renewed = log.add("consent.narrowed", {"consent": renewal, "at": renewal["granted_at"]})
    assert log.codes() == [
        (Code.WIDENING_NARROWING, (first, later)),
        (Code.WIDENING_NARROWING, (later, dropped)),
    ]
    assert renewed == dropped + 1  # the resident's renewal on the 14th birthday is lawful


# -- L4: a permit of nothing ---------------------------------------------------------------------


def test_a_permit_of_no_category_is_not_covered_vacuously(log: Log) -> None:
    leaf = log.consent()
    silent = log.decide(categories=[])
    named = log.decide(categories=[], relied_on=relied(leaf))
    emergency = log.decide(**{**EMERGENCY, "categories": []})
    assert log.codes() == [
        (Code.UNCOVERED_PERMIT, (silent,)),
        (Code.UNCOVERED_PERMIT, (named,)),
        (Code.BREAKGLASS_INVALID, (emergency,)),
    ]


# -- the command line and the state file ---------------------------------------------------------


def test_the_limits_are_command_line_options() -> None:
    args = build_parser().parse_args(
        [
            *("--api", "http://x", "--rpc", "http://y", "--contract", "0x0", "--state", "s"),
            *("--clock-tolerance", "2", "--justify-within", "3600", "--grant-ttl", "300"),
        ]
    )
    policy = Policy.of_seconds(args.clock_tolerance, args.justify_within, args.grant_ttl)
    assert policy == Policy(2_000_000, 3_600_000_000, 300_000_000)
    defaults = build_parser().parse_args(
        ["--api", "a", "--rpc", "r", "--contract", "c", "--state", "s"]
    )
    assert Policy.of_seconds(
        defaults.clock_tolerance, defaults.justify_within, defaults.grant_ttl
    ) == Policy(5_000_000, 86_400_000_000, 3_600_000_000)
    with pytest.raises(ValueError, match="negative"):
        Policy.of_seconds(clock_tolerance=-1)


def test_saving_the_state_syncs_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old replay blobs are deleted right after: the new name must be durable first."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    AuditorState().save(tmp_path)
    assert synced[-1] == str(tmp_path)


def test_a_logged_consent_nested_past_any_stack_is_a_bad_event(log: Log) -> None:
    """As deep as a leaf's JSON can be read (1,000 levels): refused, never a crash."""
    body = orjson.dumps(consent_body(provisions=[{"type": "deny", "provisions": ["DEEP"]}]))
    levels = 495
    deep = b'{"type":"permit","provisions":[' * levels + b"]}" * levels
    body = body.replace(b'"DEEP"', deep)
    at = orjson.loads(body)["granted_at"]
    leaf = log.raw(
        b'{"kind":"consent.granted","data":{"consent":' + body + b',"at":"' + at.encode() + b'"}}'
    )
    assert (Code.BAD_EVENT, (leaf,)) in log.codes()
