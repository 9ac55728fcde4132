"""The lawfulness replay: every verified leaf, in log order, judged by ``auditor.rules``.

Each leaf updates the ``ReplayState`` (consents, institutions, grants, break-glass cases) and
is checked against what came before it in the log:

* a permit (not break-glass) must be covered by the subject's consents at its instant, for a
  registered requester of the type it was registered with, and the consents it says it relied
  on must be records of those consents that permit it;
* a break-glass permit must be for the emergency purpose and emergency categories only, and
  be justified by its deadline (``justify_by``, as the decision recorded it);
* a release must redeem a grant a permit issued, to its requester and holder, for its subject,
  categories and purpose, once, before the grant expired, and (unless break-glass) still be
  covered by the consents at the release's instant;
* a leaf that is not a known event, or lacks what its kind carries, is a ``bad-event``.

Guardian consents carry a commitment to the lapse date; ``Openings`` (from the regulator's
endpoint) open it. A commitment that cannot be opened leaves the consent without a lapse and is
counted as unverifiable; an opening that does not match its commitment is a finding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

from .findings import FindingCode
from .replay_state import ReplayState
from .rules import (
    EMERGENCY_CATEGORIES,
    EMERGENCY_PURPOSES,
    RuleError,
    Version,
    judge,
    micros,
    midnight,
    optional_micros,
    rule_of,
)

#: (consent_id, version) -> (lapse date, ISO; salt)
Openings = Mapping[tuple[str, int], tuple[str, bytes]]

CONSENT_KINDS: Final = frozenset({"consent.granted", "consent.narrowed", "consent.revoked"})
#: A refusal code the service logs after it claimed the grant: the grant is used up.
CLAIMED_REFUSALS: Final = frozenset({"consent-no-longer-covers"})


class Replay:
    """Applies leaves to ``state`` in order; findings go into ``state.findings``."""

    def __init__(
        self,
        state: ReplayState,
        openings: Openings | None = None,
        anchored_sizes: frozenset[int] = frozenset(),
    ) -> None:
        self.state = state
        self.openings: Openings = openings or {}
        self.anchored_sizes = anchored_sizes
        self.count = state.counts
        self._handlers = {
            "consent.granted": self._consent,
            "consent.narrowed": self._consent,
            "consent.revoked": self._consent,
            "access.decided": self._decided,
            "access.released": self._released,
            "access.refused": self._refused,
            "breakglass.justified": self._justified,
            "institution.registered": self._institution,
            "institution.revoked": self._ignore,
            "subject.erased": self._erased,
        }

    @property
    def tree_size(self) -> int:
        return self.state.tree_size

    def apply(self, leaf_index: int, leaf_data: bytes) -> None:
        """Replay one leaf; it must be the next one (``leaf_index == tree_size``)."""
        if leaf_index != self.state.tree_size:
            raise ValueError(f"leaf {leaf_index} replayed after {self.state.tree_size} leaves")
        self.state.tree_size = leaf_index + 1
        self.count["events"] += 1
        try:
            value = orjson.loads(leaf_data)
            kind, data = value["kind"], value["data"]
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            if handler is None or not isinstance(data, dict) or len(value) != 2:
                raise RuleError(f"not a known event kind: {str(kind)[:40]!r}")
            at = data.get("at")
            if isinstance(at, str):
                self.state.last_at = micros(at)  # parsed once: the handlers read it here
            handler(leaf_index, data)
        except (RuleError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            message = f"leaf {leaf_index} is not a valid event: {type(exc).__name__}: {exc}"
            self.find(FindingCode.BAD_EVENT, message, leaf_index)
        if leaf_index + 1 in self.anchored_sizes and self.state.last_at is not None:
            self.state.anchored_event_time[leaf_index + 1] = self.state.last_at

    def find(self, code: FindingCode, message: str, *leaf_indices: int) -> None:
        self.state.findings.append((str(code), message, tuple(leaf_indices)))

    # -- consents and parties -------------------------------------------------------------------

    def _consent(self, leaf_index: int, data: dict[str, Any]) -> None:
        body = data["consent"]
        consent_id, subject, number = body["consent_id"], body["subject"], body["version"]
        if not isinstance(consent_id, str) or not isinstance(subject, str):
            raise RuleError("consent_id and subject must be strings")
        if type(number) is not int or number < 1:
            raise RuleError(f"a consent version must be a positive integer, not {number!r}")
        known = self.state.consent_subject.setdefault(consent_id, subject)
        if known != subject:
            raise RuleError(f"consent {consent_id} was logged for another subject before")
        history = self.state.consents_of(subject, create=True).setdefault(consent_id, [])
        revoked = optional_micros(body.get("revoked_at"))
        if revoked is not None:
            for n, version in enumerate(history):
                if version.version == number:
                    history[n] = version._replace(revoked=revoked, revoke_leaf_index=leaf_index)
                    return
        version = Version(
            version=number,
            leaf_index=leaf_index,
            granted=micros(body["granted_at"]),
            revoked=revoked,
            revoke_leaf_index=None if revoked is None else leaf_index,
            lapse=self._lapse(leaf_index, consent_id, number, body.get("guardian_authority_ends")),
            rule=rule_of(body, root=True),
        )
        if history and history[-1].version >= number:
            raise RuleError(f"consent {consent_id} version {number} is not after the last one")
        history.append(version)

    def _lapse(self, leaf_index: int, consent_id: str, number: int, ends: object) -> int | None:
        if ends is None:
            return None
        if isinstance(ends, str):
            return midnight(ends)
        committed = ends.get("sha256") if isinstance(ends, dict) else None
        if not isinstance(committed, str):
            raise RuleError("guardian_authority_ends is neither a date nor a commitment")
        opening = self.openings.get((consent_id, number))
        if opening is None:
            self.count["unverifiable_guardian_consents"] += 1
            return None
        day, salt = opening
        if hashlib.sha256(salt + day.encode()).hexdigest() != committed:
            self.count["unverifiable_guardian_consents"] += 1
            self.find(
                FindingCode.LAPSE_MISMATCH,
                f"the lapse date the service opens for consent {consent_id} version {number} "
                f"({day}) does not match the commitment logged in leaf {leaf_index}",
                leaf_index,
            )
            return None
        return midnight(day)

    def _institution(self, leaf_index: int, data: dict[str, Any]) -> None:
        institution, kind = data["institution_id"], data["institution_type"]
        if not isinstance(institution, str) or not isinstance(kind, str):
            raise RuleError("institution_id and institution_type must be strings")
        self.state.institutions.setdefault(institution, kind)

    def _erased(self, leaf_index: int, data: dict[str, Any]) -> None:
        self.state.erased.setdefault(str(data["subject"]), leaf_index)

    def _ignore(self, leaf_index: int, data: dict[str, Any]) -> None:
        pass

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
        if known is not None:
            raise RuleError(f"request {request_id} was permitted already in leaf {known[0]}")
        expires = optional_micros(data.get("grant_expires_at"))
        grant = (leaf_index, requester, holder, subject, categories, purpose, expires, breakglass)
        self.state.grants[request_id] = grant
        if breakglass:
            self._breakglass(leaf_index, data, categories)
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
        rtype = self.state.institutions.get(requester)
        if rtype is None:
            return f"no institution.registered leaf precedes it for {requester}"
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
        self, leaf_index: int, data: dict[str, Any], categories: tuple[str, ...]
    ) -> None:
        self.count["breakglass"] += 1
        purpose = data["purpose"]
        if purpose not in EMERGENCY_PURPOSES or not set(categories) <= EMERGENCY_CATEGORIES:
            self.find(
                FindingCode.BREAKGLASS_INVALID,
                f"leaf {leaf_index} is a break-glass permit for {purpose} and "
                f"{', '.join(categories)}: break-glass covers emergencies only",
                leaf_index,
            )
        justify_by = data.get("justify_by")
        if justify_by is not None:
            micros(justify_by)
        self.state.cases[data["request_id"]] = [
            leaf_index,
            data["at"],
            data["requester"],
            data["holder"],
            justify_by,
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
        if case[4] is not None and micros(at) > micros(case[4]):
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
                "permit before it granted (or whose grant expired over an hour before)",
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
