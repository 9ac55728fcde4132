"""Access decisions and break-glass: the service behind the access routes (``redemption``
redeems their grants).

Every decision is logged, denials included, as ``access.decided`` through the group committer,
and answered only once its batch is committed; its projection row, and for a permit its grant,
are written in the same transaction, so a grant exists exactly when its decision is in the log.
The logged ``decision``, ``reason`` and ``relied_on`` are what ``decide`` says about the request
at ``at`` given the subject's logged consents, so an auditor replaying the leaf reaches them
again, except that a break-glass request the consents do not permit is logged with
``decision: "permit"`` and ``breakglass: true`` (``reason`` and ``relied_on`` still say what the
consents said).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Executable

from ledger.batcher import EventRows, GroupCommitter
from ledger.engine import RawReader
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
from .gate import SHARED_LOCK_SQL, SubjectGate, advisory_key
from .grants import (
    Grant,
    GrantStore,
    new_grant_token,
    token_hash,
)
from .identity import ResidentVault
from .institutions import InstitutionRegistry
from .records import Records
from .settings import ApiSettings

DECISION_THREADS = 8
"""Threads deciding at once in one process (a decision holds one for its reads only)."""

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


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A decision ready to log: its event, and for a permit the grant's secret and row."""

    event: Event
    token: str | None
    grant: EventRows | None


_Work = tuple[dict[str, Any], asyncio.AbstractEventLoop, "asyncio.Future[int]", list[_Prepared]]


def _fail(future: asyncio.Future[int], exception: BaseException) -> None:
    if not future.done():
        future.set_exception(exception)


class AccessService:
    """Decides and logs access requests (break-glass included); ``redemption`` redeems their
    grants through it."""

    def __init__(
        self,
        committer: GroupCommitter,
        records: Records,
        grants: GrantStore,
        institutions: InstitutionRegistry,
        vault: ResidentVault,
        *,
        gate: SubjectGate,
        grant_ttl: timedelta,
        justify_within: timedelta,
    ) -> None:
        self.gate = gate
        self._postgresql = records.store.engine.dialect.name == "postgresql"
        self.committer = committer
        self.records = records
        self.grants = grants
        self.institutions = institutions
        self.vault = vault
        self.grant_ttl = grant_ttl
        self.justify_within = justify_within
        # A decision's two reads are indexed lookups in the process on SQLite: done on the
        # event loop, each costs less than a hand-off to a thread and back (and the GIL
        # switches those bring). On PostgreSQL each read is a round trip, which would hold up
        # every request on the loop: there decisions are read and decided on the service's
        # threads. Neither waits for its commit, so a few threads serve any number in flight.
        self._inline = records.store.engine.dialect.name == "sqlite"
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve_decisions, name=f"decide-{n}", daemon=True)
            for n in range(0 if self._inline else DECISION_THREADS)
        ]
        for thread in self._threads:
            thread.start()

    async def decide_async(self, **request: Any) -> Decided:
        """``request_access`` for the event loop: decided (on the loop, or on one of the
        service's threads) and queued for the committer; the loop hears of the commit once per
        batch, not once per decision."""
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[int] = loop.create_future()
        if self._inline:
            decision = self._queued(self._prepare(**request), loop, committed)
        else:
            prepared: list[_Prepared] = []
            self._work.put((request, loop, committed, prepared))
        leaf_index = await committed
        if not self._inline:
            decision = prepared[0]
        return Decided(leaf_index, decision.event, decision.token)

    def _queued(
        self, decision: _Prepared, loop: asyncio.AbstractEventLoop, committed: asyncio.Future[int]
    ) -> _Prepared:
        """Queue ``decision``'s event, its projection and grant for the group committer."""
        encoded = self.committer.ledger.encode("access.decided", decision.event)
        rows = self._rows("access.decided", decision.event, decision.grant)
        self.committer.submit_settling(loop, committed, encoded, rows)
        return decision

    def _decide_on_thread(
        self,
        request: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        committed: asyncio.Future[int],
        prepared: list[_Prepared],
    ) -> None:
        try:
            decision = self._prepare(**request)
            prepared.append(decision)  # before the commit can settle ``committed``
            self._queued(decision, loop, committed)
        except BaseException as exc:  # the loop's caller must hear of it, whatever it is
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_fail, committed, exc)

    def _serve_decisions(self) -> None:
        while (item := self._work.get()) is not None:
            self._decide_on_thread(*item)

    def close(self) -> None:
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            thread.join()

    @classmethod
    def open(
        cls,
        store: LedgerStore,
        committer: GroupCommitter,
        records: Records,
        institutions: InstitutionRegistry,
        vault: ResidentVault,
        settings: ApiSettings,
        gate: SubjectGate,
    ) -> AccessService:
        """The service on ``store``'s database, creating its tables on first use; ``gate`` is
        the one consent changes hold (``consents.SubjectLocks.gate``)."""
        return cls(
            committer,
            records,
            GrantStore.open(store),
            institutions,
            vault,
            gate=gate,
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

    @contextmanager
    def consents_of(self, subject: str) -> Iterator[RawReader]:
        """A read transaction with no change of ``subject``'s consents under way (``gate``):
        what a decision stamped before it reads is still in force at its time."""
        with self.gate.reading(subject), self.records.store.raw_read() as reader:
            if self._postgresql:  # and none in another worker
                reader.rows(SHARED_LOCK_SQL, [advisory_key(subject)])
            yield reader

    def request_access(self, **request: Any) -> Decided:
        """Decide, log, and for a permit issue a grant. Malformed requests are refused unlogged."""
        decision = self._prepare(**request)
        leaf_index = self.log("access.decided", decision.event, also=decision.grant)
        return Decided(leaf_index, decision.event, decision.token)

    def _prepare(
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
    ) -> _Prepared:
        """The decision's event to log, and for a permit its grant's secret and row."""
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
        with self.consents_of(subject) as reader:
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
            return _Prepared(event, None, None)
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

        return _Prepared(event, token, grant)


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
