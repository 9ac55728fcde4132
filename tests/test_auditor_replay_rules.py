"""The auditor's own consent rules and replay, event by event, each rule both ways.

Leaves are written in the shape the service logs (``consent_api.consents``, ``access``,
``breakglass``, ``routes.admin``); each case replays a short log and asserts the findings (by
code and leaf) or their absence.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from auditor.errors import StateError
from auditor.findings import FindingCode, Findings
from auditor.policy import Policy
from auditor.replay import Replay
from auditor.replay_state import ReplayState, read_blob, write_blob
from auditor.report_sections import activity_section, overdue_findings
from auditor.rules import iso, micros

SUBJECT = "s" * 64
CHILD = "c" * 64
T0 = "2026-03-01T10:00:00.000000Z"
LATER = "2026-03-01T11:00:00.000000Z"
EXPIRES = "2026-03-01T11:05:00.000000Z"
AFTER_EXPIRY = "2026-03-01T11:06:00.000000Z"
GRANT_TTL_US = 300_000_000  # the service's default: a permit at LATER expires at EXPIRES
Code = FindingCode


class Log:
    """A log being written: leaves in order, and their replay."""

    def __init__(
        self,
        openings: dict[tuple[str, int], tuple[str, bytes]] | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.state = ReplayState()
        self.replay = Replay(self.state, openings, policy=policy)
        self.requests = 0
        self.leaves: list[bytes] = []

    def add(self, kind: str, data: dict[str, Any]) -> int:
        return self.raw(orjson.dumps({"kind": kind, "data": data}))

    def raw(self, leaf_data: bytes) -> int:
        leaf_index = self.state.tree_size
        self.leaves.append(leaf_data)
        self.replay.apply(leaf_index, leaf_data)
        return leaf_index

    def institution(self, institution_id: str, kind: str = "hospital") -> int:
        event = {"institution_id": institution_id, "institution_type": kind, "key_thumbprint": "x"}
        return self.add("institution.registered", event)

    def consent(self, kind: str = "consent.granted", **fields: Any) -> int:
        body = consent_body(**fields)
        return self.add(kind, {"consent": body, "at": body["revoked_at"] or body["granted_at"]})

    def decide(self, decision: str = "permit", **fields: Any) -> int:
        self.requests += 1
        event = {
            "request_id": f"r-{self.requests}",
            "requester": "h-req",
            "requester_type": "hospital",
            "holder": "h-hold",
            "subject": SUBJECT,
            "categories": ["lab-results"],
            "purpose": "treatment",
            "at": LATER,
            "decision": decision,
            "reason": "permitted" if decision == "permit" else "no-consent",
            "relied_on": [],
            "breakglass": False,
        }
        event.update(fields)
        if decision == "permit" and "grant_expires_at" not in fields:
            event["grant_expires_at"] = iso(micros(event["at"]) + GRANT_TTL_US)
        return self.add("access.decided", event)

    def release(self, permit: int, **fields: Any) -> int:
        decided = orjson.loads(self.leaves[permit])["data"]
        event = {
            key: decided[key]
            for key in ("request_id", "subject", "requester", "categories", "purpose")
        }
        event.update(
            holder=decided["holder"],
            grant_ref="0123456789abcdef",
            decision_leaf_index=permit,
            breakglass=decided["breakglass"],
            relied_on=decided["relied_on"],
            at=LATER,
        )
        event.update(fields)
        return self.add("access.released", event)

    def codes(self, now: str = LATER) -> list[tuple[str, tuple[int, ...]]]:
        findings = Findings()
        overdue_findings(self.state, micros(now) / 1e6, findings)
        recorded = [(code, leaves) for code, _, leaves in self.state.findings]
        return recorded + [(str(f.code), f.leaf_indices) for f in findings.items]


def consent_body(
    *,
    consent_id: str = "c-1",
    subject: str = SUBJECT,
    version: int = 1,
    type: str = "permit",
    grantee: dict[str, Any] | str | None = "h-req",
    holders: Iterable[str] = (),
    categories: Iterable[str] = ("lab-results",),
    purposes: Iterable[str] = ("treatment",),
    period: dict[str, Any] | None = None,
    provisions: list[dict[str, Any]] | None = None,
    granted_at: str = T0,
    revoked_at: str | None = None,
    guardian_ends: Any = None,
) -> dict[str, Any]:
    return {
        "consent_id": consent_id,
        "subject": subject,
        "version": version,
        "grantor": {"kind": "resident" if guardian_ends is None else "guardian", "guardian": None},
        "type": type,
        "grantee": {"institution": grantee, "institution_type": None}
        if isinstance(grantee, str)
        else grantee,
        "holders": sorted(holders),
        "categories": sorted(categories),
        "purposes": sorted(purposes),
        "period": period or {"start": None, "end": None},
        "provisions": provisions or [],
        "guardian_authority_ends": guardian_ends,
        "status": "active" if revoked_at is None else "revoked",
        "granted_at": granted_at,
        "revoked_at": revoked_at,
    }


@pytest.fixture
def log() -> Log:
    written = Log()
    written.institution("h-req")
    written.institution("h-hold")
    return written


def relied(consent_leaf: int, consent_id: str = "c-1") -> list[dict[str, Any]]:
    return [{"consent_id": consent_id, "leaf_index": consent_leaf}]


# -- permits: each rule both ways ---------------------------------------------------------------


def test_a_permit_without_any_consent_is_uncovered(log: Log) -> None:
    permit = log.decide()
    assert log.codes() == [(Code.UNCOVERED_PERMIT, (permit,))]


def test_a_permit_covered_by_a_consent_it_names_is_lawful_and_a_denial_needs_none(
    log: Log,
) -> None:
    consent = log.consent()
    log.decide(relied_on=relied(consent))
    log.decide("deny", requester="h-other")
    assert log.codes() == []
    assert log.state.counts["permits"] == 1
    assert log.state.counts["denials"] == 1


@pytest.mark.parametrize(
    ("consent", "request_fields", "lawful"),
    [
        pytest.param({}, {}, True, id="institution grantee"),
        pytest.param({}, {"requester": "h-hold", "holder": "h-req"}, False, id="other grantee"),
        pytest.param({"grantee": {"institution_type": "hospital"}}, {}, True, id="type grantee"),
        pytest.param({"grantee": {"institution_type": "clinic"}}, {}, False, id="other type"),
        pytest.param({}, {"categories": ["imaging"]}, False, id="category not granted"),
        pytest.param({}, {"categories": ["imaging", "lab-results"]}, False, id="one of two"),
        pytest.param({"categories": ()}, {"categories": ["imaging"]}, True, id="any category"),
        pytest.param({}, {"purpose": "research"}, False, id="purpose not granted"),
        pytest.param({"holders": ["h-hold"]}, {}, True, id="holder named"),
        pytest.param({"holders": ["h-else"]}, {}, False, id="other holder"),
        pytest.param({"period": {"start": None, "end": T0}}, {}, False, id="period ended"),
        pytest.param({"period": {"start": LATER, "end": None}}, {}, True, id="period starts"),
        pytest.param(
            {"period": {"start": EXPIRES, "end": None}}, {}, False, id="period not started"
        ),
    ],
)
def test_each_condition_of_a_consent(
    log: Log, consent: dict[str, Any], request_fields: dict[str, Any], lawful: bool
) -> None:
    if "grantee" in consent:
        consent["grantee"] = {"institution": None, **consent["grantee"]}
    leaf = log.consent(**consent)
    permit = log.decide(relied_on=relied(leaf), **request_fields)
    assert log.codes() == ([] if lawful else [(Code.UNCOVERED_PERMIT, (permit,))])


def test_an_institution_type_grant_uses_the_type_the_log_registered(log: Log) -> None:
    log.institution("cl-1", "clinic")
    leaf = log.consent(grantee={"institution": None, "institution_type": "hospital"})
    # The event claims the requester is a hospital; the log registered it as a clinic.
    permit = log.decide(requester="cl-1", requester_type="hospital", relied_on=relied(leaf))
    unregistered = log.decide(requester="h-ghost", relied_on=relied(leaf))
    assert log.codes() == [
        (Code.UNCOVERED_PERMIT, (permit,)),
        (Code.UNCOVERED_PERMIT, (unregistered,)),
    ]


def test_a_matching_deny_provision_wins_and_a_non_matching_one_does_not(log: Log) -> None:
    leaf = log.consent(
        categories=(),
        provisions=[
            {
                "type": "deny",
                "grantees": [],
                "holders": ["h-psych"],
                "categories": [],
                "purposes": [],
                "period": {"start": None, "end": None},
                "provisions": [],
            }
        ],
    )
    log.institution("h-psych")
    denied = log.decide(holder="h-psych", relied_on=relied(leaf))
    log.decide(relied_on=relied(leaf))
    assert log.codes() == [(Code.UNCOVERED_PERMIT, (denied,))]


def test_an_opt_out_vetoes_what_another_consent_permits(log: Log) -> None:
    leaf = log.consent()
    log.consent(consent_id="c-out", type="deny", grantee=None, purposes=())  # no one, for nothing
    permit = log.decide(relied_on=relied(leaf))
    assert log.codes() == [(Code.UNCOVERED_PERMIT, (permit,))]


def test_a_consent_granted_after_the_request_does_not_cover_it(log: Log) -> None:
    leaf = log.consent(granted_at=EXPIRES)
    permit = log.decide(relied_on=relied(leaf))  # dated before the consent it relies on
    assert log.codes() == [
        (Code.BACKDATED, (leaf, permit)),
        (Code.UNCOVERED_PERMIT, (permit,)),
    ]


def test_a_revocation_takes_effect_at_its_instant(log: Log) -> None:
    granted = log.consent()
    log.decide(at=T0, relied_on=relied(granted))
    revoked = log.consent(
        "consent.revoked", revoked_at="2026-03-01T10:30:00.000000Z", granted_at=T0
    )
    before = log.decide(at="2026-03-01T10:29:59.999999Z", relied_on=relied(revoked))
    at_once = log.decide(at="2026-03-01T10:30:00.000000Z", relied_on=relied(revoked))
    after = log.decide(at=LATER, relied_on=relied(revoked))
    assert log.codes() == [(Code.UNCOVERED_PERMIT, (at_once,)), (Code.UNCOVERED_PERMIT, (after,))]
    assert before == at_once - 1


def test_a_narrowed_version_governs_from_its_grant_on(log: Log) -> None:
    first = log.consent(categories=("lab-results", "imaging"))
    earlier = log.decide(at="2026-03-01T10:30:00.000000Z", relied_on=relied(first))
    second = log.consent("consent.narrowed", version=2, categories=("imaging",), granted_at=LATER)
    later = log.decide(at=EXPIRES, relied_on=relied(second))
    imaging = log.decide(at=EXPIRES, categories=["imaging"], relied_on=relied(second))
    assert log.codes() == [(Code.UNCOVERED_PERMIT, (later,))]
    assert earlier < imaging


def test_a_permit_must_rely_on_the_records_that_permit_it(log: Log) -> None:
    leaf = log.consent()
    wrong_leaf = log.decide(relied_on=relied(leaf + 100))
    wrong_id = log.decide(relied_on=relied(leaf, "c-none"))
    nothing = log.decide(relied_on=[])
    assert log.codes() == [
        (Code.UNCOVERED_PERMIT, (wrong_leaf,)),
        (Code.UNCOVERED_PERMIT, (wrong_id,)),
        (Code.UNCOVERED_PERMIT, (nothing,)),
    ]


def test_a_denial_naming_a_record_the_log_does_not_hold_is_a_bad_reference(log: Log) -> None:
    leaf = log.consent()
    denial = log.decide("deny", relied_on=relied(leaf + 7), reason="revoked")
    log.decide("deny", relied_on=relied(leaf), reason="purpose-not-granted")
    assert log.codes() == [(Code.BAD_REFERENCE, (denial,))]


def test_no_decision_is_made_about_an_erased_subject(log: Log) -> None:
    leaf = log.consent()
    earlier = log.decide(at=T0, relied_on=relied(leaf))
    log.add("subject.erased", {"subject": SUBJECT, "erased_at": "2026-03-01T10:02:00Z"})
    # A grant issued before the erasure is judged by the consents, as the service judges it.
    log.release(earlier, at="2026-03-01T10:03:00.000000Z")
    permit = log.decide(relied_on=relied(leaf))
    assert log.codes() == [(Code.UNCOVERED_PERMIT, (permit,))]


# -- guardian consents --------------------------------------------------------------------------


def commitment(day: str, salt: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(salt + day.encode()).hexdigest()}


@pytest.mark.parametrize(
    ("at", "lawful"),
    [("2026-03-09T23:59:59.999999Z", True), ("2026-03-10T00:00:00.000000Z", False)],
)
def test_a_guardian_consent_lapses_at_midnight_utc_of_the_14th_birthday(
    at: str, lawful: bool
) -> None:
    salt = bytes(range(32))
    log = Log({("c-1", 1): ("2026-03-10", salt)})
    log.institution("h-req")
    log.institution("h-hold")
    leaf = log.consent(subject=CHILD, guardian_ends=commitment("2026-03-10", salt))
    permit = log.decide(subject=CHILD, at=at, relied_on=relied(leaf))
    assert log.codes(at) == ([] if lawful else [(Code.UNCOVERED_PERMIT, (permit,))])
    assert log.state.counts["unverifiable_guardian_consents"] == 0


def test_an_unopened_lapse_is_counted_unverifiable_and_a_false_opening_is_a_finding() -> None:
    salt = b"\x01" * 32
    log = Log({("c-2", 1): ("2030-01-01", salt)})  # the service opens a later date than it logged
    log.institution("h-req")
    unopened = log.consent(subject=CHILD, guardian_ends=commitment("2026-03-10", salt))
    lied = log.consent(
        consent_id="c-2", subject=CHILD, guardian_ends=commitment("2026-03-10", salt)
    )
    assert log.state.counts["unverifiable_guardian_consents"] == 2
    assert log.codes() == [(Code.LAPSE_MISMATCH, (lied,))]
    assert unopened == lied - 1


# -- grants and releases ------------------------------------------------------------------------


@pytest.fixture
def rlog(log: Log) -> Log:
    return log


def test_a_grant_redeemed_once_in_time_is_lawful(rlog: Log) -> None:
    leaf = rlog.consent()
    rlog.release(rlog.decide(relied_on=relied(leaf)))
    assert rlog.codes() == []
    assert rlog.state.counts["releases"] == 1


def test_a_grant_redeemed_twice(rlog: Log) -> None:
    leaf = rlog.consent()
    permit = rlog.decide(relied_on=relied(leaf))
    first = rlog.release(permit)
    second = rlog.release(permit)
    assert rlog.codes() == [(Code.GRANT_REUSED, (permit, first, second))]


def test_a_grant_redeemed_at_or_after_its_expiry(rlog: Log) -> None:
    leaf = rlog.consent()
    permit = rlog.decide(relied_on=relied(leaf))
    late = rlog.release(permit, at=EXPIRES)
    assert rlog.codes() == [(Code.GRANT_EXPIRED, (permit, late))]


def test_a_release_to_other_parties_or_without_a_permit(rlog: Log) -> None:
    leaf = rlog.consent()
    permit = rlog.decide(relied_on=relied(leaf))
    wrong = rlog.release(permit, holder="h-other")
    denied = rlog.decide("deny")
    unpermitted = rlog.release(denied, grant_ref="x")
    assert rlog.codes() == [
        (Code.UNCOVERED_RELEASE, (permit, wrong)),
        (Code.UNCOVERED_RELEASE, (unpermitted,)),
    ]


def test_a_release_after_the_consent_was_revoked(rlog: Log) -> None:
    leaf = rlog.consent()
    permit = rlog.decide(at="2026-03-01T10:29:00.000000Z", relied_on=relied(leaf))
    rlog.consent("consent.revoked", revoked_at="2026-03-01T10:30:00.000000Z")
    release = rlog.release(permit, at="2026-03-01T10:31:00.000000Z")
    assert rlog.codes() == [(Code.UNCOVERED_RELEASE, (permit, release))]


def test_a_release_naming_another_decision_leaf(rlog: Log) -> None:
    leaf = rlog.consent()
    permit = rlog.decide(relied_on=relied(leaf))
    release = rlog.release(permit, decision_leaf_index=permit - 1)
    assert rlog.codes() == [(Code.BAD_REFERENCE, (permit, release))]


def test_a_refusal_after_the_claim_uses_the_grant_up(rlog: Log) -> None:
    leaf = rlog.consent()
    permit = rlog.decide(relied_on=relied(leaf))
    event = orjson.loads(rlog.leaves[permit])["data"]
    refused = rlog.add(
        "access.refused",
        {**event, "at": LATER, "refusal": "consent-no-longer-covers", "grant_ref": "x"},
    )
    release = rlog.release(permit)
    assert rlog.codes() == [(Code.GRANT_REUSED, (permit, refused, release))]


# -- break-glass --------------------------------------------------------------------------------

EMERGENCY: dict[str, Any] = {
    "purpose": "emergency",
    "categories": ["emergency-stroke"],
    "breakglass": True,
    "reason": "no-consent",
    "justify_by": "2026-03-02T11:00:00.000000Z",
}


def justify(log: Log, permit: int, at: str) -> int:
    decided = orjson.loads(log.leaves[permit])["data"]
    event = {key: decided[key] for key in ("request_id", "subject", "requester", "holder")}
    event.update(
        at=at,
        justify_by=decided["justify_by"],
        late=False,
        commitment="00" * 32,
        commitment_scheme="sha256(salt||utf8)",
        decision_leaf_index=permit,
    )
    return log.add("breakglass.justified", event)


def test_breakglass_justified_in_time_is_lawful_and_released_without_consent(rlog: Log) -> None:
    permit = rlog.decide(**EMERGENCY)
    rlog.release(permit)
    justification = justify(rlog, permit, "2026-03-01T12:00:00.000000Z")
    assert rlog.codes(now="2026-03-05T00:00:00Z") == []
    cases = activity_section(rlog.state, micros("2026-03-05T00:00:00Z") / 1e6)["breakglass"]
    assert [(c["leaf_index"], c["status"], c["justification_leaf_index"]) for c in cases] == [
        (permit, "justified", justification)
    ]


def test_breakglass_justified_late_pending_and_overdue(rlog: Log) -> None:
    late = rlog.decide(**EMERGENCY)
    unjustified = rlog.decide(**EMERGENCY)
    justification = justify(rlog, late, "2026-03-02T11:00:00.000001Z")
    assert rlog.codes(now="2026-03-02T10:00:00Z") == [(Code.BREAKGLASS_LATE, (late, justification))]
    assert rlog.codes(now="2026-03-02T11:00:01Z") == [
        (Code.BREAKGLASS_LATE, (late, justification)),
        (Code.BREAKGLASS_UNJUSTIFIED, (unjustified,)),
    ]


def test_breakglass_is_for_emergencies_only(rlog: Log) -> None:
    permit = rlog.decide(**{**EMERGENCY, "purpose": "research"})
    justify(rlog, permit, LATER)
    assert rlog.codes() == [(Code.BREAKGLASS_INVALID, (permit,))]


# -- odd leaves and the state -------------------------------------------------------------------


def test_leaves_that_are_no_event(log: Log) -> None:
    not_json = log.raw(b"\x00\x01")
    unknown = log.add("consent.forged", {"x": 1})
    incomplete = log.add("access.decided", {"request_id": "r-x", "decision": "permit"})
    log.consent()  # the replay goes on after them
    assert [code for code, _ in log.codes()] == [Code.BAD_EVENT] * 3
    assert [leaves for _, leaves in log.codes()] == [(not_json,), (unknown,), (incomplete,)]


def test_the_state_round_trips_and_a_damaged_blob_is_refused(rlog: Log, tmp_path: Any) -> None:
    leaf = rlog.consent(provisions=[{"type": "deny", "holders": ["h-x"], "provisions": []}])
    permit = rlog.decide(relied_on=relied(leaf))
    name, digest = write_blob(tmp_path, rlog.state.to_blob())
    again = read_blob(tmp_path, name, digest)
    assert marshal.loads(again.to_blob()) == marshal.loads(rlog.state.to_blob())
    # The reloaded state judges the next leaves as the original would have.
    more = Log()
    more.state = again
    more.replay = Replay(again)
    more.leaves = rlog.leaves
    more.release(permit)
    more.release(permit)
    assert more.codes()[-1][0] == Code.GRANT_REUSED
    (tmp_path / name).write_bytes(b"x" + (tmp_path / name).read_bytes()[1:])
    with pytest.raises(StateError, match="hash differs"):
        read_blob(tmp_path, name, digest)
