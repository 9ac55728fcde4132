"""The platform's key files are pinned to the deployment, like the log's key: on a SQLite file and
on PostgreSQL, a deployment that was used and then lost ``platform-pseudonym.key`` or
``platform-token.key`` (or got another one) refuses to start, through the app and through
``consent-ledger serve`` and ``issue-token`` (exit 2), naming the file and saying to restore
it, before anything is written: the file is not recreated and the database is as it was. A
new key would have given every resident another subject id (their consents and history
orphaned) or invalidated every token."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, table, text

from consent_api.app import create_app
from consent_api.settings import ApiSettings
from ledger.engine import make_engine
from ledger.errors import KeyFileError
from tests.api_helpers import api_settings, register_resident
from tests.live_server import free_port
from tests.test_api_access import make_world
from tests.test_api_fsck import consent_ledger
from tests.test_api_projection_integrity import sql

KEY_FILES = ["platform-pseudonym.key", "platform-token.key"]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> ApiSettings:
    return api_settings(tmp_path, db_url)


@pytest.fixture
def used(settings: ApiSettings) -> ApiSettings:
    """A deployment after some activity: residents, consents, a decision; shut down."""
    with TestClient(create_app(settings)) as client:
        make_world(client).permit()
    return settings


def snapshot(settings: ApiSettings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    url = settings.ledger.database_url
    assert url is not None
    engine = make_engine(url)
    try:
        names = sorted(inspect(engine).get_table_names())
        with engine.connect() as conn:
            every = {
                name: conn.execute(select(text("*")).select_from(table(name))) for name in names
            }
            return {
                name: sorted(tuple(map(repr, row)) for row in rows) for name, rows in every.items()
            }
    finally:
        engine.dispose()


def refused_start(settings: ApiSettings, name: str) -> None:
    """The app refuses to start, naming ``name``; nothing was written meanwhile."""
    before = snapshot(settings)
    match = f"{name}.*restore the file from the data dir's backup"
    with pytest.raises(KeyFileError, match=match), TestClient(create_app(settings)):
        pass
    assert snapshot(settings) == before


@pytest.mark.parametrize("name", KEY_FILES)
def test_a_lost_key_file_is_refused_not_recreated(used: ApiSettings, name: str) -> None:
    path = used.ledger.data_dir / name
    path.unlink()
    refused_start(used, name)
    assert not path.exists()


@pytest.mark.parametrize("name", KEY_FILES)
def test_serve_and_issue_token_refuse_a_lost_key_file_with_exit_2(
    used: ApiSettings, name: str
) -> None:
    path = used.ledger.data_dir / name
    path.unlink()
    before = snapshot(used)
    served = consent_ledger(used, "serve", "--port", str(free_port()))
    assert served.returncode == 2, served.stderr
    assert f"{path} is missing" in served.stderr
    assert "restore the file from the data dir's backup" in served.stderr
    issued = consent_ledger(used, "issue-token", "--role", "admin", "--subject", "ops")
    assert issued.returncode == (2 if name == "platform-token.key" else 0), issued.stderr
    assert not path.exists()
    assert snapshot(used) == before


@pytest.mark.parametrize("name", KEY_FILES)
def test_another_key_file_is_refused(used: ApiSettings, name: str, tmp_path: Path) -> None:
    other = api_settings(tmp_path / "other")
    with TestClient(create_app(other)):
        pass  # another deployment, with keys of its own
    path = used.ledger.data_dir / name
    path.write_bytes((other.ledger.data_dir / name).read_bytes())
    before = snapshot(used)
    match = "is not the key this deployment was set up with"
    with pytest.raises(KeyFileError, match=match), TestClient(create_app(used)):
        pass
    assert snapshot(used) == before


def test_a_fresh_deployment_creates_and_pins_its_keys(settings: ApiSettings) -> None:
    with TestClient(create_app(settings)) as client:
        register_resident(client, "NAT-FRESH", birth_date=date(1990, 1, 1))
    for name in KEY_FILES:
        assert (settings.ledger.data_dir / name).exists()
    pins = dict(sql(settings, "SELECT name, value FROM log_meta WHERE name LIKE 'platform-key:%'"))
    assert set(pins) == {f"platform-key:{name}" for name in KEY_FILES}
    with TestClient(create_app(settings)):
        pass  # and starts again on them


@pytest.mark.parametrize("name", KEY_FILES)
def test_a_deployment_from_before_pins_is_refused_too(used: ApiSettings, name: str) -> None:
    """Used before fingerprints were kept: the service's own rows say it was set up."""
    sql(used, "DELETE FROM log_meta WHERE name LIKE 'platform-key:%'")
    path = used.ledger.data_dir / name
    kept = path.read_bytes()
    path.unlink()
    refused_start(used, name)
    assert not path.exists()
    path.write_bytes(kept)
    os.chmod(path, 0o600)
    with TestClient(create_app(used)):
        pass  # restored: it starts, and pins the file it has
    assert sql(used, "SELECT value FROM log_meta WHERE name = :n", n=f"platform-key:{name}")
