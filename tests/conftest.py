"""Shared fixtures: a real SQLite file and the machine's PostgreSQL, one fresh schema per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.common import PG_ADMIN, postgres_schema
from ledger.settings import LedgerSettings


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_available()


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A URL whose connections land in a fresh schema of the local test database."""
    if not pg_available:
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (make test starts it)")
    with postgres_schema("t_", hex_digits=12) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a real SQLite file and on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> LedgerSettings:
    return LedgerSettings(
        data_dir=tmp_path / "data", database_url=db_url, origin="test.example/log"
    )
