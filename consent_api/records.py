"""The service's projection of the log: consents and access decisions, by leaf index.

The log is the source of truth. Every change is appended first (durable), then projected into
these tables for queries; a projection row is keyed by its leaf index and written with
``ON CONFLICT DO NOTHING``, so replaying leaves (after a crash between the append and the
projection) is harmless. ``catch_up`` replays from the last mark at start-up. A service that
appends through the group committer hands it the projection rows instead (``rows_of``), and
they commit in the same transaction as their leaf.

Lists are read a page at a time, ``leaf_index > after ORDER BY leaf_index LIMIT n``, each from
an index that leads with the filtered column and ends with ``leaf_index``, so a page costs the
same however long the log. Break-glass decisions are also projected into ``breakglass_case``,
one row per case that its justification completes, so the review reads only those.

``PROJECTION_VERSION`` names the projection's shape: a database projected by an older version
(a table or index added since) is replayed from the first leaf once at start-up, every write
being idempotent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Text,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel

from ledger.batcher import EventRows
from ledger.engine import RawReader
from ledger.events import decode_leaf
from ledger.log import Ledger
from ledger.store import LedgerStore

from .cases import (
    BREAKGLASS_CASE,
    CASE_INDEXES,
    JUSTIFY_CASE,
    BreakGlassCase,
    case_row,
    cases_page,
)
from .domain.consent import Consent

CONSENT_KINDS = frozenset({"consent.granted", "consent.narrowed", "consent.revoked"})
ACCESS_KINDS = frozenset(
    {"access.decided", "access.released", "access.refused", "breakglass.justified"}
)
PROJECTION_MARK = "projection:complete-to"
PARSED_CONSENTS: Final = 100_000
"""How many parsed consent versions a process keeps (the oldest parsed is dropped first)."""
PROJECTION_VERSION_MARK = "projection:version"
PROJECTION_VERSION: Final = "2"
"""1: consents and access events; 2: paging indexes and the break-glass cases."""

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
# Each list's filter column first, then leaf_index: one range scan per page (created on open,
# also on a database projected before they existed).
_INDEXES = (
    Index("ix_access_record_kind_leaf", _ACCESS.c.kind, _ACCESS.c.leaf_index),
    Index("ix_access_record_subject_leaf", _ACCESS.c.subject, _ACCESS.c.leaf_index),
    Index(
        "ix_access_record_subject_kind_leaf",
        _ACCESS.c.subject,
        _ACCESS.c.kind,
        _ACCESS.c.leaf_index,
    ),
    Index(
        "ix_access_record_requester_kind_leaf",
        _ACCESS.c.requester,
        _ACCESS.c.kind,
        _ACCESS.c.leaf_index,
    ),
    Index(
        "ix_access_record_holder_kind_leaf", _ACCESS.c.holder, _ACCESS.c.kind, _ACCESS.c.leaf_index
    ),
    *CASE_INDEXES,
)

# Built once: every access decision reads it, and building a statement costs more than running it.
_HISTORY = (
    select(_CONSENT.c.leaf_index, _CONSENT.c.body)
    .where(_CONSENT.c.subject == bindparam("history_subject"))
    .order_by(_CONSENT.c.leaf_index)
)

_HISTORY_SQL = "SELECT leaf_index, body FROM consent_record WHERE subject = ? ORDER BY leaf_index"


class Records:
    """Reads and idempotent writes of the projection."""

    def __init__(self, store: LedgerStore, restore_consent: ConsentRestorer | None = None) -> None:
        self.store = store
        self._restore = restore_consent or _as_logged
        self._consent_cache: dict[int, Consent] = {}
        self._consent_cache_lock = threading.Lock()
        insert = postgresql_insert if store.engine.dialect.name == "postgresql" else sqlite_insert
        # One statement object per table: the group committer writes a batch's rows of one
        # statement with a single executemany.
        self._inserts = {
            table.name: insert(table).on_conflict_do_nothing()
            for table in (_CONSENT, _ACCESS, BREAKGLASS_CASE)
        }

    @classmethod
    def open(cls, store: LedgerStore, restore_consent: ConsentRestorer | None = None) -> Records:
        """``restore_consent`` turns a consent as logged back into the full consent (it puts
        back what the leaf holds only a commitment to), or None to leave it unprojected."""
        store.create_schema(extra_tables=[_CONSENT, _ACCESS, BREAKGLASS_CASE])
        with store.write() as conn:
            for index in _INDEXES:
                index.create(conn, checkfirst=True)
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
        case = case_row(kind, data)
        if case is None:
            return lambda index: [(statement, {**row, "leaf_index": index})]
        if kind == "access.decided":
            cases = self._inserts[BREAKGLASS_CASE.name]
            return lambda index: [
                (statement, {**row, "leaf_index": index}),
                (cases, {**case, "decision_leaf_index": index}),
            ]
        return lambda index: [
            (statement, {**row, "leaf_index": index}),
            (JUSTIFY_CASE, {**case, "justification_leaf_index": index}),
        ]

    def catch_up(self, ledger: Ledger, *, batch: int = 5000) -> int:
        """Project every leaf after the last mark (all of them if the projection is of an older
        version); return how many leaves were read."""
        mark = int(self.store.get_meta(PROJECTION_MARK) or 0)
        if self.store.get_meta(PROJECTION_VERSION_MARK) != PROJECTION_VERSION:
            mark = 0
        size = ledger.tree_size()
        for start in range(mark, size, batch):
            for leaf in ledger.leaves(start, min(size, start + batch)):
                kind, data = decode_leaf(leaf.leaf_data)
                self.project(leaf.leaf_index, kind, data)
        self.store.set_meta(PROJECTION_MARK, str(size))
        self.store.set_meta(PROJECTION_VERSION_MARK, PROJECTION_VERSION)
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
        return [(int(leaf), self._parsed(int(leaf), body)) for leaf, body in rows]

    def consent_history_raw(self, subject: str, reader: RawReader) -> list[tuple[int, Consent]]:
        """``consent_history`` read in ``reader``'s transaction (the decision path's read)."""
        rows = reader.rows(_HISTORY_SQL, (subject,))
        return [(int(leaf), self._parsed(int(leaf), body)) for leaf, body in rows]

    def _parsed(self, leaf_index: int, body: str) -> Consent:
        """The consent a projected row holds, parsed once per process: the row of a leaf never
        changes (it is written once, from the leaf), so neither does what it parses to, and
        every decision about a resident reads all their consents."""
        consent = self._consent_cache.get(leaf_index)
        if consent is None:
            consent = Consent.model_validate_json(body)
            with self._consent_cache_lock:
                if len(self._consent_cache) >= PARSED_CONSENTS:
                    self._consent_cache.pop(next(iter(self._consent_cache)))
                self._consent_cache[leaf_index] = consent
        return consent

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

    def access_page(
        self,
        *,
        kinds: Iterable[str],
        after: int | None,
        limit: int,
        subject: str | None = None,
        party: str | None = None,
        established: bool = False,
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Up to ``limit`` access events of ``kinds`` after leaf ``after``, in log order, about
        ``subject`` and involving ``party`` (as requester or holder) if given; ``established``
        leaves out refusals of tokens no grant has (request id ``""``), whose subject and
        requester, in a log written before they were blanked, are only what a caller typed.

        A party is matched in two range scans, one per role, each at most ``limit`` rows long,
        merged here: one scan of ``requester = p OR holder = p`` would have no index to follow.
        """
        kinds = sorted(set(kinds))
        base = select(_ACCESS.c.leaf_index, _ACCESS.c.kind, _ACCESS.c.body).where(
            _ACCESS.c.kind.in_(kinds), _ACCESS.c.leaf_index > (-1 if after is None else after)
        )
        if subject is not None:
            base = base.where(_ACCESS.c.subject == subject)
        if established:
            base = base.where(_ACCESS.c.request_id != "")
        scans = [base]
        if party is not None:
            scans = [
                base.where(_ACCESS.c.requester == party),
                base.where(_ACCESS.c.holder == party),
            ]
        found: dict[int, tuple[int, str, dict[str, Any]]] = {}
        with self.store.read() as conn:
            for scan in scans:
                for leaf, kind, body in conn.execute(
                    scan.order_by(_ACCESS.c.leaf_index).limit(limit)
                ):
                    found[int(leaf)] = (int(leaf), str(kind), json.loads(body))
        return [found[leaf] for leaf in sorted(found)[:limit]]

    def count_access(self, *, kinds: Iterable[str], subject: str) -> int:
        """How many access events of ``kinds`` are about ``subject`` (counted in the index)."""
        query = select(func.count()).where(
            _ACCESS.c.subject == subject, _ACCESS.c.kind.in_(sorted(set(kinds)))
        )
        with self.store.read() as conn:
            return int(conn.execute(query).scalar_one())

    def access_of_requests(
        self, request_ids: Iterable[str], *, party: str | None = None
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Every access event of these requests (involving ``party`` if given), in log order."""
        wanted = sorted(set(request_ids))
        if not wanted:
            return []
        query = select(_ACCESS.c.leaf_index, _ACCESS.c.kind, _ACCESS.c.body).where(
            _ACCESS.c.request_id.in_(wanted)
        )
        if party is not None:
            query = query.where((_ACCESS.c.requester == party) | (_ACCESS.c.holder == party))
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(_ACCESS.c.leaf_index)).all()
        return [(int(leaf), str(kind), json.loads(body)) for leaf, kind, body in rows]

    # -- break-glass -----------------------------------------------------------------------------

    def breakglass_page(
        self, *, after: int | None, limit: int, late_at: datetime | None = None
    ) -> list[BreakGlassCase]:
        """Up to ``limit`` break-glass cases after decision leaf ``after``, in log order; with
        ``late_at``, only those late then (unjustified past their deadline, or justified late)."""
        with self.store.read() as conn:
            return cases_page(conn, after=after, limit=limit, late_at=late_at)


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
