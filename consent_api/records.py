"""The service's projection of the log: consents and access decisions, by leaf index.

The log is the source of truth. Every change is appended first (durable), then projected into
these tables for queries; a projection row is keyed by its leaf index and written with
``ON CONFLICT DO NOTHING``, so replaying leaves (after a crash between the append and the
projection) is harmless. ``catch_up`` replays from the last mark at start-up. A service that
appends through the group committer hands it the projection rows instead (``rows_of``), and
they commit in the same transaction as their leaf.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Text, bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel

from ledger.batcher import EventRows
from ledger.events import decode_leaf
from ledger.log import Ledger
from ledger.store import LedgerStore

from .domain.consent import Consent

CONSENT_KINDS = frozenset({"consent.granted", "consent.narrowed", "consent.revoked"})
ACCESS_KINDS = frozenset(
    {"access.decided", "access.released", "access.refused", "breakglass.justified"}
)
PROJECTION_MARK = "projection:complete-to"

log = logging.getLogger(__name__)

ConsentRestorer = Callable[[dict[str, Any]], dict[str, Any] | None]


def _as_logged(body: dict[str, Any]) -> dict[str, Any] | None:
    return body


class ConsentRecord(SQLModel, table=True):
    """One logged version of a consent (granted, narrowed or revoked)."""

    __tablename__ = "consent_record"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    consent_id: str = Field(index=True)
    subject: str = Field(index=True)
    kind: str
    version: int
    body: str = Field(sa_column=Column(Text, nullable=False))


class AccessRecord(SQLModel, table=True):
    """One logged access event: a decision, a release, a refused redemption, a justification."""

    __tablename__ = "access_record"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str
    subject: str = Field(index=True)
    requester: str = Field(index=True)
    holder: str = Field(index=True)
    request_id: str = Field(index=True)
    at: str
    body: str = Field(sa_column=Column(Text, nullable=False))


_CONSENT = ConsentRecord.__table__  # type: ignore[attr-defined]
_ACCESS = AccessRecord.__table__  # type: ignore[attr-defined]
# Built once: every access decision reads it, and building a statement costs more than running it.
_HISTORY = (
    select(_CONSENT.c.leaf_index, _CONSENT.c.body)
    .where(_CONSENT.c.subject == bindparam("history_subject"))
    .order_by(_CONSENT.c.leaf_index)
)


class Records:
    """Reads and idempotent writes of the projection."""

    def __init__(self, store: LedgerStore, restore_consent: ConsentRestorer | None = None) -> None:
        self.store = store
        self._restore = restore_consent or _as_logged
        insert = postgresql_insert if store.engine.dialect.name == "postgresql" else sqlite_insert
        # One statement object per table: the group committer writes a batch's rows of one
        # statement with a single executemany.
        self._inserts = {
            table.name: insert(table).on_conflict_do_nothing() for table in (_CONSENT, _ACCESS)
        }

    @classmethod
    def open(cls, store: LedgerStore, restore_consent: ConsentRestorer | None = None) -> Records:
        """``restore_consent`` turns a consent as logged back into the full consent (it puts
        back what the leaf holds only a commitment to), or None to leave it unprojected."""
        store.create_schema(extra_tables=[_CONSENT, _ACCESS])
        return cls(store, restore_consent)

    def project(self, leaf_index: int, kind: str, data: dict[str, Any]) -> None:
        """Apply one leaf to the projection (a no-op for kinds it does not hold, or repeats).

        A leaf of a projected kind that this service did not write (another writer of the log,
        an older event shape) is skipped with a warning: the log holds it whatever the
        projection makes of it, and one odd leaf must not stop the service from starting.
        """
        rows = self.rows_of(kind, data, leaf_index)
        if rows is None:
            return
        with self.store.write() as conn:
            for statement, parameters in rows(leaf_index):
                conn.execute(statement, parameters)

    def rows_of(
        self, kind: str, data: dict[str, Any], leaf_index: int | None = None
    ) -> EventRows | None:
        """The projection of an event as rows to write given its leaf index (None: it has none).

        ``leaf_index``, when already known, only names the leaf in the warning about an odd one.
        """
        try:
            if kind in CONSENT_KINDS:
                restored = self._restore(data["consent"])
                if restored is None:
                    return None
                data = {**data, "consent": restored}
            row, table = _row(kind, data)
        except (KeyError, TypeError, ValueError) as exc:
            where = "an event" if leaf_index is None else f"leaf {leaf_index}"
            log.warning("%s (%s) has no projectable shape: %s", where, kind, exc)
            return None
        if table is None:
            return None
        statement = self._inserts[table.name]
        return lambda index: [(statement, {**row, "leaf_index": index})]

    def catch_up(self, ledger: Ledger, *, batch: int = 5000) -> int:
        """Project every leaf after the last mark; return how many leaves were read."""
        mark = int(self.store.get_meta(PROJECTION_MARK) or 0)
        size = ledger.tree_size()
        for start in range(mark, size, batch):
            for leaf in ledger.leaves(start, min(size, start + batch)):
                kind, data = decode_leaf(leaf.leaf_data)
                self.project(leaf.leaf_index, kind, data)
        self.store.set_meta(PROJECTION_MARK, str(size))
        return size - mark

    def mark_complete(self, tree_size: int) -> None:
        """Every leaf below ``tree_size`` is projected (said at a clean shutdown)."""
        self.store.set_meta(PROJECTION_MARK, str(tree_size))

    # -- consents ------------------------------------------------------------------------------

    def consent_history(
        self, subject: str, conn: Connection | None = None
    ) -> list[tuple[int, Consent]]:
        """Every logged version of every consent of ``subject``, in log order (read in
        ``conn``'s transaction if given)."""
        if conn is None:
            with self.store.read() as own:
                return self.consent_history(subject, own)
        rows = conn.execute(_HISTORY, {"history_subject": subject}).all()
        return [(int(leaf), Consent.model_validate_json(body)) for leaf, body in rows]

    def consent_versions(self, consent_id: str) -> list[tuple[int, Consent]]:
        query = select(_CONSENT.c.leaf_index, _CONSENT.c.body).where(
            _CONSENT.c.consent_id == consent_id
        )
        return self._consents(query.order_by(_CONSENT.c.leaf_index))

    def _consents(self, query: Any) -> list[tuple[int, Consent]]:
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return [(int(leaf), Consent.model_validate_json(body)) for leaf, body in rows]

    # -- access ----------------------------------------------------------------------------------

    def access_for(
        self, *, subject: str | None = None, party: str | None = None, request_id: str | None = None
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Access events about a subject, involving an institution, or of one request."""
        query = select(_ACCESS.c.leaf_index, _ACCESS.c.kind, _ACCESS.c.body)
        if subject is not None:
            query = query.where(_ACCESS.c.subject == subject)
        if party is not None:
            query = query.where((_ACCESS.c.requester == party) | (_ACCESS.c.holder == party))
        if request_id is not None:
            query = query.where(_ACCESS.c.request_id == request_id)
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(_ACCESS.c.leaf_index)).all()
        return [(int(leaf), str(kind), json.loads(body)) for leaf, kind, body in rows]

    def access_of_kinds(self, kinds: Iterable[str]) -> list[tuple[int, str, dict[str, Any]]]:
        """Access events of the given kinds, in log order (the break-glass review reads these)."""
        query = select(_ACCESS.c.leaf_index, _ACCESS.c.kind, _ACCESS.c.body).where(
            _ACCESS.c.kind.in_(sorted(set(kinds)))
        )
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(_ACCESS.c.leaf_index)).all()
        return [(int(leaf), str(kind), json.loads(body)) for leaf, kind, body in rows]


def latest_versions(history: Iterable[tuple[int, Consent]]) -> dict[str, tuple[int, Consent]]:
    """The last logged record of each consent id."""
    latest: dict[str, tuple[int, Consent]] = {}
    for leaf_index, consent in history:
        latest[consent.consent_id] = (leaf_index, consent)
    return latest


def _row(kind: str, data: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The projection row of one event but its leaf index, and its table (None: not projected)."""
    if kind in CONSENT_KINDS:
        consent = data["consent"]
        return {
            "consent_id": consent["consent_id"],
            "subject": consent["subject"],
            "kind": kind,
            "version": consent["version"],
            "body": json.dumps(consent, sort_keys=True),
        }, _CONSENT
    if kind in ACCESS_KINDS:
        return {
            "kind": kind,
            "subject": data["subject"],
            "requester": data.get("requester", ""),
            "holder": data.get("holder", ""),
            "request_id": data["request_id"],
            "at": data["at"],
            "body": json.dumps(data, sort_keys=True),
        }, _ACCESS
    return {}, None
