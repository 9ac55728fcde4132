"""A py-evm key-value database kept in one SQLite file, committed a block at a time.

py-evm stores everything (headers, bodies, receipts, the state trie, the tx-hash index) as
opaque key/value pairs. This backend writes them into an open SQLite transaction and the
embedded chain calls :meth:`SqliteKV.commit` once a block is mined, so the file always holds
a whole number of blocks: a crash mid-block rolls back to the previous block, never to a
half-written one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eth.db.backends.base import BaseDB


class SqliteKV(BaseDB):
    """Bytes-to-bytes store on SQLite (WAL, fully synced commits)."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """Open the store in ``path``, creating it unless ``create`` is false, in which case a
        missing file, or one that is not such a store, raises FileNotFoundError untouched."""
        # One connection shared by the provider's threads; the embedded provider serialises
        # every request with a lock, so sqlite3's same-thread check would only get in the way.
        if create:
            self._conn = sqlite3.connect(path, check_same_thread=False)
        else:
            # mode=rw: open, never create (a plain connect would make an empty file).
            uri = f"{path.resolve().as_uri()}?mode=rw"
            try:
                self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            except sqlite3.OperationalError as exc:
                raise FileNotFoundError(f"no key-value store at {path}: {exc}") from exc
            if not self._has_table():
                self._conn.close()
                raise FileNotFoundError(f"no key-value store at {path}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        # An anchor must survive power loss once its block is committed.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
        )
        self._conn.commit()

    def _has_table(self) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'"
        ).fetchone()
        return row is not None

    def __getitem__(self, key: bytes) -> bytes:
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value: bytes = row[0]
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._conn.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        if self._conn.execute("DELETE FROM kv WHERE k = ?", (key,)).rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        return self._conn.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    def commit(self) -> None:
        """Make every write since the last commit durable, all at once."""
        self._conn.commit()

    def rollback(self) -> None:
        """Forget every write since the last commit."""
        self._conn.rollback()

    def close(self) -> None:
        self._conn.rollback()
        self._conn.close()
