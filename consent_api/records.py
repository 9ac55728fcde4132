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
    Connection,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledger.batcher import EventRows
from ledger.engine import RawReader
from ledger.events import decode_leaf
from ledger.log import Ledger
from ledger.store import LedgerStore

from .access_heads import (
    CASES,
    access_head_upsert,
    check_cases,
    check_scopes,
    head_rows,
    scopes_of,
)
from .cases import (
    BREAKGLASS_CASE,
    JUSTIFY_CASE,
    BreakGlassCase,
    case_row,
    cases_page,
    verify_cases,
)
from .domain.consent import Consent
from .heads import HISTORY, HISTORY_SQL, ConsentHeads, head_upsert, split_history
from .integrity import LoggedConsent, Mismatch, ProjectionVerifier, Row
from .projection_tables import ACCESS as _ACCESS
from .projection_tables import ACCESS_HEAD as _ACCESS_HEAD
from .projection_tables import CONSENT as _CONSENT
from .projection_tables import CONSENT_HEAD as _CONSENT_HEAD
from .projection_tables import CONSENT_KINDS, INDEXES, event_row

PROJECTION_MARK = "projection:complete-to"
PARSED_CONSENTS: Final = 100_000
"""How many parsed consent versions a process keeps (the oldest parsed is dropped first)."""
PROJECTION_VERSION_MARK = "projection:version"
PROJECTION_VERSION: Final = "3"
"""1: consents and access events; 2: paging indexes and the break-glass cases; 3: the
subjects' consent heads (``heads``), built from the log by the replay."""

log = logging.getLogger(__name__)

ConsentRestorer = Callable[[dict[str, Any]], dict[str, Any] | None]


def _as_logged(body: dict[str, Any]) -> dict[str, Any] | None:
    return body


def _as_logged_form(body: dict[str, Any]) -> dict[str, Any]:
    return body


class Records:
    """Reads and idempotent writes of the projection; every row read is verified against its
    leaf (``integrity``) before it is returned."""

    def __init__(
        self,
        store: LedgerStore,
        restore_consent: ConsentRestorer | None = None,
        logged_consent: LoggedConsent | None = None,
    ) -> None:
        self.store = store
        self._restore = restore_consent or _as_logged
        self.integrity = ProjectionVerifier(store, logged_consent or _as_logged_form)
        self.heads = ConsentHeads(self.integrity)
        self._consent_cache: dict[int, Consent] = {}
        self._consent_cache_lock = threading.Lock()
        insert = postgresql_insert if store.engine.dialect.name == "postgresql" else sqlite_insert
        # One statement object per table: the group committer writes a batch's rows of one
        # statement with a single executemany.
        self._inserts = {
            table.name: insert(table).on_conflict_do_nothing()
            for table in (_CONSENT, _ACCESS, BREAKGLASS_CASE)
        }
        self._head = head_upsert(insert)
        self._access_head = access_head_upsert(insert)

    @classmethod
    def open(
        cls,
        store: LedgerStore,
        restore_consent: ConsentRestorer | None = None,
        logged_consent: LoggedConsent | None = None,
    ) -> Records:
        """``restore_consent`` turns a consent as logged back into the full consent (it puts
        back what the leaf holds only a commitment to), or None to leave it unprojected;
        ``logged_consent`` is its inverse, used to check a projected consent against its leaf."""
        tables = [_CONSENT, _ACCESS, BREAKGLASS_CASE, _CONSENT_HEAD, _ACCESS_HEAD]
        store.create_schema(extra_tables=tables)
        with store.write() as conn:
            for index in INDEXES:
                index.create(conn, checkfirst=True)
        return cls(store, restore_consent, logged_consent)

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
        if kind in CONSENT_KINDS:  # committed: a read from now on must see it
            self.heads.noted(str(data["consent"]["subject"]), leaf_index)

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
            row, table = event_row(kind, data)
        except (KeyError, TypeError, ValueError) as exc:
            where = "an event" if leaf_index is None else f"leaf {leaf_index}"
            log.warning("%s (%s) has no projectable shape: %s", where, kind, exc)
            return None
        if table is None:
            return None
        statement = self._inserts[table.name]
        if table is _CONSENT:
            head = self._head
            return lambda index: [
                (statement, {**row, "leaf_index": index}),
                (head, {"subject": row["subject"], "leaf_index": index, "versions": 1}),
            ]
        heads = self._access_head

        def access(index: int) -> list[tuple[Any, dict[str, Any]]]:
            return [(statement, {**row, "leaf_index": index})] + [
                (heads, parameters) for parameters in head_rows(row, index)
            ]

        case = case_row(kind, data)
        if case is None:
            return access
        if kind == "access.decided":
            cases = self._inserts[BREAKGLASS_CASE.name]
            return lambda index: [
                *access(index),
                (cases, {**case, "decision_leaf_index": index}),
                (heads, {"scope": CASES, "leaf_index": index, "events": 1}),
            ]
        return lambda index: [
            *access(index),
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
        known = self.heads.seen(subject)
        rows = conn.execute(HISTORY, {"history_subject": subject}).all()
        return self._verified_history(subject, rows, known)

    def consent_history_raw(self, subject: str, reader: RawReader) -> list[tuple[int, Consent]]:
        """``consent_history`` read in ``reader``'s transaction (the decision path's read)."""
        known = self.heads.seen(subject)
        rows = reader.rows(HISTORY_SQL, (subject, subject))
        return self._verified_history(subject, rows, known)

    def _verified_history(
        self, subject: str, rows: Iterable[Any], known: tuple[int, int] | None
    ) -> list[tuple[int, Consent]]:
        """The rows verified each against its leaf, found by their subject, and all there are
        (held to the subject's head and this process's memory of it: ``heads``)."""
        consents, head = split_history(rows)
        checked = [Row(_CONSENT.name, leaf, kind, body) for leaf, kind, body in consents]
        self.integrity.check(checked)
        history = [(row.leaf_index, self._parsed(row.leaf_index, row.body)) for row in checked]
        for leaf_index, consent in history:
            if consent.subject != subject:
                self._misfiled(_CONSENT.name, leaf_index, f"is about {consent.subject}")
        self.heads.check(subject, [leaf for leaf, _ in history], head, known)
        return history

    def _misfiled(self, table: str, leaf_index: int, why: str) -> None:
        """A verified row found by a column its body contradicts (a column changed by hand)."""
        self.integrity.refuse(Mismatch(table, leaf_index, f"filed under another key: it {why}"))

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
        query = select(_CONSENT.c.leaf_index, _CONSENT.c.kind, _CONSENT.c.body).where(
            _CONSENT.c.consent_id == consent_id
        )
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(_CONSENT.c.leaf_index)).all()
        checked = [Row(_CONSENT.name, int(leaf), str(kind), str(body)) for leaf, kind, body in rows]
        self.integrity.check(checked)
        versions = [(row.leaf_index, Consent.model_validate_json(row.body)) for row in checked]
        for leaf_index, consent in versions:
            if consent.consent_id != consent_id:
                self._misfiled(_CONSENT.name, leaf_index, f"is consent {consent.consent_id}")
        if not versions:
            return versions
        # Held to its subject's head through the subject's whole history: a deleted newest
        # version of this consent (its revocation) is a shortfall there.
        subject = versions[0][1].subject
        return [
            (leaf_index, consent)
            for leaf_index, consent in self.consent_history(subject)
            if consent.consent_id == consent_id
        ]

    def _access(
        self, rows: Iterable[Any], belongs: Callable[[dict[str, Any]], bool]
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Access rows (leaf index, kind, body) verified, and each found by what its body says."""
        checked = [Row(_ACCESS.name, int(leaf), str(kind), str(body)) for leaf, kind, body in rows]
        self.integrity.check(checked)
        events = [(row.leaf_index, row.kind, json.loads(row.body)) for row in checked]
        for leaf_index, _, event in events:
            if not belongs(event):
                self._misfiled(_ACCESS.name, leaf_index, "is not about what it was looked up by")
        return events

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
            check_scopes(self.integrity, conn, scopes_of(subject, party))
        return self._access(
            rows,
            lambda event: (
                (subject is None or event.get("subject") == subject)
                and (party is None or party in (event.get("requester"), event.get("holder")))
                and (request_id is None or event.get("request_id") == request_id)
            ),
        )

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
        found: dict[int, Any] = {}
        with self.store.read() as conn:
            for scan in scans:
                for row in conn.execute(scan.order_by(_ACCESS.c.leaf_index).limit(limit)):
                    found[int(row[0])] = row
            check_scopes(self.integrity, conn, scopes_of(subject, party))
        return self._access(
            [found[leaf] for leaf in sorted(found)[:limit]],
            lambda event: (
                (subject is None or event.get("subject") == subject)
                and (party is None or party in (event.get("requester"), event.get("holder")))
            ),
        )

    def count_access(self, *, kinds: Iterable[str], subject: str) -> int:
        """How many access events of ``kinds`` are about ``subject`` (counted in the index)."""
        query = select(func.count()).where(
            _ACCESS.c.subject == subject, _ACCESS.c.kind.in_(sorted(set(kinds)))
        )
        with self.store.read() as conn:
            check_scopes(self.integrity, conn, scopes_of(subject, None))
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
        return self._access(
            rows,
            lambda event: (
                event.get("request_id") in wanted
                and (party is None or party in (event.get("requester"), event.get("holder")))
            ),
        )

    # -- break-glass -----------------------------------------------------------------------------

    def breakglass_page(
        self, *, after: int | None, limit: int, late_at: datetime | None = None
    ) -> list[BreakGlassCase]:
        """Up to ``limit`` break-glass cases after decision leaf ``after``, in log order; with
        ``late_at``, only those late then (unjustified past their deadline, or justified late)."""
        with self.store.read() as conn:
            page = cases_page(conn, after=after, limit=limit, late_at=late_at)
            check_cases(self.integrity, conn)
        verify_cases(self.integrity, page)
        return page


def latest_versions(history: Iterable[tuple[int, Consent]]) -> dict[str, tuple[int, Consent]]:
    """The last logged record of each consent id."""
    latest: dict[str, tuple[int, Consent]] = {}
    for leaf_index, consent in history:
        latest[consent.consent_id] = (leaf_index, consent)
    return latest
