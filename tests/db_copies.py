"""Real copies of a log's database, put aside and put back, as an operator restoring a backup
would: SQLite through its backup API (file to file), PostgreSQL table by table into another
schema of the same database."""

from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

_TABLES = ("log_head", "leaf", "tree_node", "checkpoint", "log_meta", "anchor")


def _sqlite_path(url: str) -> str:
    database = make_url(url).database
    assert database is not None
    return database


def _pg(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def copy_aside(url: str, name: str) -> None:
    """Copy the database as it is now under ``name``."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        with sqlite3.connect(path) as source, sqlite3.connect(f"{path}.{name}") as copy:
            source.backup(copy)
        return
    engine = create_engine(_pg(url))
    with engine.begin() as conn:
        for table in _TABLES:
            conn.execute(text(f"DROP TABLE IF EXISTS {name}_{table}"))
            conn.execute(text(f"CREATE TABLE {name}_{table} AS SELECT * FROM {table}"))
    engine.dispose()


def put_back(url: str, name: str) -> None:
    """Replace the database's contents with the copy made under ``name``."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        with sqlite3.connect(f"{path}.{name}") as copy, sqlite3.connect(path) as target:
            copy.backup(target)
        return
    engine = create_engine(_pg(url))
    with engine.begin() as conn:
        for table in _TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(text(f"INSERT INTO {table} SELECT * FROM {name}_{table}"))
    engine.dispose()


def execute(url: str, statement: str) -> None:
    """One hand edit of the database, outside the ledger."""
    if url.startswith("sqlite"):
        with sqlite3.connect(_sqlite_path(url)) as conn:
            conn.execute(statement)
        return
    engine = create_engine(_pg(url))
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def zero_node(url: str, level: int, index: int) -> None:
    """Overwrite one stored tree node's hash with zeros."""
    zeros = "zeroblob(32)" if url.startswith("sqlite") else "decode(repeat('00', 32), 'hex')"
    execute(
        url, f"UPDATE tree_node SET hash = {zeros} WHERE level = {level} AND node_index = {index}"
    )
