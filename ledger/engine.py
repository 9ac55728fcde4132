"""Database engines for the log and the driver-level helpers its hot paths use.

SQLite runs in WAL mode with full sync and immediate write transactions; PostgreSQL through
psycopg. Bulk rows and hot reads go through the driver's own cursor, inside the caller's
SQLAlchemy transaction, where the ORM's per-row work would cost more than the database's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from .errors import ConfigurationError

# Connections kept open per engine. A service thread that finds none idle opens one and closes it
# after its transaction: on PostgreSQL that forks a server process each time, so under load the
# pool must hold as many as run at once (the API's thread pool has 40 threads). PostgreSQL's own
# limit (100 by default) is shared by all worker processes, so its pools stay smaller.
_SQLITE_POOL = {"pool_size": 40, "max_overflow": 10}
_POSTGRESQL_POOL = {"pool_size": 20, "max_overflow": 10}


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, full sync, immediate write transactions) or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, **_POSTGRESQL_POOL)
    raise ConfigurationError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def read_meta_if_any(url: str, name: str) -> str | None:
    """The log fact ``name`` in the database at ``url``, creating nothing: None if there is no
    such database (an SQLite file that does not exist), no log table in it, or no such fact."""
    engine = make_engine(url)  # refuses a URL that is not one, before anything is made
    database = engine.url.database
    if engine.url.get_backend_name() == "sqlite" and not (database and Path(database).is_file()):
        engine.dispose()
        return None
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("log_meta"):
                return None
            value = conn.execute(
                text("SELECT value FROM log_meta WHERE name = :name"), {"name": name}
            ).scalar()
    except OperationalError as exc:
        raise ConfigurationError(f"cannot read the database {shown_url(url)}: {exc.orig}") from exc
    finally:
        engine.dispose()
    return None if value is None else str(value)


def shown_url(url: str) -> str:
    """A database URL as a message shows it: an SQLite file's path, or the URL without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": 60, "check_same_thread": False}, **_SQLITE_POOL
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own the transaction instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss, not only a killed process; the log is evidence.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front; a deferred upgrade could fail with SQLITE_BUSY midway.
        mode = "IMMEDIATE" if conn.get_execution_options().get("ledger_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def bulk_insert(
    conn: Connection, table: Any, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert many rows through the driver itself, inside the caller's transaction.

    The ORM's per-row parameter processing costs more than the database's own work at the
    append rates the log is built for; PostgreSQL takes a binary COPY, SQLite an executemany.
    """
    if not rows:
        return
    names = ", ".join(columns)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            # Table and column names are this module's constants; values are bound parameters.
            sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608
            cursor.executemany(sql, rows)
    finally:
        cursor.close()


class RawReader:
    """Statements on a driver cursor inside ``LedgerStore.raw_read``'s transaction; SQL is
    written with ``?`` placeholders for both databases."""

    def __init__(self, cursor: Any, postgresql: bool) -> None:
        self._cursor = cursor
        self._postgresql = postgresql

    def rows(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self._postgresql:
            sql = pyformat(sql)
        self._cursor.execute(sql, tuple(parameters))
        rows: list[tuple[Any, ...]] = self._cursor.fetchall()
        return rows


@functools.lru_cache(maxsize=64)
def pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (the statements are constants: no ``?`` or ``%``
    in their text otherwise)."""
    return sql.replace("%", "%%").replace("?", "%s")
