"""Sealing with three local witnesses (issue 19) against sealing alone, in one run.

Each round appends the same events to two logs, seals both, and for the witnessed one waits
until all three ``consent-ledger witness`` processes (on loopback, each fsyncing its state)
have cosigned, with a consistency proof from the size each cosigned before. Rounds alternate
between the two logs, so both see the same machine. The figure is the p99 added by witnessing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hashing import parse_policy
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from ledger.witness_state import load_or_create_cosigner
from ledger.witnessing import Witnessing

from .common import REPO, free_port, median, percentile, seconds
from .log_scale import fill


def _start_witness(data_dir: Path, name: str, log_key: str) -> tuple[subprocess.Popen[bytes], str]:
    vkey = load_or_create_cosigner(data_dir / "witness.key", name).verifier().to_vkey()
    port, ready = free_port(), data_dir / "ready"
    command = [sys.executable, "-m", "ledger.cli", "witness", "--data-dir", str(data_dir)]
    command += ["--name", name, "--log-key", log_key, "--port", str(port)]
    command += ["--ready-file", str(ready)]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"witness w{name[1]} {vkey} http://127.0.0.1:{port}"


def seal_latency(rounds: int = 300, events_per_round: int = 10) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-witness-") as tmp:
        root = Path(tmp)
        plain = Ledger.open(LedgerSettings(data_dir=root / "plain", origin="bench.test/plain"))
        witnessed = Ledger.open(LedgerSettings(data_dir=root / "witnessed", origin="bench.test/w"))
        processes = []
        sender = None
        try:
            lines = [f"log {witnessed.verifier.to_vkey()}"]
            for i in range(3):
                process, line = _start_witness(
                    root / f"w{i}", f"w{i}.bench/witness", witnessed.verifier.to_vkey()
                )
                processes.append(process)
                lines.append(line)
            deadline = time.monotonic() + 120
            while not all((root / f"w{i}" / "ready").exists() for i in range(3)):
                if time.monotonic() > deadline:
                    raise RuntimeError("the witnesses did not start")
                time.sleep(0.05)
            policy = parse_policy("\n".join([*lines, "group g all w0 w1 w2", "quorum g", ""]))
            sender = Witnessing(witnessed, policy)
            alone: list[float] = []
            with_witnesses: list[float] = []

            def witness_round() -> None:
                assert sender is not None
                if sender.witness(witnessed.checkpoint()) != 3:
                    raise RuntimeError(f"a witness did not cosign: {sender.status}")

            for n in range(rounds + 5):
                fill(plain, plain.tree_size() + events_per_round)
                fill(witnessed, witnessed.tree_size() + events_per_round)
                a, b = seconds(plain.checkpoint), seconds(witness_round)
                if n >= 5:  # the first rounds open connections and warm caches
                    alone.append(a)
                    with_witnesses.append(b)
        finally:
            if sender is not None:
                sender.close()
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
            plain.close()
            witnessed.close()
    ms = 1000.0
    return {
        "rounds": rounds,
        "witnesses": 3,
        "seal_p50_ms": round(median(alone) * ms, 2),
        "seal_p99_ms": round(percentile(alone, 0.99) * ms, 2),
        "witnessed_p50_ms": round(median(with_witnesses) * ms, 2),
        "witnessed_p99_ms": round(percentile(with_witnesses, 0.99) * ms, 2),
        "p99_added_ms": round((percentile(with_witnesses, 0.99) - percentile(alone, 0.99)) * ms, 2),
    }
