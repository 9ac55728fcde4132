"""Helpers shared by the scale runs: timing, temporary ledgers, result tables."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg

from ledger.log import Ledger
from ledger.settings import LedgerSettings

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

REPO = Path(__file__).resolve().parents[1]


def seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def best_of(runs: int, work: Callable[[], object]) -> float:
    return min(seconds(work) for _ in range(runs))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def postgres_schema(prefix: str, hex_digits: int = 10) -> Iterator[str]:
    """A URL whose connections land in a fresh schema of the local test database, dropped
    after (the tests' ``pg_url`` fixture uses it too)."""
    schema = f"{prefix}{uuid.uuid4().hex[:hex_digits]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def temporary_ledger(kind: str, **settings: object) -> Iterator[Ledger]:
    """A fresh ledger on a SQLite file in a temp dir, or in a fresh PostgreSQL schema."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        else:
            url = stack.enter_context(postgres_schema("bench_"))
        ledger = Ledger.open(
            LedgerSettings(data_dir=Path(tmp) / "data", database_url=url, **settings)  # type: ignore[arg-type]
        )
        try:
            yield ledger
        finally:
            ledger.close()


def table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """A Markdown table, as pasted into the README."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_process(
    data_dir: Path, env: dict[str, str], extra: list[str], ready: str, *, start_timeout: float
) -> Iterator[str]:
    """``consent-ledger serve`` on a free loopback port, its log beside the data dir; yields
    its base URL once ``ready`` answers 200, and stops it (TERM, then KILL) after."""
    port = free_port()
    init = [sys.executable, "-m", "consent_api.cli", "init", "--data-dir", str(data_dir)]
    if not (data_dir / "log.key").exists():  # only init creates a platform
        subprocess.run(init, cwd=REPO, env=env, check=True, capture_output=True)
    command = [sys.executable, "-m", "consent_api.cli", "serve", "--data-dir", str(data_dir)]
    command += ["--port", str(port), "--log-level", "warning", *extra]
    log_path = data_dir.parent / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, start_new_session=True, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(url + ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
