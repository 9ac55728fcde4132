"""Each log has a name of its own, signed from the start; proofs are for signed sizes; a
database from before tiles is refused until migrated (issue 16, items 5 and 6)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hashing import NoteVerifier, open_checkpoint
from ledger.anchoring import log_id_for
from ledger.cli import main
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from tests.paths import REPO

BEFORE_TILES = "6a06152"  # the last commit before format 2


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_each_init_names_a_log_of_its_own_and_signs_its_empty_tree(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = ["--data-dir", str(tmp_path / "a"), "--database-url", db_url]
    second = ["--data-dir", str(tmp_path / "b")]  # SQLite in its data dir
    code, out, _ = run(capsys, "init", *first)
    assert code == 0
    a = json.loads(out)
    b = json.loads(run(capsys, "init", *second)[1])
    assert a["origin"] != b["origin"]
    assert log_id_for(a["origin"]) != log_id_for(b["origin"])
    for created in (a, b):
        assert re.fullmatch(r"consent-ledger/[0-9a-f]{16}", created["origin"])
        verifier = NoteVerifier.from_vkey(created["public_key"])
        assert verifier.name == created["origin"]  # the key carries the name too
        checkpoint = open_checkpoint(created["checkpoint"], verifier, created["origin"])
        assert checkpoint.tree_size == 0
    # Pinned: opened again, the same name; the log's own witness file is under it too.
    assert json.loads(run(capsys, "init", *first)[1])["origin"] == a["origin"]
    witnessed = (tmp_path / "a" / "latest-checkpoint").read_text()
    assert witnessed.startswith(a["origin"] + "\n0\n")
    code, _, err = run(capsys, "key", *first, "--origin", "other.example/log")
    assert code == 2
    assert a["origin"] in err
    assert "a new name means a new log" in err


def test_an_origin_given_at_init_names_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--data-dir", str(tmp_path / "d"), "--origin", "ledger.city.example/tlog"]
    assert json.loads(run(capsys, "init", *flags)[1])["origin"] == "ledger.city.example/tlog"
    assert json.loads(run(capsys, "init", *flags)[1])["origin"] == "ledger.city.example/tlog"


def test_proofs_default_to_the_newest_signed_size(
    settings: LedgerSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--data-dir", str(settings.data_dir), "--database-url", str(settings.database_url)]
    ledger = Ledger.open(settings)
    try:
        ledger.append_many(("consent.granted", {"consent_id": f"c-{n}"}) for n in range(5))
        note = ledger.checkpoint().note
        ledger.append_many(("consent.granted", {"consent_id": f"c-{n}"}) for n in range(5, 8))
        vkey = ledger.verifier.to_vkey()
    finally:
        ledger.close()
    (tmp_path / "cp.txt").write_text(note)  # 8 leaves, 5 signed
    code, out, _ = run(capsys, "prove", "inclusion", "--leaf-index", "2", *flags)
    assert code == 0
    assert json.loads(out)["tree_size"] == 5
    (tmp_path / "proof.json").write_text(out)
    verify = ["verify", "inclusion", "--key", vkey, "--checkpoint", str(tmp_path / "cp.txt")]
    assert run(capsys, *verify, "--proof", str(tmp_path / "proof.json"))[0] == 0
    code, _, err = run(capsys, "prove", "inclusion", "--leaf-index", "6", *flags)
    assert code == 2
    assert "not in a signed checkpoint yet" in err
    code, out, _ = run(
        capsys, "prove", "inclusion", "--leaf-index", "6", "--tree-size", "8", *flags
    )
    assert code == 0
    assert json.loads(out)["tree_size"] == 8
    code, out, _ = run(capsys, "prove", "consistency", "--size1", "2", *flags)
    assert code == 0
    assert json.loads(out)["size2"] == 5


def _old_code(tmp_path: Path) -> Path:
    old = tmp_path / "before-tiles"
    old.mkdir()
    archive = subprocess.run(
        ["git", "archive", BEFORE_TILES], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    return old


def _cli(code: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    env.pop("CONSENT_LEDGER_ORIGIN", None)
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        cwd=code,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_data_dir_from_before_tiles_is_refused_then_migrated(tmp_path: Path, db_url: str) -> None:
    try:
        old = _old_code(tmp_path)
    except subprocess.CalledProcessError:
        pytest.skip(f"commit {BEFORE_TILES} is not in this clone's history")
    flags = ["--data-dir", str(tmp_path / "data"), "--database-url", db_url]
    events = "".join(
        f'{{"kind":"consent.granted","data":{{"consent_id":"c-{n}"}}}}\n' for n in range(300)
    )
    assert _cli(old, "init", *flags).returncode == 0
    assert _cli(old, "append", *flags, stdin=events).returncode == 0
    assert _cli(old, "checkpoint", *flags).returncode == 0

    refused = _cli(REPO, "append", *flags, stdin=events)
    assert refused.returncode == 2
    assert "created before C2SP tiles" in refused.stderr
    assert "consent-ledger migrate" in refused.stderr
    assert "old shared default" in refused.stderr
    assert _cli(REPO, "tiles", "export", str(tmp_path / "t"), *flags).returncode == 2

    migrated = _cli(REPO, "migrate", *flags)
    assert migrated.returncode == 0, migrated.stderr
    report = json.loads(migrated.stdout)
    assert report["migrated"] is True
    assert (report["origin"], report["signed_tree_size"]) == ("consent-ledger.local/log", 300)
    assert report["tiles_checked"] == 2 + 1  # level 0: one full, one partial; level 1
    assert "warning" in migrated.stderr
    assert "old shared default" in migrated.stderr

    assert _cli(REPO, "append", *flags, stdin=events).returncode == 0
    exported = _cli(REPO, "tiles", "export", str(tmp_path / "t"), *flags)
    assert exported.returncode == 0, exported.stderr
    again = json.loads(_cli(REPO, "migrate", *flags).stdout)
    assert again["migrated"] is False
