"""The replay's first half: reading each leaf, its clock, consents, institutions and erasures.

``ConsentReplay`` parses a leaf, checks its instant against the log order (an event may precede
one logged before it by the clock tolerance at most: a service that backdates a decision to
before a revocation it had already logged is caught here), dispatches it to its kind's handler
and keeps what later leaves are judged by. ``auditor.replay.Replay`` adds the access events.

A consent's effective times are the leaf's own: a revocation's ``revoked_at`` and a new
version's ``granted_at`` must be its leaf's ``at`` (within the tolerance), else a consent could
be revoked "in 2099" and stay in force. A new version must permit nothing the one before did
not (``auditor.widening``). Guardian consents carry a commitment to the lapse date; ``Openings``
(from the regulator's endpoint) open it. A commitment that cannot be opened leaves the consent
without a lapse, is counted as unverifiable and kept as pending (``ReplayState.pending``); an
opening that does not match its commitment is a finding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from .findings import FindingCode
from .policy import GRANT_RETENTION_US, PRUNE_EVERY_US, Policy
from .replay_state import ReplayState
from .rules import RuleError, Version, iso, micros, midnight, optional_micros, rule_of
from .widening import widening

#: (consent_id, version) -> (lapse date, ISO; salt)
Openings = Mapping[tuple[str, int], tuple[str, bytes]]
Handler = Callable[[int, dict[str, Any]], None]

CONSENT_KINDS: Final = frozenset({"consent.granted", "consent.narrowed", "consent.revoked"})


class ConsentReplay:
    """Applies leaves to ``state`` in order; findings go into ``state.findings``."""

    def __init__(
        self,
        state: ReplayState,
        openings: Openings | None = None,
        anchored_sizes: frozenset[int] = frozenset(),
        policy: Policy | None = None,
    ) -> None:
        self.state = state
        self.openings: Openings = openings or {}
        self.anchored_sizes = anchored_sizes
        self.policy = policy or Policy()
        self.count = state.counts
        self._handlers: dict[str, Handler] = {
            "consent.granted": self._consent,
            "consent.narrowed": self._consent,
            "consent.revoked": self._consent,
            "institution.registered": self._institution,
            "institution.key_rotated": self._rekeyed,
            "institution.revoked": self._deactivated,
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
                self._clock(leaf_index, micros(at))  # parsed once: the handlers read last_at
            handler(leaf_index, data)
        except (RuleError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            message = f"leaf {leaf_index} is not a valid event: {type(exc).__name__}: {exc}"
            self.find(FindingCode.BAD_EVENT, message, leaf_index)
        if leaf_index + 1 in self.anchored_sizes and self.state.last_at is not None:
            self.state.anchored_event_time[leaf_index + 1] = self.state.last_at

    def find(self, code: FindingCode, message: str, *leaf_indices: int) -> None:
        self.state.findings.append((str(code), message, tuple(leaf_indices)))

    def _clock(self, leaf_index: int, at: int) -> None:
        state = self.state
        state.last_at = at
        latest = state.latest_at
        if latest is not None and at < latest - self.policy.clock_tolerance_us:
            self.find(
                FindingCode.BACKDATED,
                f"leaf {leaf_index} is dated {iso(at)}, before leaf {state.latest_leaf} logged "
                f"earlier at {iso(latest)} (by more than the clock tolerance)",
                state.latest_leaf,
                leaf_index,
            )
        if latest is None or at > latest:
            state.latest_at, state.latest_leaf = at, leaf_index
            latest = at
        if state.next_prune is None or latest >= state.next_prune:
            state.prune_grants(latest - GRANT_RETENTION_US)
            state.next_prune = latest + PRUNE_EVERY_US

    def _on_time(self, leaf_index: int, what: str, instant: int) -> None:
        """``instant`` (an effective time the leaf logs) must be the leaf's own ``at``."""
        at = self.state.last_at
        if at is None:
            raise RuleError("the event needs its instant")
        if abs(instant - at) > self.policy.clock_tolerance_us:
            self.find(
                FindingCode.MISDATED,
                f"leaf {leaf_index} logs {what} {iso(instant)}, but the leaf is dated {iso(at)}"
                " (a change takes effect when it is logged)",
                leaf_index,
            )

    # -- consents -------------------------------------------------------------------------------

    def _consent(self, leaf_index: int, data: dict[str, Any]) -> None:
        body = data["consent"]
        consent_id, subject, number = body["consent_id"], body["subject"], body["version"]
        if not isinstance(consent_id, str) or not isinstance(subject, str):
            raise RuleError("consent_id and subject must be strings")
        if type(number) is not int or number < 1:
            raise RuleError(f"a consent version must be a positive integer, not {number!r}")
        if not isinstance(data.get("at"), str):
            raise RuleError("a consent event needs its instant")
        known = self.state.consent_subject.setdefault(consent_id, subject)
        if known != subject:
            raise RuleError(f"consent {consent_id} was logged for another subject before")
        history = self.state.consents_of(subject, create=True).setdefault(consent_id, [])
        revoked = optional_micros(body.get("revoked_at"))
        if revoked is not None:
            self._on_time(leaf_index, "a revocation at", revoked)
            for n, version in enumerate(history):
                if version.version == number:
                    history[n] = version._replace(revoked=revoked, revoke_leaf_index=leaf_index)
                    return
        ends = body.get("guardian_authority_ends")
        version = Version(
            version=number,
            leaf_index=leaf_index,
            granted=micros(body["granted_at"]),
            revoked=revoked,
            revoke_leaf_index=None if revoked is None else leaf_index,
            lapse=self._lapse(leaf_index, consent_id, number, ends),
            rule=rule_of(body, root=True),
        )
        if history and history[-1].version >= number:
            raise RuleError(f"consent {consent_id} version {number} is not after the last one")
        self._on_time(leaf_index, "a version granted at", version.granted)
        if history:
            grantor = body.get("grantor")
            renewal = isinstance(grantor, dict) and grantor.get("kind") == "resident"
            why = widening(history[-1], version, guardian=ends is not None, renewal=renewal)
            if why is not None:
                self.find(
                    FindingCode.WIDENING_NARROWING,
                    f"leaf {leaf_index} logs version {number} of consent {consent_id}, which "
                    f"permits more than version {history[-1].version} (leaf "
                    f"{history[-1].leaf_index}): {why}",
                    history[-1].leaf_index,
                    leaf_index,
                )
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
            self.state.pending[(consent_id, number)] = leaf_index
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

    # -- parties --------------------------------------------------------------------------------

    def _institution(self, leaf_index: int, data: dict[str, Any]) -> None:
        institution, kind = data["institution_id"], data["institution_type"]
        if not isinstance(institution, str) or not isinstance(kind, str):
            raise RuleError("institution_id and institution_type must be strings")
        self.state.institutions.setdefault(institution, kind)

    def _rekeyed(self, leaf_index: int, data: dict[str, Any]) -> None:
        institution = data["institution_id"]
        if institution not in self.state.institutions:
            raise RuleError(f"the key of {str(institution)[:40]!r}, never registered, is rotated")

    def _deactivated(self, leaf_index: int, data: dict[str, Any]) -> None:
        institution = data["institution_id"]
        if not isinstance(institution, str):
            raise RuleError("institution_id must be a string")
        self.state.deactivated.setdefault(institution, leaf_index)

    def _erased(self, leaf_index: int, data: dict[str, Any]) -> None:
        self.state.erased.setdefault(str(data["subject"]), leaf_index)

    def parties(self, requester: str, holder: str) -> str | None:
        """Why ``requester`` or ``holder`` may not take part in an access now (None: they may)."""
        for role, institution in (("requester", requester), ("holder", holder)):
            if institution not in self.state.institutions:
                return f"no institution.registered leaf precedes it for the {role} {institution}"
            gone = self.state.deactivated.get(institution)
            if gone is not None:
                return f"the {role} {institution} was deactivated in leaf {gone}"
        return None
