"""Real ``consent-ledger witness`` processes on free loopback ports, and forks of a log."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledger.log import Ledger
from ledger.settings import LedgerSettings
from ledger.witness_state import load_or_create_cosigner
from tests.live_server import free_port
from tests.paths import REPO


def cli(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consent_api.cli", *args],
        cwd=REPO,
        env={**os.environ},
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


class WitnessProcess:
    """One witness: its own key and state in ``data_dir``; survives stop/kill and start."""

    def __init__(
        self, data_dir: Path, name: str, log_keys: list[str], options: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = data_dir
        self.options = options  # more command-line flags, e.g. the server's limits
        self.name = name
        self.short_name = name.split(".")[0]  # its name in policies
        self.log_keys = log_keys
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The key the process will load (the CLI's own loader, run here to save a start-up).
        self.verifier = load_or_create_cosigner(data_dir / "witness.key", name).verifier()
        self.vkey = self.verifier.to_vkey()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> WitnessProcess:
        self.ready = self.data_dir / "ready"
        self.ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "ledger.cli", "witness"]
        command += ["--data-dir", str(self.data_dir), "--name", self.name]
        command += [
            "--port",
            str(self.port),
            "--ready-file",
            str(self.ready),
            "--log-level",
            "info",
        ]
        for key in self.log_keys:
            command += ["--log-key", key]
        command += self.options
        log = (self.data_dir / "witness.log").open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.wait() if wait else self

    def wait(self) -> WitnessProcess:
        assert self.process is not None
        deadline = time.monotonic() + 90
        while not self.ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.data_dir / "witness.log").read_text())
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        self.process = None

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.process = None


def start_all(witnesses: list[WitnessProcess]) -> list[WitnessProcess]:
    for witness in witnesses:
        witness.start(wait=False)
    return [witness.wait() for witness in witnesses]


def policy_text(log: Ledger, witnesses: list[WitnessProcess], threshold: str) -> str:
    lines = [f"log {log.verifier.to_vkey()}"]
    lines += [f"witness {w.short_name} {w.vkey} {w.url}" for w in witnesses]
    lines.append(f"group witnesses {threshold} {' '.join(w.short_name for w in witnesses)}")
    lines.append("quorum witnesses")
    return "\n".join(lines) + "\n"


def open_log(data_dir: Path, origin: str = "witness.test/log") -> Ledger:
    return Ledger.open(LedgerSettings(data_dir=data_dir, origin=origin))


def fork_log(ledger: Ledger, fork_dir: Path) -> Ledger:
    """A copy of the log, same key and leaves, that will go its own way from here."""
    source = ledger.settings.data_dir
    ledger.store.engine.dispose()  # nothing is being written while the files are copied
    shutil.copytree(source, fork_dir)  # the database with its WAL, and the key
    return open_log(fork_dir, ledger.origin)


def append(ledger: Ledger, count: int, tag: str) -> None:
    ledger.append_many(
        ("consent.granted", {"consent_id": f"{tag}-{n}", "subject": f"s-{tag}"})
        for n in range(count)
    )
