"""The ``consent-ledger`` command: append, checkpoint, prove, verify offline, clear failures."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ledger.cli import main
from tests.paths import REPO


class Cli:
    def __init__(
        self,
        data_dir: Path,
        db_url: str,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.flags = [
            "--data-dir",
            str(data_dir),
            "--database-url",
            db_url,
            "--origin",
            "cli.test/log",
        ]
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def run(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.capsys.readouterr()
        self.monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err

    def ledger(self, command: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
        # Options of the log go right after the command (before a sub-command such as "inclusion").
        return self.run(command, *self.flags, *args, stdin=stdin)


@pytest.fixture
def cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    return Cli(tmp_path / "data", db_url, capsys, monkeypatch)


def events(count: int, start: int = 0) -> str:
    return "".join(
        json.dumps({"kind": "consent.granted", "data": {"consent_id": f"c-{n}"}}) + "\n"
        for n in range(start, start + count)
    )


def test_append_checkpoint_prove_and_verify(cli: Cli, tmp_path: Path) -> None:
    code, out, _ = cli.ledger("init")
    assert code == 0
    vkey = json.loads(out)["public_key"]
    key_file = tmp_path / "log.vkey"
    key_file.write_text(vkey)

    code, out, _ = cli.ledger("append", "--batch", "7", stdin=events(20))
    assert (code, json.loads(out)["tree_size"]) == (0, 20)
    _, old_note, _ = cli.ledger("checkpoint")
    (tmp_path / "old.txt").write_text(old_note)
    cli.ledger("append", stdin=events(13, 20))
    _, new_note, _ = cli.ledger("checkpoint")
    (tmp_path / "new.txt").write_text(new_note)

    code, out, _ = cli.ledger("prove", "inclusion", "--leaf-index", "17", "--tree-size", "33")
    assert code == 0
    proof = json.loads(out)
    assert proof["event"]["data"]["consent_id"] == "c-17"
    (tmp_path / "inc.json").write_text(out)
    code, out, _ = cli.ledger("prove", "consistency", "--size1", "20", "--size2", "33")
    (tmp_path / "con.json").write_text(out)

    verify = ["verify", "--key", str(key_file), "--checkpoint", str(tmp_path / "new.txt")]
    assert cli.run(*verify, "checkpoint")[0] == 0
    code, out, err = cli.run(*verify, "inclusion", "--proof", str(tmp_path / "inc.json"))
    assert (code, json.loads(out)["leaf_index"]) == (0, 17), err
    code, out, err = cli.run(
        *verify,
        "consistency",
        "--proof",
        str(tmp_path / "con.json"),
        "--old",
        str(tmp_path / "old.txt"),
    )
    assert code == 0, err

    # Tampered documents fail with exit 1 and say what did not match.
    proof["proof"][0] = base64.b64encode(bytes(32)).decode()
    (tmp_path / "bad.json").write_text(json.dumps(proof))
    code, _, err = cli.run(*verify, "inclusion", "--proof", str(tmp_path / "bad.json"))
    assert code == 1
    assert "verification failed" in err
    proof = json.loads((tmp_path / "inc.json").read_text())
    proof["event"]["data"]["consent_id"] = "c-18"
    (tmp_path / "bad.json").write_text(json.dumps(proof))
    assert cli.run(*verify, "inclusion", "--proof", str(tmp_path / "bad.json"))[0] == 1
    (tmp_path / "forged.txt").write_text(new_note.replace("33\n", "34\n", 1))
    forged = ["verify", "--key", str(key_file), "--checkpoint", str(tmp_path / "forged.txt")]
    assert cli.run(*forged, "checkpoint")[0] in (1, 2)


def test_a_bad_line_appends_nothing(cli: Cli) -> None:
    assert cli.ledger("init")[0] == 0
    cli.ledger("append", stdin=events(3))
    bad = events(5) + "{not json\n" + events(5)
    code, out, err = cli.ledger("append", stdin=bad)
    assert code == 2
    assert "event 6" in err
    assert out == ""
    unknown = events(2) + json.dumps({"kind": "nope", "data": {}}) + "\n"
    code, _, err = cli.ledger("append", stdin=unknown)
    assert (code, "unknown event kind" in err) == (2, True)
    code, out, _ = cli.ledger("init")
    assert json.loads(out)["tree_size"] == 3


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli.ledger("init")[0] == 0
    assert cli.ledger("prove", "inclusion", "--leaf-index", "0")[0] == 2  # empty log
    assert cli.run("verify", "inclusion", "--key", "k", "--checkpoint", "c")[0] == 2
    assert cli.run("no-such-command")[0] == 2
    assert cli.ledger("append", "--batch", "0", stdin=events(1))[0] == 2


def test_console_script_has_help_for_every_command() -> None:
    exe = shutil.which("consent-ledger", path=str(REPO / ".venv" / "bin"))
    assert exe is not None
    for command in ["", "init", "key", "append", "checkpoint", "prove", "verify", "demo"]:
        args = [exe, *([command] if command else []), "--help"]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        assert result.returncode == 0
        assert "usage: consent-ledger" in result.stdout


def test_verify_refuses_a_log_key_of_small_order(cli: Cli, tmp_path: Path) -> None:
    """A checkpoint "signed" under the identity point verifies with OpenSSL alone, for any
    root: ``verify`` refuses the key itself (hashing.ed25519), as bad input (exit 2)."""
    import base64
    import hashlib

    from hashing import Checkpoint, leaf_hash

    name, key = "cli.test/log", b"\x01" + (1).to_bytes(32, "little")
    key_hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    (tmp_path / "weak.vkey").write_text(f"{name}+{key_hash.hex()}+{base64.b64encode(key).decode()}")
    forged = base64.b64encode(key_hash + (1).to_bytes(32, "little") + bytes(32)).decode()
    body = Checkpoint(name, 10**6, leaf_hash(b"anything")).body().decode()
    (tmp_path / "forged.txt").write_text(f"{body}\n\u2014 {name} {forged}\n")
    verify = ["verify", "--key", str(tmp_path / "weak.vkey"), "--checkpoint"]
    code, _, err = cli.run(*verify, str(tmp_path / "forged.txt"), "checkpoint")
    assert code == 2, err
    assert "small order" in err
