"""A platform's log, fabricated fast for the audit benchmark, in the service's exact event shapes.

The events are built by the service's own code where it decides something: consents are the
domain ``Consent`` model logged through ``LapseCommitments.to_leaf``; every access decision is
``decide`` over the subject's logged consents, with ``relied_on`` as the service computes it;
a release re-decides at its own instant; a break-glass request is one the consents deny, for an
emergency purpose and categories, justified (a salted commitment) well before its deadline. So
a replay of the consents finds every event lawful: permits only where a consent covers them,
denials logged, no overdue justification. Only the HTTP round trips, token checks and
projection rows are skipped: none of them is in the log.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent_api.access import instant, relied_on
from consent_api.breakglass import COMMITMENT_SCHEME, commit
from consent_api.domain.consent import RESIDENT, Consent, Grantee, revoke
from consent_api.domain.decide import AccessRequest, decide
from consent_api.domain.vocab import Category, InstitutionType, Purpose
from consent_api.grants import grant_ref, token_hash
from consent_api.institutions import thumbprint
from consent_api.lapse import LapseCommitments

Event = tuple[str, dict[str, Any]]

START = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
SPAN = timedelta(days=14)  # the events of a run are spread over two weeks, for daily charts
MAX_STEP = timedelta(seconds=60)
GRANT_TTL = timedelta(seconds=300)  # the service's defaults
JUSTIFY_WITHIN = timedelta(seconds=86_400)
JUSTIFY_AFTER = timedelta(hours=2)
RECORDS = [Category.LAB_RESULTS, Category.IMAGING, Category.PRESCRIPTIONS]
RECORDS += [Category.DISCHARGE_SUMMARIES]
EMERGENCY = [Category.EMERGENCY_CHEST_PAIN, Category.EMERGENCY_STROKE, Category.EMERGENCY_TRAUMA]
PURPOSES = [Purpose.TREATMENT, Purpose.REFERRAL, Purpose.REMOTE_CONSULTATION]
PURPOSES += [Purpose.FAMILY_DOCTOR, Purpose.RESEARCH]
TYPES = [InstitutionType.HOSPITAL, InstitutionType.CLINIC, InstitutionType.FAMILY_DOCTOR_TEAM]


def _iso(at: datetime) -> str:
    """How the consent service writes a consent change's instant (``consents._iso``)."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class World:
    """Institutions, residents and their consents; ``take(n)`` yields the next ``n`` events.

    ``planned`` is the number of events the whole run will take (it sets the pace of the
    clock, so that a large run spans two weeks); ``first_index`` the leaf index of the first.
    """

    def __init__(self, planned: int, *, first_index: int = 0, seed: int = 17) -> None:
        self.rng = random.Random(seed)
        self.position = first_index
        self.now = START
        # At most a minute between events: a release follows its permit well within the grant's
        # life (a replay finds a release after the grant expired, as it should).
        self.step = min(SPAN / max(planned, 1), MAX_STEP)
        self.lapse = LapseCommitments(b"bench-platform-secret")
        self.institutions = [(f"{t.value}-{n:02d}", t) for t in TYPES for n in range(1, 5)]
        residents = max(50, planned // 25)
        secret = b"bench-pseudonym-secret"
        self.subjects = [
            hmac.new(secret, f"resident-{n}".encode(), hashlib.sha256).hexdigest()
            for n in range(residents)
        ]
        self.history: dict[str, list[tuple[int, Consent]]] = {}
        self.consented: list[str] = []
        self.pending: deque[tuple[datetime, dict[str, Any], int]] = deque()  # break-glass
        self.started = False

    # -- the stream ----------------------------------------------------------------------------

    def take(self, count: int) -> Iterator[Event]:
        """The next ``count`` events; every break-glass among them is justified within them."""
        target = self.position + count
        if not self.started:
            self.started = True
            for institution_id, kind in self.institutions:
                if self.position < target:
                    yield self._emit(
                        "institution.registered", self._registration(institution_id, kind)
                    )
        while self.position < target:
            left = target - self.position
            if self.pending and (left <= len(self.pending) or self.now >= self.pending[0][0]):
                yield self._emit("breakglass.justified", self._justification())
                continue
            roll = self.rng.random()
            if roll < 0.004 and left > len(self.pending) + 1:
                yield from self._breakglass()
            elif roll < 0.01:
                revoked = self._revocation()
                if revoked is not None:
                    yield revoked
            elif roll < 0.08 or not self.history:
                yield self._grant()
            else:
                yield from self._request(room=left - len(self.pending))

    def _emit(self, kind: str, data: dict[str, Any]) -> Event:
        self.position += 1
        self.now += self.step
        return kind, data

    # -- institutions and consents -------------------------------------------------------------

    def _registration(self, institution_id: str, kind: InstitutionType) -> dict[str, Any]:
        key = Ed25519PrivateKey.from_private_bytes(
            hashlib.sha256(institution_id.encode()).digest()
        ).public_key()
        return {
            "institution_id": institution_id,
            "institution_type": kind.value,
            "key_thumbprint": thumbprint(key),
        }

    def _grant(self) -> Event:
        subject = self.rng.choice(self.subjects)
        rng = self.rng
        if rng.random() < 0.5:
            grantee = Grantee(institution_type=rng.choice(TYPES))
        else:
            grantee = Grantee(institution=rng.choice(self.institutions)[0])
        consent = Consent(
            consent_id=f"c-{rng.getrandbits(96):024x}",
            subject=subject,
            version=1,
            grantor=RESIDENT,
            grantee=grantee,
            categories=frozenset(rng.sample(RECORDS, rng.randint(1, len(RECORDS)))),
            purposes=frozenset(rng.sample(PURPOSES, rng.randint(1, 3))),
            granted_at=self.now,
        )
        return self._consent("consent.granted", consent)

    def _revocation(self) -> Event | None:
        subject = self.rng.choice(self.subjects)
        active = {c.consent_id: c for _, c in self.history.get(subject, [])}
        live = [c for c in active.values() if c.status == "active"]
        if not live:
            return None
        return self._consent("consent.revoked", revoke(self.rng.choice(live), self.now))

    def _consent(self, kind: str, consent: Consent) -> Event:
        if consent.subject not in self.history:
            self.consented.append(consent.subject)
        self.history.setdefault(consent.subject, []).append((self.position, consent))
        return self._emit(kind, {"consent": self.lapse.to_leaf(consent), "at": _iso(self.now)})

    # -- access --------------------------------------------------------------------------------

    def _covered(self) -> AccessRequest:
        """A request within one of a subject's consents (denied if it was revoked since)."""
        rng = self.rng
        subject = rng.choice(self.consented)
        _, consent = rng.choice(self.history[subject])
        grantee = consent.grantee
        assert grantee is not None
        if grantee.institution is not None:
            requester = grantee.institution
            kind = dict(self.institutions)[requester]
        else:
            requester, kind = rng.choice(
                [i for i in self.institutions if i[1] == grantee.institution_type]
            )
        holder = rng.choice([i for i, _ in self.institutions if i != requester])
        return AccessRequest(
            requester=requester,
            requester_type=kind,
            holder=holder,
            subject=subject,
            categories=frozenset(rng.sample(sorted(consent.categories), 1)),
            purpose=rng.choice(sorted(consent.purposes)),
            at=self.now,
        )

    def _access(self, categories: list[Category], purpose: Purpose) -> AccessRequest:
        (requester, kind), (holder, _) = self.rng.sample(self.institutions, 2)
        return AccessRequest(
            requester=requester,
            requester_type=kind,
            holder=holder,
            subject=self.rng.choice(self.subjects),
            categories=frozenset(categories),
            purpose=purpose,
            at=self.now,
        )

    def _request(self, room: int) -> Iterator[Event]:
        rng = self.rng
        if self.consented and rng.random() < 0.75:
            request = self._covered()
        else:
            request = self._access(rng.sample(RECORDS, rng.randint(1, 2)), rng.choice(PURPOSES))
        history = self.history.get(request.subject, [])
        decision = decide(request, [c for _, c in history])
        event = self._decided(request, decision.decision, decision.reason.value)
        event["relied_on"] = relied_on(history, request, decision.relied_on)
        if decision.decision == "permit":
            event["grant_expires_at"] = instant(self.now + GRANT_TTL)
        decided_at = self.position
        yield self._emit("access.decided", event)
        if decision.decision == "permit" and room > 1 and rng.random() < 0.8:
            yield self._emit("access.released", self._release(request, event, decided_at))

    def _decided(self, request: AccessRequest, decision: str, reason: str) -> dict[str, Any]:
        return {
            "request_id": uuid.UUID(int=self.rng.getrandbits(128), version=4).hex,
            **request.model_dump(mode="json"),
            "decision": decision,
            "reason": reason,
            "relied_on": [],
            "at": instant(self.now),
            "breakglass": False,
        }

    def _release(
        self, request: AccessRequest, decided: dict[str, Any], decided_at: int
    ) -> dict[str, Any]:
        at = self.now
        again = request.model_copy(update={"at": at})
        history = self.history.get(request.subject, [])
        decision = decide(again, [c for _, c in history])
        assert decision.decision == "permit", "nothing changes a subject's consents in between"
        return {
            "request_id": decided["request_id"],
            "subject": request.subject,
            "requester": request.requester,
            "holder": request.holder,
            "categories": decided["categories"],
            "purpose": request.purpose.value,
            "grant_ref": grant_ref(token_hash(f"token-{decided['request_id']}")),
            "decision_leaf_index": decided_at,
            "breakglass": False,
            "relied_on": relied_on(history, again, decision.relied_on),
            "at": instant(at),
        }

    def _breakglass(self) -> Iterator[Event]:
        request = self._access(self.rng.sample(EMERGENCY, 1), Purpose.EMERGENCY)
        history = self.history.get(request.subject, [])
        decision = decide(request, [c for _, c in history])
        if decision.decision == "permit":  # no consent here covers emergencies, but be safe
            return
        event = self._decided(request, "permit", decision.reason.value)
        event.update(
            relied_on=relied_on(history, request, decision.relied_on),
            breakglass=True,
            justify_by=instant(self.now + JUSTIFY_WITHIN),
            grant_expires_at=instant(self.now + GRANT_TTL),
        )
        self.pending.append((self.now + JUSTIFY_AFTER, event, self.position))
        yield self._emit("access.decided", event)

    def _justification(self) -> dict[str, Any]:
        _, decided, leaf_index = self.pending.popleft()
        salt = self.rng.randbytes(32)
        out = {key: decided[key] for key in ("request_id", "subject", "requester", "holder")}
        out.update(
            at=instant(self.now),
            justify_by=decided["justify_by"],
            late=self.now > datetime.fromisoformat(decided["justify_by"]),
            commitment=commit(f"emergency case {decided['request_id']}", salt).hex(),
            commitment_scheme=COMMITMENT_SCHEME,
            decision_leaf_index=leaf_index,
        )
        return out
