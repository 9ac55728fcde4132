"""A database that went back in time, was forked or lost its key is refused, on both databases.

Each scenario is a real copy of the database put back (as a restored backup is), a hand edit,
or a deleted file; the log's witness of its newest signed checkpoint lives in the data dir.
"""

from __future__ import annotations

import io
import json

import pytest

from ledger.cli import main
from ledger.errors import KeyFileError, RollbackError
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from tests.db_copies import copy_aside, put_back


def grow(ledger: Ledger, count: int, decision: str = "permit") -> range:
    start = ledger.tree_size()
    return ledger.append_many(
        ("access.decided", {"request_id": f"r-{n}", "decision": decision})
        for n in range(start, start + count)
    )


def run_cli(
    settings: LedgerSettings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    flags = ["--data-dir", str(settings.data_dir), "--database-url"]
    flags += [settings.resolved_database_url(), "--origin", settings.origin]
    code = main([args[0], *flags, *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def rolled_back(settings: LedgerSettings) -> LedgerSettings:
    """A log sealed at 10, copied aside, grown and sealed at 15, then the copy put back."""
    ledger = Ledger.open(settings)
    grow(ledger, 10)
    ledger.checkpoint()
    copy_aside(settings.resolved_database_url(), "backup")
    grow(ledger, 5)
    ledger.checkpoint()
    ledger.close()
    put_back(settings.resolved_database_url(), "backup")
    return settings


def test_a_restored_old_backup_is_refused_at_open(rolled_back: LedgerSettings) -> None:
    with pytest.raises(RollbackError, match=r"holds 10 leaves.*size 15.*--accept-rollback"):
        Ledger.open(rolled_back)


def test_the_cli_refuses_it_with_a_message_and_exit_2(
    rolled_back: LedgerSettings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = '{"kind": "access.decided", "data": {"request_id": "x"}}\n'
    code, _, err = run_cli(rolled_back, capsys, monkeypatch, "append", stdin=line)
    assert code == 2
    assert "restored from an older backup" in err
    ledger = Ledger.open_unchecked(rolled_back)
    assert ledger.tree_size() == 10  # leaf index 10 was handed out before: not reused
    ledger.close()


def test_a_fork_built_on_the_old_copy_is_refused(rolled_back: LedgerSettings) -> None:
    # What the service did before it kept a witness: it sequenced on the old copy, past 15.
    forked = Ledger.open_unchecked(rolled_back)
    grow(forked, 7, "deny")
    forked.close()
    with pytest.raises(RollbackError, match="not the one this log signed"):
        Ledger.open(rolled_back)


def test_a_rollback_under_a_running_log_stops_its_appends(settings: LedgerSettings) -> None:
    ledger = Ledger.open(settings)
    grow(ledger, 10)
    copy_aside(settings.resolved_database_url(), "backup")
    grow(ledger, 5)
    ledger.checkpoint()
    put_back(settings.resolved_database_url(), "backup")
    with pytest.raises(RollbackError, match="went back to 10 leaves"):
        grow(ledger, 1)
    ledger.close()


def test_a_forked_tree_is_never_signed(settings: LedgerSettings) -> None:
    ledger = Ledger.open(settings)
    grow(ledger, 10)
    copy_aside(settings.resolved_database_url(), "backup")
    grow(ledger, 5)
    ledger.checkpoint()
    ledger.close()
    put_back(settings.resolved_database_url(), "backup")
    forked = Ledger.open_unchecked(settings)
    grow(forked, 9, "deny")  # 19 leaves whose first 15 are not the signed 15
    with pytest.raises(RollbackError, match="does not extend"):
        forked.checkpoint()
    assert forked.store.checkpoint_at(19) is None
    forked.close()


def test_recover_accept_rollback_is_explicit_and_logged(
    rolled_back: LedgerSettings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run_cli(rolled_back, capsys, monkeypatch, "recover")
    assert code == 2
    assert "--accept-rollback" in err
    code, out, err = run_cli(rolled_back, capsys, monkeypatch, "recover", "--accept-rollback")
    assert code == 0, err
    report = json.loads(out)
    assert (report["database_tree_size"], report["witnessed_tree_size"]) == (10, 15)
    assert report["lost_leaves"] == 5
    assert "rollback accepted" in err
    kept = rolled_back.data_dir / report["old_witness_kept_at"].rsplit("/", 1)[-1]
    assert kept.read_text().startswith(f"{rolled_back.origin}\n15\n")
    ledger = Ledger.open(rolled_back)
    assert grow(ledger, 1).start == 10
    notes = [
        name
        for name in ("rollback",)
        if ledger.store.get_meta(f"rollback-accepted:{int(report['at'])}")
    ]
    assert notes == ["rollback"]
    ledger.close()


def test_a_lost_witness_is_rebuilt_from_the_database(settings: LedgerSettings) -> None:
    ledger = Ledger.open(settings)
    grow(ledger, 4)
    ledger.checkpoint()
    ledger.close()
    ledger.witness.path.unlink()
    reopened = Ledger.open(settings)
    witnessed = reopened.witness.read()
    assert witnessed is not None
    assert witnessed.tree_size == 4
    reopened.close()


def test_a_hand_edited_witness_is_refused(settings: LedgerSettings) -> None:
    ledger = Ledger.open(settings)
    grow(ledger, 4)
    ledger.checkpoint()
    ledger.close()
    note = ledger.witness.path.read_text()
    ledger.witness.path.write_text(note.replace("\n4\n", "\n3\n", 1))
    with pytest.raises(Exception, match="not hold a checkpoint signed by this log's key"):
        Ledger.open(settings)


def test_a_missing_key_is_refused_before_anything_is_written(settings: LedgerSettings) -> None:
    ledger = Ledger.open(settings)
    grow(ledger, 3)
    ledger.close()
    settings.key_path.unlink()
    with pytest.raises(KeyFileError, match=r"signing key .*log.key is missing"):
        Ledger.open(settings)
    assert not settings.key_path.exists()
    assert sorted(p.name for p in settings.data_dir.iterdir() if "key" in p.name) == []
