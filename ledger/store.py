"""The one owner of the log's storage: sequencing leaves, tree nodes, checkpoints, metadata.

Appends run in one database transaction that locks the head row (``BEGIN IMMEDIATE`` on SQLite,
``SELECT ... FOR UPDATE`` on PostgreSQL), so leaf indices are dense and never reused across
threads and processes, and an index is returned only after the commit made it durable. A caller
may write its own rows in that same transaction (``within``), so that they commit with the
leaves they belong to, or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    insert,
    select,
    text,
    update,
)
from sqlmodel import SQLModel

from hashing import EMPTY_ROOT, CompactRange, NodeID, node_hash

from .engine import RawReader, bulk_insert, insert_ignore, make_engine
from .errors import IntegrityError, RollbackError, TreeSizeError
from .events import EncodedEvent
from .models import AnchorRow, CheckpointRow, Leaf, LogHead, LogMeta, TreeNode
from .store_checks import StorageChecks
from .store_tiles import TileRows

_LEAF = Leaf.__table__  # type: ignore[attr-defined]
_NODE = TreeNode.__table__  # type: ignore[attr-defined]
_HEAD = LogHead.__table__  # type: ignore[attr-defined]
_CHECKPOINT = CheckpointRow.__table__  # type: ignore[attr-defined]
_META = LogMeta.__table__  # type: ignore[attr-defined]
_ANCHOR = AnchorRow.__table__  # type: ignore[attr-defined]
# The append's head statements, run on the driver's cursor (``_append_locked``).
_LOCK_HEAD_SQL = "SELECT tree_size FROM log_head WHERE id = 1"
_MOVE_HEAD_SQL = "UPDATE log_head SET tree_size = ?, root_hash = ? WHERE id = 1"

# Keeps each IN list well inside every driver's parameter limits.
_CHUNK = 200
_SCHEMA_LOCK = 0x636F6E73656E74  # an arbitrary advisory-lock key for schema creation
_LEAF_COLUMNS = ("leaf_index", "kind", "leaf_data", "leaf_hash", "appended_at")
_NODE_COLUMNS = ("level", "node_index", "hash")


WithinAppend = Callable[[Connection, range], None]
"""Writes of the caller's own rows inside an append's transaction, given the new leaf indices."""


@dataclass(frozen=True, slots=True)
class StoredLeaf:
    leaf_index: int
    kind: str
    leaf_data: bytes
    leaf_hash: bytes
    appended_at: float


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    note: str
    created_at: float


class LedgerStore(StorageChecks, TileRows):
    """Reads and writes the log's tables; the tree's right edge is cached between appends."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._range: CompactRange | None = None
        # The smallest head an append may find: the size of the newest checkpoint this log has
        # signed (``ledger.witness``). Below it the database went back in time under us.
        self.min_tree_size = 0

    @classmethod
    def open(cls, url: str) -> LedgerStore:
        store = cls(make_engine(url))
        store.create_schema()
        return store

    def create_schema(self, extra_tables: Sequence[Any] = ()) -> None:
        """Create the tables once, even when several processes start at the same moment."""
        with self.write() as conn:
            if conn.dialect.name == "postgresql":
                # CREATE TABLE IF NOT EXISTS races on PostgreSQL's catalog; SQLite's BEGIN
                # IMMEDIATE already serializes, PostgreSQL takes an advisory lock.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
            SQLModel.metadata.create_all(
                conn, tables=[_HEAD, _LEAF, _NODE, _CHECKPOINT, _META, _ANCHOR, *extra_tables]
            )
            conn.execute(insert_ignore(conn, _HEAD).values(id=1, tree_size=0, root_hash=EMPTY_ROOT))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(ledger_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def raw_read(self) -> Iterator[RawReader]:
        """Reads on the driver's own connection (from the engine's pool), for the hottest
        reads only (each access decision's): SQLAlchemy's work per statement (execution
        context, events, result wrapping) costs several times what SQLite does to answer an
        indexed query.

        Each statement reads its own snapshot, as statements do on PostgreSQL under READ
        COMMITTED: fit for facts that only move forward between two statements (rows added,
        never changed), not for reads that must agree with each other otherwise.
        """
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                yield RawReader(cursor, self.engine.dialect.name == "postgresql")
            finally:
                cursor.close()
            # pysqlite is in autocommit mode (make_engine); psycopg opened a transaction.
            raw.rollback()
        finally:
            raw.close()

    # -- sequencing ---------------------------------------------------------------------------

    def append(
        self,
        events: Sequence[EncodedEvent],
        appended_at: float,
        within: WithinAppend | None = None,
    ) -> int:
        """Append events as consecutive leaves; return the first leaf index once committed.

        ``within(conn, indices)``, if given, runs in the append's transaction once the leaves
        have their indices; if it raises, nothing is appended.
        """
        if not events:
            raise ValueError("nothing to append")
        with self._lock:
            try:
                return self._append_locked(events, appended_at, within)
            except BaseException:
                self._range = None  # the cached right edge may be ahead of what was committed
                raise

    def _append_locked(
        self, events: Sequence[EncodedEvent], appended_at: float, within: WithinAppend | None
    ) -> int:
        with self.write() as conn:
            postgresql = conn.dialect.name == "postgresql"
            raw = conn.connection.dbapi_connection
            assert raw is not None
            # The head's two statements on the driver's cursor, as the bulk inserts are: they
            # run once per batch, and SQLAlchemy's own work per statement costs more than them.
            head = raw.cursor()
            head.execute(_LOCK_HEAD_SQL + (" FOR UPDATE" if postgresql else ""))
            (size,) = head.fetchone() or (None,)
            if not isinstance(size, int):
                raise IntegrityError("the log's head row is missing")
            if size < self.min_tree_size:
                raise RollbackError(
                    f"the database's tree went back to {size} leaves, below the "
                    f"{self.min_tree_size} of a checkpoint this log signed: it was restored or "
                    "edited while in use; nothing is appended (restart to see what to do)"
                )
            cached = self._range
            if cached is None or cached.size != size:
                cached = self._load_range(conn, size)  # another writer appended meanwhile
            tree = CompactRange.from_frontier(cached.size, cached.hashes)
            new_nodes = tree.extend_rows([e.leaf_hash for e in events])
            leaf_rows = [
                (size + offset, e.kind, e.leaf_data, e.leaf_hash, appended_at)
                for offset, e in enumerate(events)
            ]
            node_rows = [row for row in new_nodes if not row[0] & 1]
            bulk_insert(conn, _LEAF, _LEAF_COLUMNS, leaf_rows)
            bulk_insert(conn, _NODE, _NODE_COLUMNS, node_rows)
            head.execute(
                _MOVE_HEAD_SQL.replace("?", "%s") if postgresql else _MOVE_HEAD_SQL,
                (tree.size, tree.root()),
            )
            head.close()
            if within is not None:
                within(conn, range(size, tree.size))
        self._range = tree
        return size

    def _load_range(self, conn: Connection, size: int) -> CompactRange:
        ids = CompactRange.frontier_ids(size)
        return CompactRange.from_frontier(size, self._node_hashes(conn, ids))

    # -- reads --------------------------------------------------------------------------------

    def head(self) -> tuple[int, bytes]:
        with self.read() as conn:
            row = conn.execute(select(_HEAD.c.tree_size, _HEAD.c.root_hash)).one()
        return int(row.tree_size), bytes(row.root_hash)

    def tree_size(self) -> int:
        return self.head()[0]

    def node_hashes(
        self, tree_size: int | None, ids_for: Callable[[int], Sequence[NodeID]]
    ) -> tuple[int, list[bytes]]:
        """Resolve a tree size (None: the current one) and read the nodes ``ids_for(size)`` names.

        One read transaction: the size checked against the head is the size the nodes are read
        for. ``ids_for`` may raise to refuse the size.
        """
        with self.read() as conn:
            current = int(conn.execute(select(_HEAD.c.tree_size)).scalar_one())
            size = current if tree_size is None else tree_size
            if not 0 <= size <= current:
                raise TreeSizeError(f"tree size {size} is not between 0 and the log's {current}")
            return size, self._node_hashes(conn, ids_for(size))

    def _node_hashes(
        self, conn: Connection, ids: Sequence[NodeID], leaf_data: dict[int, bytes] | None = None
    ) -> list[bytes]:
        # Only even levels are stored; an odd-level node is the hash of its two stored children.
        wanted = set()
        for node in ids:
            if node.level & 1:
                wanted.add(NodeID(node.level - 1, 2 * node.index))
                wanted.add(NodeID(node.level - 1, 2 * node.index + 1))
            else:
                wanted.add(node)
        found = self._stored_hashes(
            conn, sorted(wanted, key=lambda n: (n.level, n.index)), leaf_data
        )
        hashes: list[bytes] = []
        for node in ids:
            if node.level & 1:
                left = found.get(NodeID(node.level - 1, 2 * node.index))
                right = found.get(NodeID(node.level - 1, 2 * node.index + 1))
                digest = None if left is None or right is None else node_hash(left, right)
            else:
                digest = found.get(node)
            if digest is None:
                raise IntegrityError(f"tree node {node} is missing from storage")
            hashes.append(digest)
        return hashes

    def _stored_hashes(
        self, conn: Connection, ids: Sequence[NodeID], leaf_data: dict[int, bytes] | None
    ) -> dict[NodeID, bytes]:
        # Plain driver SQL: building ORM expressions for a few dozen key pairs costs more than
        # the database's own work on this hot read path (proofs are served per request).
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        found: dict[NodeID, bytes] = {}
        leaf_ids = [n.index for n in ids if n.level == 0]
        for start in range(0, len(leaf_ids), _CHUNK):
            chunk = leaf_ids[start : start + _CHUNK]
            # With ``leaf_data`` wanted, the bytes too: a proof reads at most a few leaves.
            columns = "leaf_index, leaf_hash" + (", leaf_data" if leaf_data is not None else "")
            sql = (
                f"SELECT {columns} FROM leaf WHERE leaf_index IN "  # noqa: S608
                f"({', '.join(mark for _ in chunk)})"
            )
            for row in conn.exec_driver_sql(sql, tuple(chunk)):
                found[NodeID(0, row[0])] = bytes(row[1])
                if leaf_data is not None:
                    leaf_data[row[0]] = bytes(row[2])
        pairs = [(n.level, n.index) for n in ids if n.level > 0]
        for start in range(0, len(pairs), _CHUNK):
            chunk_pairs = pairs[start : start + _CHUNK]
            # OR of equalities, not a row-value IN: SQLite plans "(a, b) IN (VALUES ...)" as a
            # full scan, while each equality pair is a primary-key search on both databases.
            where = " OR ".join(f"(level = {mark} AND node_index = {mark})" for _ in chunk_pairs)
            sql = f"SELECT level, node_index, hash FROM tree_node WHERE {where}"  # noqa: S608
            params = tuple(value for pair in chunk_pairs for value in pair)
            for level, index, digest in conn.exec_driver_sql(sql, params):
                found[NodeID(level, index)] = bytes(digest)
        return found

    def leaves(self, start: int, end: int) -> list[StoredLeaf]:
        """Leaves with ``start <= leaf_index < end``, in order."""
        query = (
            select(_LEAF)
            .where(_LEAF.c.leaf_index >= start, _LEAF.c.leaf_index < end)
            .order_by(_LEAF.c.leaf_index)
        )
        with self.read() as conn:
            return [
                StoredLeaf(
                    leaf_index=row.leaf_index,
                    kind=row.kind,
                    leaf_data=bytes(row.leaf_data),
                    leaf_hash=bytes(row.leaf_hash),
                    appended_at=row.appended_at,
                )
                for row in conn.execute(query)
            ]

    def leaves_at(self, indices: Sequence[int]) -> tuple[int, dict[int, StoredLeaf]]:
        """The tree size and the leaves at ``indices`` below it, read in one transaction (an
        index at or past the size, or with no stored leaf, is absent from the answer)."""
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        wanted = sorted(set(indices))
        found: dict[int, StoredLeaf] = {}
        with self.read() as conn:
            size = int(conn.execute(select(_HEAD.c.tree_size)).scalar_one())
            below = [index for index in wanted if 0 <= index < size]
            for start in range(0, len(below), _CHUNK):
                chunk = below[start : start + _CHUNK]
                sql = (
                    "SELECT leaf_index, kind, leaf_data, leaf_hash, appended_at FROM leaf "  # noqa: S608
                    f"WHERE leaf_index IN ({', '.join(mark for _ in chunk)})"
                )
                for index, kind, data, digest, at in conn.exec_driver_sql(sql, tuple(chunk)):
                    found[int(index)] = StoredLeaf(int(index), kind, bytes(data), bytes(digest), at)
        return size, found

    # -- checkpoints and metadata -------------------------------------------------------------

    def save_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Keep the first checkpoint sealed at a size; a concurrent second one is dropped."""
        with self.write() as conn:
            conn.execute(
                insert_ignore(conn, _CHECKPOINT).values(
                    tree_size=checkpoint.tree_size,
                    root_hash=checkpoint.root_hash,
                    note=checkpoint.note,
                    created_at=checkpoint.created_at,
                )
            )

    def checkpoints(self, after_size: int = -1, limit: int = 1000) -> list[StoredCheckpoint]:
        query = (
            select(_CHECKPOINT)
            .where(_CHECKPOINT.c.tree_size > after_size)
            .order_by(_CHECKPOINT.c.tree_size)
            .limit(limit)
        )
        with self.read() as conn:
            return [_checkpoint(row) for row in conn.execute(query)]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        query = select(_CHECKPOINT).order_by(_CHECKPOINT.c.tree_size.desc()).limit(1)
        with self.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _checkpoint(row)

    def checkpoint_at(self, tree_size: int) -> StoredCheckpoint | None:
        query = select(_CHECKPOINT).where(_CHECKPOINT.c.tree_size == tree_size)
        with self.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _checkpoint(row)

    def get_meta(self, name: str) -> str | None:
        with self.read() as conn:
            value = conn.execute(select(_META.c.value).where(_META.c.name == name)).scalar()
        return None if value is None else str(value)

    def set_meta(self, name: str, value: str) -> None:
        """Record or overwrite a fact (a projection's progress mark, say)."""
        with self.write() as conn:
            updated = conn.execute(update(_META).where(_META.c.name == name).values(value=value))
            if updated.rowcount == 0:
                conn.execute(insert_ignore(conn, _META).values(name=name, value=value))

    def set_meta_once(self, name: str, value: str) -> str:
        """Record a fact the first time; return what is recorded (maybe by an earlier writer)."""
        with self.write() as conn:
            conn.execute(
                select(_HEAD.c.id).with_for_update()
            )  # serializes first writers on PostgreSQL
            current = conn.execute(select(_META.c.value).where(_META.c.name == name)).scalar()
            if current is None:
                conn.execute(insert(_META).values(name=name, value=value))
                return value
            return str(current)


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(
        tree_size=row.tree_size,
        root_hash=bytes(row.root_hash),
        note=row.note,
        created_at=row.created_at,
    )
