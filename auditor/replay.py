"""The lawfulness replay: every verified leaf, in log order, judged by ``auditor.rules``.

Each leaf updates the ``ReplayState`` (consents, institutions, grants, break-glass cases) and
is checked against what came before it in the log (``auditor.replay_consents`` reads the leaf,
its clock and the consents; this module the access events):

* a permit (not break-glass) must be covered by the subject's consents at its instant, for a
  registered and active requester of the type it was registered with and a registered and
  active holder, and the consents it says it relied on must be records of those consents that
  permit it; a permit of no category at all is not covered by anything;
* a break-glass permit must be for the emergency purpose and emergency categories only, by and
  from active institutions, about a resident not erased, and be justified by its deadline: the
  one the regulator's policy sets (``Policy.justify_within_us`` after the permit), or the
  logged ``justify_by`` if earlier; a missing or later logged deadline is a finding;
* a grant lives at most ``Policy.grant_ttl_us``: a longer logged expiry is a finding, and the
  grant is held to the policy's;
* a release must redeem a grant a permit issued, to its requester and holder (both still
  active), for its subject, categories and purpose, once, before the grant expired, and (unless
  break-glass) still be covered by the consents at the release's instant;
* a leaf that is not a known event, or lacks what its kind carries, is a ``bad-event``.
"""

from __future__ import annotations

from typing import Any, Final

from .findings import FindingCode
from .policy import Policy
from .replay_consents import CONSENT_KINDS, ConsentReplay, Openings
from .replay_state import ReplayState
from .rules import (
    EMERGENCY_CATEGORIES,
    EMERGENCY_PURPOSES,
    RuleError,
    iso,
    judge,
    micros,
    optional_micros,
)

__all__ = ["CLAIMED_REFUSALS", "CONSENT_KINDS", "Openings", "Replay"]

#: A refusal code the service logs after it claimed the grant: the grant is used up.
CLAIMED_REFUSALS: Final = frozenset({"consent-no-longer-covers"})


class Replay(ConsentReplay):
    """Applies leaves to ``state`` in order; findings go into ``state.findings``."""

    def __init__(
        self,
        state: ReplayState,
        openings: Openings | None = None,
        anchored_sizes: frozenset[int] = frozenset(),
        policy: Policy | None = None,
    ) -> None:
        super().__init__(state, openings, anchored_sizes, policy)
        self._handlers.update(
            {
                "access.decided": self._decided,
                "access.released": self._released,
                "access.refused": self._refused,
                "breakglass.justified": self._justified,
            }
        )

    # -- access ---------------------------------------------------------------------------------

    def _access(self, leaf_index: int, data: dict[str, Any]) -> tuple[str, int]:
        subject = data["subject"]
        if not isinstance(subject, str):
            raise RuleError("subject must be a string")
        at = self.state.last_at
        if at is None or not isinstance(data["at"], str):
            raise RuleError("an access event needs its instant")
        self.state.accesses_of(subject).append(leaf_index)
        return subject, at

    def _decided(self, leaf_index: int, data: dict[str, Any]) -> None:
        subject, at = self._access(leaf_index, data)
        request_id, requester, holder = data["request_id"], data["requester"], data["holder"]
        purpose, decision = data["purpose"], data["decision"]
        categories = tuple(sorted(data["categories"]))
        breakglass = data.get("breakglass") is True
        if decision not in ("permit", "deny"):
            raise RuleError(f"a decision is permit or deny, not {decision!r}")
        key = (data["at"][:10], requester, holder, purpose, decision, breakglass)
        self.state.activity[key] = self.state.activity.get(key, 0) + 1
        if decision == "deny":
            self.count["denials"] += 1
            self._references(leaf_index, subject, data.get("relied_on") or [])
            return
        self.count["permits"] += 1
        known = self.state.grants.get(request_id) or self.state.used.get(request_id)
        spent = self.state.spent.get(request_id)
        if known is not None or spent is not None:
            earlier = known[0] if known is not None else spent
            raise RuleError(f"request {request_id} was permitted already in leaf {earlier}")
        expires = self._expiry(leaf_index, at, data.get("grant_expires_at"))
        grant = (leaf_index, requester, holder, subject, categories, purpose, expires, breakglass)
        self.state.grants[request_id] = grant
        if breakglass:
            self._breakglass(leaf_index, data, subject, categories, at)
            self._references(leaf_index, subject, data.get("relied_on") or [])
            return
        why = self._uncovered(subject, requester, holder, categories, purpose, at, data)
        if why is not None:
            self.find(
                FindingCode.UNCOVERED_PERMIT,
                f"leaf {leaf_index} permits {requester} to take {', '.join(categories)} of "
                f"{subject[:12]}… from {holder} for {purpose}, but {why}",
                leaf_index,
            )

    def _expiry(self, leaf_index: int, at: int, logged: object) -> int:
        """The grant's expiry: the logged one, unless missing or beyond the policy's lifetime."""
        expires = optional_micros(logged)
        limit = at + self.policy.grant_ttl_us
        if expires is None or expires > limit + self.policy.clock_tolerance_us:
            self.find(
                FindingCode.GRANT_LIFETIME,
                f"leaf {leaf_index} issues a grant "
                + ("without an expiry" if expires is None else f"expiring at {iso(expires)}")
                + f", but a grant lives until {iso(limit)} at most",
                leaf_index,
            )
            return limit
        return expires

    def _uncovered(
        self,
        subject: str,
        requester: str,
        holder: str,
        categories: tuple[str, ...],
        purpose: str,
        at: int,
        data: dict[str, Any],
        *,
        decision: bool = True,
    ) -> str | None:
        """Why the consents logged so far do not cover the request at ``at`` (None: they do).

        No decision may be made about an erased resident (the service refuses to); a grant
        issued before the erasure is judged by the consents alone, as the service judges it.
        """
        erased = self.state.erased.get(subject)
        if erased is not None and decision:
            return f"the subject was erased in leaf {erased}"
        if not categories:
            return "it names no category (nothing can cover it)"
        unfit = self.parties(requester, holder)
        if unfit is not None:
            return unfit
        rtype = self.state.institutions[requester]
        verdict = judge(
            self.state.consents_of(subject), requester, rtype, holder, categories, purpose, at
        )
        if verdict.denied_by:
            return f"consent {', '.join(verdict.denied_by)} denies it"
        if not verdict.permit:
            return "no consent in force covers every category"
        relied = data.get("relied_on")
        if relied is None:
            return None  # a release that does not say what it relied on is judged by coverage
        if not relied:
            return "it relies on no consent"
        for entry in relied:
            version = verdict.permitted_by.get(entry["consent_id"])
            if version is None:
                return f"consent {entry['consent_id']}, relied on, does not permit it"
            if entry["leaf_index"] not in (version.leaf_index, version.revoke_leaf_index):
                return (
                    f"it relies on leaf {entry['leaf_index']} for consent "
                    f"{entry['consent_id']}, whose version in force is in leaf "
                    f"{version.leaf_index}"
                )
        return None

    def _references(self, leaf_index: int, subject: str, relied: list[dict[str, Any]]) -> None:
        """Each consent leaf ``relied`` names must be a record of that consent of ``subject``."""
        consents = self.state.consents_of(subject)
        for entry in relied:
            consent_id, ref = entry["consent_id"], entry["leaf_index"]
            history = consents.get(consent_id, ())
            if not any(ref in (v.leaf_index, v.revoke_leaf_index) for v in history):
                self.find(
                    FindingCode.BAD_REFERENCE,
                    f"leaf {leaf_index} relies on leaf {ref} as a record of consent "
                    f"{consent_id}, but the log has no such record there",
                    leaf_index,
                )

    def _breakglass(
        self,
        leaf_index: int,
        data: dict[str, Any],
        subject: str,
        categories: tuple[str, ...],
        at: int,
    ) -> None:
        self.count["breakglass"] += 1
        purpose = data["purpose"]
        why = self.parties(data["requester"], data["holder"])
        if not categories:
            why = "it names no category"
        elif purpose not in EMERGENCY_PURPOSES or not set(categories) <= EMERGENCY_CATEGORIES:
            why = "break-glass covers emergencies only"
        elif subject in self.state.erased:
            why = f"the subject was erased in leaf {self.state.erased[subject]}"
        if why is not None:
            self.find(
                FindingCode.BREAKGLASS_INVALID,
                f"leaf {leaf_index} is a break-glass permit for {purpose} and "
                f"{', '.join(categories)}: {why}",
                leaf_index,
            )
        logged = optional_micros(data.get("justify_by"))
        deadline = at + self.policy.justify_within_us
        if logged is None or logged > deadline + self.policy.clock_tolerance_us:
            self.find(
                FindingCode.BREAKGLASS_DEADLINE,
                f"leaf {leaf_index} is a break-glass permit "
                + ("without a deadline" if logged is None else f"due by {iso(logged)}")
                + f", but it must be justified by {iso(deadline)}",
                leaf_index,
            )
        else:
            deadline = min(logged, deadline)
        self.state.cases[data["request_id"]] = [
            leaf_index,
            data["at"],
            data["requester"],
            data["holder"],
            iso(deadline),
            None,
            None,
        ]

    def _justified(self, leaf_index: int, data: dict[str, Any]) -> None:
        request_id, at = data["request_id"], data["at"]
        case = self.state.cases.get(request_id)
        if case is None:
            raise RuleError(f"it justifies {request_id}, which is no break-glass permit")
        if data.get("decision_leaf_index", case[0]) != case[0]:
            self.find(
                FindingCode.BAD_REFERENCE,
                f"leaf {leaf_index} justifies request {request_id} as decided in leaf "
                f"{data['decision_leaf_index']}, but it was decided in leaf {case[0]}",
                case[0],
                leaf_index,
            )
        if case[5] is not None:
            return  # the first justification is the one that counts
        case[5], case[6] = at, leaf_index
        if micros(at) > micros(case[4]):
            self.find(
                FindingCode.BREAKGLASS_LATE,
                f"the break-glass permit in leaf {case[0]} was justified at {at} (leaf "
                f"{leaf_index}), after its deadline {case[4]}",
                case[0],
                leaf_index,
            )

    def _released(self, leaf_index: int, data: dict[str, Any]) -> None:
        self.count["releases"] += 1
        subject, at = self._access(leaf_index, data)
        request_id = data["request_id"]
        spent = self.state.spent.get(request_id)
        if spent is not None:
            self.find(
                FindingCode.GRANT_EXPIRED,
                f"leaf {leaf_index} redeems the grant of leaf {spent}, which expired over an "
                "hour before (unused or used)",
                spent,
                leaf_index,
            )
            return
        settled = self.state.used.get(request_id)
        if settled is not None:
            permit, first, _ = settled
            self.find(
                FindingCode.GRANT_REUSED,
                f"the grant of leaf {permit} was redeemed in leaf {first} and again in leaf "
                f"{leaf_index}",
                permit,
                first,
                leaf_index,
            )
            return
        grant = self.state.grants.get(request_id)
        if grant is None:
            self.find(
                FindingCode.UNCOVERED_RELEASE,
                f"leaf {leaf_index} releases data under request {request_id}, which no "
                "permit before it granted",
                leaf_index,
            )
            return
        permit, requester, holder, g_subject, categories, purpose, expires, breakglass = grant
        presented = (
            data["requester"],
            data["holder"],
            subject,
            tuple(sorted(data["categories"])),
            data["purpose"],
        )
        if presented != (requester, holder, g_subject, categories, purpose):
            self.find(
                FindingCode.UNCOVERED_RELEASE,
                f"leaf {leaf_index} releases under the grant of leaf {permit}, but not to the "
                "requester, from the holder, or of the subject, data or purpose it granted",
                permit,
                leaf_index,
            )
            return
        if data.get("decision_leaf_index", permit) != permit:
            self.find(
                FindingCode.BAD_REFERENCE,
                f"leaf {leaf_index} releases under request {request_id} as decided in leaf "
                f"{data['decision_leaf_index']}, but it was permitted in leaf {permit}",
                permit,
                leaf_index,
            )
        self._references(leaf_index, subject, data.get("relied_on") or [])
        del self.state.grants[request_id]  # settled: only what a second use would need is kept
        self.state.used[request_id] = (permit, leaf_index, expires)
        if expires is None or at >= expires:
            self.find(
                FindingCode.GRANT_EXPIRED,
                f"the grant of leaf {permit} was redeemed at {data['at']} (leaf {leaf_index}), "
                f"not before it expired",
                permit,
                leaf_index,
            )
            return
        if breakglass:
            unfit = self.parties(requester, holder)
            if unfit is not None:
                self.find(
                    FindingCode.UNCOVERED_RELEASE,
                    f"leaf {leaf_index} releases under the grant of leaf {permit}, but {unfit}",
                    permit,
                    leaf_index,
                )
            return
        why = self._uncovered(
            subject, requester, holder, categories, purpose, at, {}, decision=False
        )
        if why is not None:
            self.find(
                FindingCode.UNCOVERED_RELEASE,
                f"leaf {leaf_index} releases under the grant of leaf {permit}, but {why}",
                permit,
                leaf_index,
            )

    def _refused(self, leaf_index: int, data: dict[str, Any]) -> None:
        self.count["refusals"] += 1
        self._access(leaf_index, data)
        request_id = data["request_id"]
        if data.get("refusal") in CLAIMED_REFUSALS and request_id in self.state.grants:
            grant = self.state.grants.pop(request_id)
            self.state.used[request_id] = (grant[0], leaf_index, grant[6])
