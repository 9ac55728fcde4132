"""Break-glass justifications: the text kept apart from the log, and the review of overdue cases.

A break-glass decision itself is made and logged by ``access.AccessService``; this module owns
what follows it.

A break-glass permit must be justified by its requester within a set time. The text may name
people and clinical facts, so it never becomes a leaf: the ``breakglass.justified`` event
carries only a commitment, SHA-256(salt || UTF-8 text) with a fresh 32-byte salt, and the text
and salt are stored in ``breakglass_justification`` so that a regulator can open the
commitment and check it against the log.

The review is computed from the projection of the log (``cases``: one row per decision flagged
``breakglass``, completed by its ``breakglass.justified`` event), never from this table, so it
agrees with the log; listing the late ones is an indexed query on that small table.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy import BigInteger, Column, Double, LargeBinary, Text, select
from sqlalchemy import exc as sa_exc
from sqlmodel import Field, SQLModel

from ledger.batcher import GroupCommitter
from ledger.store import LedgerStore

from .access import Event, Logged, instant
from .cases import BREAKGLASS_CASE
from .cases import BreakGlassCase as ProjectedCase
from .errors import ConflictError, ForbiddenError, NotFoundError
from .records import Records

SALT_BYTES: Final = 32
COMMITMENT_SCHEME: Final = "sha256(salt32||utf8)"
STALE_AFTER: Final = timedelta(minutes=5)
"""A justification kept but not marked logged for this long was left by a crash (a request
in flight appends within seconds), and is settled against the log."""


def commit(text: str, salt: bytes) -> bytes:
    """The commitment to a justification: SHA-256 of the salt followed by the UTF-8 text."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"the salt must have {SALT_BYTES} bytes")
    return hashlib.sha256(salt + text.encode("utf-8")).digest()


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


class JustificationRow(SQLModel, table=True):
    """A justification's text and salt, by request id; ``leaf_index`` once it is logged."""

    __tablename__ = "breakglass_justification"

    request_id: str = Field(sa_column=Column(Text, primary_key=True))
    text: str = Field(sa_column=Column(Text, nullable=False))
    salt: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    commitment: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    justified_at: float = Field(sa_column=Column(Double, nullable=False))
    leaf_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


_JUSTIFICATION = JustificationRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Justification:
    request_id: str
    text: str
    salt: bytes
    commitment: bytes
    justified_at: datetime
    leaf_index: int | None


class JustificationStore:
    """Justification texts on the ledger's database; one per break-glass request."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    @classmethod
    def open(cls, store: LedgerStore) -> JustificationStore:
        store.create_schema(extra_tables=[_JUSTIFICATION])
        return cls(store)

    def put(self, justification: Justification) -> None:
        """Keep a justification; ConflictError if the request has one already."""
        try:
            with self._store.write() as conn:
                conn.execute(
                    _JUSTIFICATION.insert().values(
                        request_id=justification.request_id,
                        text=justification.text,
                        salt=justification.salt,
                        commitment=justification.commitment,
                        justified_at=justification.justified_at.timestamp(),
                    )
                )
        except sa_exc.IntegrityError as exc:
            raise ConflictError(
                f"break-glass request {justification.request_id} is already justified"
            ) from exc

    def remove(self, request_id: str) -> None:
        """Undo a ``put`` whose event could not be logged (so the requester can try again)."""
        with self._store.write() as conn:
            conn.execute(
                _JUSTIFICATION.delete().where(
                    _JUSTIFICATION.c.request_id == request_id, _JUSTIFICATION.c.leaf_index.is_(None)
                )
            )

    def logged(self, request_id: str, leaf_index: int) -> None:
        with self._store.write() as conn:
            conn.execute(
                _JUSTIFICATION.update()
                .where(_JUSTIFICATION.c.request_id == request_id)
                .values(leaf_index=leaf_index)
            )

    def unlogged(self, before: datetime) -> list[str]:
        """Requests whose justification was kept before ``before`` and never marked logged."""
        with self._store.read() as conn:
            rows = conn.execute(
                select(_JUSTIFICATION.c.request_id).where(
                    _JUSTIFICATION.c.leaf_index.is_(None),
                    _JUSTIFICATION.c.justified_at < before.timestamp(),
                )
            ).all()
        return [str(row[0]) for row in rows]

    def get(self, request_id: str) -> Justification | None:
        with self._store.read() as conn:
            row = conn.execute(
                select(_JUSTIFICATION).where(_JUSTIFICATION.c.request_id == request_id)
            ).first()
        if row is None:
            return None
        return Justification(
            request_id=row.request_id,
            text=row.text,
            salt=bytes(row.salt),
            commitment=bytes(row.commitment),
            justified_at=datetime.fromtimestamp(row.justified_at, UTC),
            leaf_index=row.leaf_index,
        )


# -- review ----------------------------------------------------------------------------------


class CaseStatus(StrEnum):
    PENDING = "pending"
    """Not justified, and the deadline has not passed."""
    JUSTIFIED = "justified"
    OVERDUE = "overdue"
    """Not justified, and the deadline has passed."""
    JUSTIFIED_LATE = "justified-late"
    """Justified, but after the deadline: still a breach of the rule."""


LATE: Final = frozenset({CaseStatus.OVERDUE, CaseStatus.JUSTIFIED_LATE})


def status_of(case: ProjectedCase, now: datetime) -> CaseStatus:
    """Where a projected case stands at ``now``."""
    if case.justification_leaf_index is None:
        late = now > datetime.fromisoformat(case.justify_by)
        return CaseStatus.OVERDUE if late else CaseStatus.PENDING
    return CaseStatus.JUSTIFIED_LATE if case.justified_late else CaseStatus.JUSTIFIED


class BreakGlassService:
    """Takes justifications (text apart, commitment logged) and reviews the cases."""

    def __init__(
        self, committer: GroupCommitter, records: Records, justifications: JustificationStore
    ) -> None:
        self.committer = committer
        self.records = records
        self.justifications = justifications

    @classmethod
    def open(
        cls, store: LedgerStore, committer: GroupCommitter, records: Records
    ) -> BreakGlassService:
        service = cls(committer, records, JustificationStore.open(store))
        service.settle_unlogged(datetime.now(UTC))
        return service

    def settle_unlogged(self, now: datetime) -> None:
        """Settle justifications a crash left kept but not marked logged (older than
        ``STALE_AFTER``): logged if the log has the justification (its case is complete),
        else removed, so that the requester can justify again."""
        for request_id in self.justifications.unlogged(now - STALE_AFTER):
            self._settle(request_id)

    def _settle(self, request_id: str) -> None:
        with self.records.store.read() as conn:
            leaf_index = conn.execute(
                select(BREAKGLASS_CASE.c.justification_leaf_index).where(
                    BREAKGLASS_CASE.c.request_id == request_id
                )
            ).scalar()
        if leaf_index is None:
            self.justifications.remove(request_id)
        else:
            self.justifications.logged(request_id, int(leaf_index))

    def decided(self, request_id: str) -> Logged | None:
        """The ``access.decided`` event of a request, if there is one."""
        for leaf_index, kind, event in self.records.access_for(request_id=request_id):
            if kind == "access.decided":
                return Logged(leaf_index, event)
        return None

    def justify(self, *, request_id: str, requester: str, text: str, now: datetime) -> Logged:
        """Log a commitment to ``text`` as the justification of a break-glass request."""
        decided = self.decided(request_id)
        if decided is None:
            raise NotFoundError(f"no access request has the id {request_id}")
        if decided.event["requester"] != requester:
            raise ForbiddenError("only the requester can justify a break-glass request")
        if not decided.event.get("breakglass"):
            raise ConflictError(f"request {request_id} was not a break-glass request")
        kept = self.justifications.get(request_id)
        if kept is not None and kept.leaf_index is None and kept.justified_at < now - STALE_AFTER:
            self._settle(request_id)  # a crash's remnant (see settle_unlogged)
            kept = self.justifications.get(request_id)
        if kept is not None:
            raise ConflictError(f"break-glass request {request_id} is already justified")
        salt = new_salt()
        commitment = commit(text, salt)
        self.justifications.put(Justification(request_id, text, salt, commitment, now, None))
        event: Event = {
            key: decided.event[key] for key in ("request_id", "subject", "requester", "holder")
        }
        event.update(
            at=instant(now),
            justify_by=decided.event["justify_by"],
            late=now > datetime.fromisoformat(decided.event["justify_by"]),
            commitment=commitment.hex(),
            commitment_scheme=COMMITMENT_SCHEME,
            decision_leaf_index=decided.leaf_index,
        )
        try:
            # Projected in the append's own transaction (the case completed with it).
            leaf_index = self.committer.append(
                "breakglass.justified",
                event,
                rows=self.records.rows_of("breakglass.justified", event),
            )
        except Exception:
            self.justifications.remove(request_id)  # unlogged, it does not count
            raise
        self.justifications.logged(request_id, leaf_index)
        return Logged(leaf_index, event)

    def cases(
        self, now: datetime, *, after: int | None, limit: int, late_only: bool = False
    ) -> list[tuple[ProjectedCase, CaseStatus]]:
        """Up to ``limit`` break-glass cases after decision leaf ``after``, in log order, with
        where each stands at ``now``; ``late_only``: only the overdue and the justified late."""
        page = self.records.breakglass_page(
            after=after, limit=limit, late_at=now if late_only else None
        )
        return [(case, status_of(case, now)) for case in page]
