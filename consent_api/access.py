"""Access decisions, grant redemption and break-glass: the service behind the access routes.

Every decision is logged, denials included, as ``access.decided`` through the group committer,
durable when ``append`` returns; its projection row, and for a permit its grant, are written in
the same transaction, so a grant exists exactly when its decision is in the log. The logged
``decision``, ``reason`` and ``relied_on`` are what ``decide`` says about the request at ``at``
given the subject's logged consents, so an auditor replaying the leaf reaches them again,
except that a break-glass request the consents do not permit is logged with ``decision:
"permit"`` and ``breakglass: true`` (``reason`` and ``relied_on`` still say what the consents
said).

A redemption is logged as ``access.released``; every refusal of one as ``access.refused`` with
its ``refusal`` code, before the problem response goes out; the grant's outcome is settled in
the same transaction. Neither event holds the token.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NoReturn

from sqlalchemy import Executable

from ledger.batcher import EventRows, GroupCommitter
from ledger.store import LedgerStore

from .domain.consent import Consent
from .domain.decide import AccessRequest, Decision, decide, records_in_force
from .domain.rules import Reason
from .domain.vocab import (
    EMERGENCY_CATEGORIES,
    EMERGENCY_PURPOSES,
    Category,
    InstitutionType,
    Purpose,
)
from .errors import UnprocessableError
from .grants import (
    Claim,
    ConsentWithdrawnError,
    Grant,
    GrantExpiredError,
    GrantMismatchError,
    GrantRedeemedError,
    GrantRefusedError,
    GrantStore,
    GrantWrongPartyError,
    UnknownGrantError,
    grant_ref,
    new_grant_token,
    token_hash,
)
from .identity import ResidentVault
from .institutions import InstitutionRegistry
from .records import Records
from .settings import ApiSettings

DECISION_THREADS = 64
"""Decisions in flight at once in one process (each holds a thread until its commit)."""

Clock = Callable[[], datetime]
Event = dict[str, Any]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def get_clock() -> Clock:
    """The service's clock, a dependency so that tests can move time (a coroutine, so that
    FastAPI does not send it to its thread pool)."""
    return utc_now


def instant(at: datetime) -> str:
    """An instant as the log writes it: UTC, microseconds (decisions replay exactly), ``Z``."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def decision_of(event: Event) -> tuple[AccessRequest, Decision]:
    """The request and the consents' decision an ``access.decided`` event records."""
    request = AccessRequest(
        requester=event["requester"],
        requester_type=InstitutionType(event["requester_type"]),
        holder=event["holder"],
        subject=event["subject"],
        categories=frozenset(Category(c) for c in event["categories"]),
        purpose=Purpose(event["purpose"]),
        at=datetime.fromisoformat(event["at"]),
    )
    decision = Decision(
        decision=event["decision"],
        relied_on=tuple(r["consent_id"] for r in event["relied_on"]),
        reason=Reason(event["reason"]),
    )
    return request, decision


@dataclass(frozen=True, slots=True)
class Logged:
    """An event as it was logged: its leaf and its data."""

    leaf_index: int
    event: Event


@dataclass(frozen=True, slots=True)
class Decided(Logged):
    grant_token: str | None
    """The grant's secret, for the requester only; never stored, never logged."""


class AccessService:
    """Decides and logs access requests (break-glass included) and redeems their grants."""

    def __init__(
        self,
        committer: GroupCommitter,
        records: Records,
        grants: GrantStore,
        institutions: InstitutionRegistry,
        vault: ResidentVault,
        *,
        grant_ttl: timedelta,
        justify_within: timedelta,
    ) -> None:
        self.committer = committer
        self.records = records
        self.grants = grants
        self.institutions = institutions
        self.vault = vault
        self.grant_ttl = grant_ttl
        self.justify_within = justify_within
        # Decisions run here, each waiting for its group commit: as many at once as the
        # committer should batch. (asyncio's executor hand-off costs a fraction of anyio's
        # thread pool's, which the rest of the API uses.)
        self._threads = ThreadPoolExecutor(DECISION_THREADS, thread_name_prefix="decide")

    async def decide_in_thread(self, **request: Any) -> Decided:
        """``request_access`` on one of the service's decision threads, awaited."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, partial(self.request_access, **request))

    def close(self) -> None:
        self._threads.shutdown(wait=True)

    @classmethod
    def open(
        cls,
        store: LedgerStore,
        committer: GroupCommitter,
        records: Records,
        institutions: InstitutionRegistry,
        vault: ResidentVault,
        settings: ApiSettings,
    ) -> AccessService:
        """The service on ``store``'s database, creating its tables on first use."""
        return cls(
            committer,
            records,
            GrantStore.open(store),
            institutions,
            vault,
            grant_ttl=timedelta(seconds=settings.grant_ttl),
            justify_within=timedelta(seconds=settings.breakglass_justify_within),
        )

    def log(self, kind: str, event: Event, also: EventRows | None = None) -> int:
        """Append with its projection, and ``also`` those rows, in one transaction (durable on
        return)."""
        return self.committer.append(kind, event, rows=self._rows(kind, event, also))

    def _rows(self, kind: str, event: Event, also: EventRows | None) -> EventRows:
        projection = self.records.rows_of(kind, event)

        def rows(leaf_index: int) -> list[tuple[Executable, dict[str, Any]]]:
            written = [] if projection is None else list(projection(leaf_index))
            if also is not None:
                written += also(leaf_index)
            return written

        return rows

    # -- decisions -----------------------------------------------------------------------------

    def request_access(
        self,
        *,
        requester: str,
        requester_type: InstitutionType,
        subject: str,
        holder: str,
        categories: frozenset[Category],
        purpose: Purpose,
        emergency: bool,
        now: datetime,
    ) -> Decided:
        """Decide, log, and for a permit issue a grant. Malformed requests are refused unlogged."""
        if emergency and purpose not in EMERGENCY_PURPOSES:
            raise UnprocessableError(f"break-glass needs an emergency purpose, not {purpose}")
        if emergency and not categories <= EMERGENCY_CATEGORIES:
            others = ", ".join(sorted(categories - EMERGENCY_CATEGORIES))
            raise UnprocessableError(f"break-glass covers emergency categories only, not {others}")
        if holder == requester:
            raise UnprocessableError("the requester cannot be the holder of the data")
        known = self.institutions.get(holder)
        if known is None or not known.active:
            raise UnprocessableError(f"the holder {holder} is not an active institution")
        # Either read may see a later state than the other: a resident's consent rows are only
        # ever added, and a key only deleted (erased), so no mix of the two is unsafe.
        with self.records.store.raw_read() as reader:
            registered = self.vault.has_key(subject, reader)
            history = self.records.consent_history_raw(subject, reader)
        if not registered:
            self.vault.ensure_registered(subject)  # raises, saying why
        request = AccessRequest(
            requester=requester,
            requester_type=requester_type,
            holder=holder,
            subject=subject,
            categories=categories,
            purpose=purpose,
            at=now,
        )
        decision = decide(request, [consent for _, consent in history])
        breakglass = emergency and decision.decision == "deny"
        permitted = decision.decision == "permit" or breakglass
        request_id = uuid.uuid4().hex
        event: Event = {
            "request_id": request_id,
            **request.model_dump(mode="json"),
            "decision": "permit" if permitted else "deny",
            "reason": decision.reason.value,
            "relied_on": relied_on(history, request, decision.relied_on),
            "at": instant(now),
            "breakglass": breakglass,
        }
        if breakglass:
            event["justify_by"] = instant(now + self.justify_within)
        expires_at = now + self.grant_ttl
        if not permitted:
            return Decided(self.log("access.decided", event), event, None)
        event["grant_expires_at"] = instant(expires_at)
        token = new_grant_token()

        def grant(leaf_index: int) -> list[tuple[Executable, dict[str, Any]]]:
            issued = Grant(
                request_id=request_id,
                token_hash=token_hash(token),
                requester=requester,
                requester_type=requester_type,
                holder=holder,
                subject=subject,
                categories=categories,
                purpose=purpose,
                breakglass=breakglass,
                decision_leaf_index=leaf_index,
                issued_at=now.timestamp(),
                expires_at=expires_at.timestamp(),
            )
            return [self.grants.issue_row(issued)]

        return Decided(self.log("access.decided", event, also=grant), event, token)

    # -- redemption ----------------------------------------------------------------------------

    def redeem(
        self,
        *,
        holder: str,
        token: str,
        requester: str,
        subject: str,
        categories: frozenset[Category],
        purpose: Purpose,
        now: datetime,
    ) -> Logged:
        """Release under a grant presented by ``holder``, or log the refusal and raise it."""
        hashed = token_hash(token)
        grant = self.grants.get(hashed)
        if grant is None:
            presented = {
                "request_id": "",
                "subject": subject,
                "requester": requester,
                "holder": holder,
                "categories": sorted(categories),
                "purpose": purpose.value,
                "grant_ref": grant_ref(hashed),
            }
            self._refuse(UnknownGrantError("no grant has this token"), presented, now)
        event: Event = {
            "request_id": grant.request_id,
            "subject": grant.subject,
            "requester": grant.requester,
            "holder": holder,
            "categories": sorted(grant.categories),
            "purpose": grant.purpose.value,
            "grant_ref": grant.ref,
            "decision_leaf_index": grant.decision_leaf_index,
            "breakglass": grant.breakglass,
        }
        if holder != grant.holder or requester != grant.requester:
            wrong = GrantWrongPartyError("the grant was not issued to this holder and requester")
            self._refuse(wrong, {**event, "grant_holder": grant.holder}, now)
        if (subject, categories, purpose) != (grant.subject, grant.categories, grant.purpose):
            mismatch = GrantMismatchError("the grant covers another subject, data or purpose")
            self._refuse(mismatch, event, now)
        claim = self.grants.claim(hashed, now.timestamp())
        if claim is Claim.REDEEMED:
            self._refuse(GrantRedeemedError("the grant was already redeemed"), event, now)
        if claim is Claim.EXPIRED:
            self._refuse(GrantExpiredError("the grant has expired"), event, now)
        relied: list[Event] = []
        if not grant.breakglass:  # an emergency permit never rested on consent
            request = AccessRequest(
                requester=grant.requester,
                requester_type=grant.requester_type,
                holder=grant.holder,
                subject=grant.subject,
                categories=grant.categories,
                purpose=grant.purpose,
                at=now,
            )
            history = self.records.consent_history(grant.subject)
            decision = decide(request, [consent for _, consent in history])
            relied = relied_on(history, request, decision.relied_on)
            if decision.decision != "permit":
                withdrawn = ConsentWithdrawnError(
                    f"the consents no longer permit this request ({decision.reason})"
                )
                event.update(reason=decision.reason.value, relied_on=relied)
                self._refuse(withdrawn, event, now, settle=grant.request_id)
        event.update(relied_on=relied, at=instant(now))
        leaf_index = self.log(
            "access.released", event, also=_settling(grant.request_id, "released")
        )
        return Logged(leaf_index, event)

    def _refuse(
        self, error: GrantRefusedError, event: Event, now: datetime, *, settle: str | None = None
    ) -> NoReturn:
        logged = {**event, "at": instant(now), "refusal": error.refusal}
        also = None if settle is None else _settling(settle, "refused")
        leaf_index = self.log("access.refused", logged, also=also)
        error.extensions.update(leaf_index=leaf_index, request_id=event["request_id"] or None)
        raise error


def _settling(request_id: str, outcome: str) -> EventRows:
    """The grant's outcome, settled in the transaction that logs it."""
    return lambda leaf_index: [GrantStore.settle_row(request_id, outcome, leaf_index)]


def relied_on(
    history: Sequence[tuple[int, Consent]], request: AccessRequest, consent_ids: Sequence[str]
) -> list[Event]:
    """Each consent id with the leaf of the version ``decide`` read at the request's instant."""
    if not consent_ids:
        return []
    chosen = {
        consent.consent_id: consent
        for consent in records_in_force(
            (consent for _, consent in history), request.subject, request.at
        )
    }
    relied = []
    for consent_id in consent_ids:
        version = chosen[consent_id]
        leaf_index = next(leaf for leaf, consent in history if consent == version)
        relied.append({"consent_id": consent_id, "leaf_index": leaf_index})
    return relied
