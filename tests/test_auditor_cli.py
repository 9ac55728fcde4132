"""The ``auditor`` command against a real server process: exit codes, progress, JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.cli import main
from tests.live_server import LiveServer, free_port
from tests.paths import REPO
from tests.test_auditor_deployment import ORIGIN, Deployment, deployment, pristine

__all__ = ["deployment", "pristine"]  # fixtures, imported for pytest to find

SERVER_ENV = {"CONSENT_LEDGER_ORIGIN": ORIGIN, "CONSENT_API_ANCHOR_IN_BACKGROUND": "false"}


def args(dep: Deployment, api: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--api",
        api,
        "--chain-dir",
        str(dep.chain_dir),
        "--contract",
        dep.contract,
        "--state",
        str(tmp_path / "state"),
        "--json",
        str(tmp_path / "report.json"),
        *extra,
    ]


def test_exit_codes_and_report_against_a_live_server(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = LiveServer(deployment.root / "data", env=SERVER_ENV)
    try:
        assert main(args(deployment, server.url, tmp_path)) == 0
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["ok"] is True
        assert report["verified"]["tree_size"] == 32
        err = capsys.readouterr().err
        assert "no finding" in err
        assert "hashing leaves 0..32" in err

        with deployment.db() as conn:  # the running service now serves a rewritten leaf
            conn.execute("UPDATE leaf SET leaf_data = ? WHERE leaf_index = 4", (b"{}",))
        html_path = tmp_path / "again" / "report.html"
        again = args(
            deployment, server.url, tmp_path / "again", "--quiet", "--html", str(html_path)
        )
        assert main(again) == 1
        report = json.loads((tmp_path / "again" / "report.json").read_text())
        page = html_path.read_text(encoding="utf-8")  # the same report, as a page
        assert page.startswith("<!DOCTYPE html>") or page.lower().startswith("<!doctype html>")
        assert "leaves-mismatch" in page
        assert report["ok"] is False
        assert {f["code"] for f in report["findings"]} == {"leaves-mismatch"}
        assert all(f["leaf_indices"] == [4] for f in report["findings"])
        out = capsys.readouterr()
        assert out.out.startswith("leaves-mismatch\t")
        assert out.err == ""
    finally:
        server.stop()
    assert main(args(deployment, server.url, tmp_path / "down")) == 2  # the service is gone
    assert "auditor: error:" in capsys.readouterr().err


def test_cannot_audit_is_exit_2(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    assert main(args(deployment, unreachable, tmp_path)) == 2
    assert "auditor: error:" in capsys.readouterr().err
    missing_chain = args(deployment, unreachable, tmp_path)
    missing_chain[3] = str(tmp_path / "no-chain")
    assert main(missing_chain) == 2
    assert "no embedded chain" in capsys.readouterr().err
    not_a_registry = args(deployment, unreachable, tmp_path)
    not_a_registry[5] = "0x" + "11" * 20
    assert main(not_a_registry) == 2
    assert "no AnchorRegistry" in capsys.readouterr().err
    assert main(["--api", unreachable]) == 2  # usage
    assert main(["--help"]) == 0


def test_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "auditor.cli", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "--contract" in done.stdout
