"""A real ``consent-ledger serve`` process on a free loopback port, for black-box tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.paths import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        attackers_build: bool = False,
    ) -> None:
        """``attackers_build``: serve with the service's checks of its storage taken out
        (``tests.attackers_build``), as an operator who edited the database would."""
        self.data_dir = data_dir
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        program = (
            [sys.executable, "-m", "tests.attackers_build"]
            if attackers_build
            else [str(REPO / ".venv" / "bin" / "consent-ledger")]
        )
        command = [
            *program,
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        self.log = data_dir.parent / f"server-{self.port}.log"
        if not (data_dir / "log.key").exists():  # only init creates a platform; serve refuses
            subprocess.run(
                [*program, "init", "--data-dir", str(data_dir)],
                cwd=REPO,
                env={**os.environ, **(env or {})},
                capture_output=True,
                check=True,
            )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/v1/log/key", timeout=2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)

    def cli(self, *args: str) -> str:
        command = [sys.executable, "-m", "consent_api.cli", *args, "--data-dir", str(self.data_dir)]
        env = {**os.environ, **self.env}  # the same database as the server's
        return subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, check=True
        ).stdout

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
