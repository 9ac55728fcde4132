"""Only ``consent-ledger init`` creates a platform: every other command refuses a data dir (or a
database) that was never initialised, so a mistyped ``--data-dir`` cannot start a new, empty
platform with fresh keys. Run as a person runs them: the installed command, real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_process import consent_ledger

EVENT = '{"kind": "consent.granted", "data": {"consent_id": "c-1"}}\n'

COMMANDS = {
    "key": ["key"],
    "append": ["append"],
    "checkpoint": ["checkpoint"],
    "prove": ["prove", "inclusion", "--leaf-index", "0"],
    "anchor": ["anchor"],
    "receipt": ["receipt", "--leaf-index", "0"],
    "cosign": ["cosign", "--seal"],
    "fsck": ["fsck"],
    "recover": ["recover", "--accept-rollback"],
    "issue-token": ["issue-token", "--role", "admin", "--subject", "ops"],
    "serve": ["serve", "--port", "0"],
    "institution": ["institution", "list"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_mistyped_data_dir_is_refused(tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "vra"
    ran = consent_ledger(*command, "--data-dir", typo, stdin=EVENT)
    assert ran.code == 2, ran
    assert f"{typo}" in ran.err, ran.err
    assert "consent-ledger init" in ran.err
    assert "--data-dir" in ran.err
    assert not typo.exists(), "nothing may be created in a data dir that was never initialised"


def test_the_default_data_dir_is_named(tmp_path: Path) -> None:
    ran = consent_ledger("key", cwd=tmp_path)
    assert ran.code == 2
    assert "no platform in var" in ran.err, ran.err
    assert not (tmp_path / "var").exists()


def test_a_database_that_holds_no_log_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert consent_ledger("init", "--data-dir", data).code == 0
    other = tmp_path / "other.db"
    ran = consent_ledger("key", "--data-dir", data, "--database-url", f"sqlite:///{other}")
    assert ran.code == 2
    assert f"{other}" in ran.err, ran.err
    assert "holds no log" in ran.err
    assert "--database-url" in ran.err
    assert not other.exists()


def test_after_init_the_commands_work(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init = consent_ledger("init", "--data-dir", data)
    assert init.code == 0, init.err
    key = consent_ledger("key", "--data-dir", data)
    assert (key.code, key.out.strip()) == (0, json.loads(init.out)["public_key"])
    appended = consent_ledger("append", "--data-dir", data, stdin=EVENT)
    assert appended.code == 0, appended.err
    assert json.loads(appended.out)["tree_size"] == 1
