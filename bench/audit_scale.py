"""Audit speed (issue 6): a full audit of N events and an incremental one of 1k new events.

A deployment of N events in the service's exact shapes (``bench.audit_world``) is appended in
batches, sealed and anchored on the embedded chain every ``anchor_every`` events, and served by
a real ``consent-ledger serve`` process; the auditor then runs in this process through its CLI
(``auditor.cli.main``), as a regulator would run it: every leaf fetched over HTTP, rehashed,
checked against the signed and anchored roots, and replayed when the auditor replays. Then 1k
more events are appended, sealed and anchored, and the auditor runs again from its state.

Beside the events per second stands the raw SHA-256 rate over the same leaf bytes (the RFC 9162
leaf hash, hashlib, this process, this run): the machines are noisy, the ratio less so.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditor.cli import main as auditor_main
from consent_api.records import PROJECTION_VERSION, PROJECTION_VERSION_MARK, Records
from ledger.anchoring import Anchorer
from ledger.log import Ledger
from ledger.progress import Progress
from ledger.settings import LedgerSettings

from .audit_world import World
from .common import serve_process

ORIGIN = "bench.audit/log"
BATCH = 50_000


def audit_rate(
    count: int, *, increment: int = 1000, increments: int = 3, anchor_every: int = 100_000
) -> dict[str, Any]:
    """Full audit of ``count`` events, then ``increments`` incremental audits of ``increment``
    more events each (the median one is reported, and the slowest)."""
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        root = Path(tmp)
        settings = LedgerSettings(
            data_dir=root / "data",
            origin=ORIGIN,
            checkpoint_every=10**9,  # the bench seals and anchors itself
            checkpoint_interval=10**6,
        )
        world = World(count + increments * increment)
        contract = grow(settings, world, count, anchor_every)
        sha_s = sha256_seconds(settings, count)
        state = root / "auditor-state"
        with served(settings) as url:
            full_s, full = audit(url, settings, contract, state, root / "full.json")
            runs = []  # a few incremental runs, each on new events: one alone is too noisy here
            for _ in range(increments):
                grow(settings, world, increment, anchor_every)
                runs.append(audit(url, settings, contract, state, root / "incremental.json"))
    more_s, more = sorted(runs, key=lambda run: run[0])[len(runs) // 2]  # the median run
    sha_rate = count / sha_s
    full_rate = count / full_s
    more_rate = increment / more_s
    return {
        "events": count,
        "anchored_every": anchor_every,
        "full_s": round(full_s, 3),
        "full_events_per_s": round(full_rate),
        "full_ok": full["ok"],
        "full_leaves_hashed": full["stats"]["leaves_hashed"],
        "replayed": "lawfulness" in full,
        "incremental_events": increment,
        "incremental_s": round(more_s, 3),
        "incremental_events_per_s": round(more_rate),
        "incremental_slowest_s": round(max(run[0] for run in runs), 3),
        "incremental_ok": all(run[1]["ok"] for run in runs),
        "incremental_leaves_hashed": more["stats"]["leaves_hashed"],
        "sha256_per_s": round(sha_rate),
        "full_ratio_to_sha256": round(full_rate / sha_rate, 4),
    }


def grow(settings: LedgerSettings, world: World, count: int, anchor_every: int) -> str:
    """Append ``count`` of the world's events, sealing and anchoring every ``anchor_every``."""
    ledger = Ledger.open(settings)
    anchorer = Anchorer(ledger)
    try:
        progress = Progress(f"appending {count:,} events", total=count)
        events = world.take(count)
        done = 0
        while done < count:
            size = min(BATCH, count - done, anchor_every - ledger.tree_size() % anchor_every)
            ledger.append_encoded([ledger.encode(kind, data) for kind, data in _next(events, size)])
            done += size
            progress.advance(size)
            if ledger.tree_size() % anchor_every == 0 or done == count:
                report = anchorer.run_once(force_seal=True)
                if report.error is not None:
                    raise RuntimeError(f"anchoring failed: {report.error}")
        progress.finish()
        contract = anchorer.connect().address
        # The log endpoints read no projection: mark it complete and current, or the server
        # would project every leaf at start-up, one transaction each (the service writes these
        # rows as it appends; the auditor never reads them).
        Records.open(ledger.store).mark_complete(ledger.tree_size())
        ledger.store.set_meta(PROJECTION_VERSION_MARK, PROJECTION_VERSION)
        return contract
    finally:
        anchorer.close()
        ledger.close()


def _next(events: Iterator[tuple[str, dict[str, Any]]], size: int) -> list[tuple[str, Any]]:
    return [next(events) for _ in range(size)]


def sha256_seconds(settings: LedgerSettings, count: int) -> float:
    """Time to hash the same leaf bytes as RFC 9162 leaves with hashlib (reading not timed)."""
    ledger = Ledger.open(settings)
    took = 0.0
    try:
        for start in range(0, count, BATCH):
            rows = [
                b"\0" + leaf.leaf_data for leaf in ledger.leaves(start, min(count, start + BATCH))
            ]
            begun = time.perf_counter()
            for data in rows:
                hashlib.sha256(data).digest()
            took += time.perf_counter() - begun
    finally:
        ledger.close()
    return took


def audit(
    url: str, settings: LedgerSettings, contract: str, state: Path, report: Path
) -> tuple[float, dict[str, Any]]:
    """One run of the ``auditor`` command, in process; its wall time and its JSON report."""
    argv = ["--api", url, "--chain-dir", str(settings.chain_dir), "--contract", contract]
    argv += ["--state", str(state), "--json", str(report), "--quiet"]
    begun = time.perf_counter()
    code = auditor_main(argv)
    took = time.perf_counter() - begun
    if code not in (0, 1):
        raise RuntimeError(f"the auditor could not audit (exit {code})")
    out: dict[str, Any] = json.loads(report.read_text())
    return took, out


@contextmanager
def served(settings: LedgerSettings) -> Iterator[str]:
    """``consent-ledger serve`` on the data dir, without its background anchorer (the bench
    anchors, and the embedded chain has one holder at a time)."""
    env = {
        **os.environ,
        "CONSENT_LEDGER_ORIGIN": ORIGIN,
        "CONSENT_API_ANCHOR_IN_BACKGROUND": "false",
    }
    with serve_process(settings.data_dir, env, [], "/v1/log/key", start_timeout=120) as url:
        yield url
