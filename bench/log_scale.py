"""Scale runs of the log (issue 3): append rate, proof time as the log grows, tree building.

Every figure is reported beside a baseline measured in the same process, as a ratio: the
machines here are noisy, so absolute times from one run mean little on their own.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hashing import CompactRange, leaf_hash, merkle_root
from ledger.demo import synthetic_events
from ledger.events import EncodedEvent, encode_event
from ledger.log import Ledger
from ledger.progress import Progress

from .common import best_of, median, percentile, seconds, temporary_ledger


def append_rate(kind: str, count: int, batch: int) -> dict[str, Any]:
    """Events per second through ``append_many`` (encode, hash, sequence, commit)."""
    events = list(synthetic_events(count))
    encoded = [encode_event(k, d, max_bytes=1 << 16) for k, d in events]
    sha = best_of(3, lambda: [hashlib.sha256(b"\0" + e.leaf_data).digest() for e in encoded])
    floor = _raw_insert_seconds(encoded) if kind == "sqlite" else None
    with temporary_ledger(kind) as ledger:
        took = seconds(
            lambda: [ledger.append_many(events[i : i + batch]) for i in range(0, count, batch)]
        )
        assert ledger.tree_size() == count
    rate = count / took
    row: dict[str, Any] = {
        "database": kind,
        "events": count,
        "batch": batch,
        "events_per_s": round(rate),
        "sha256_per_s": round(count / sha),
        "ratio_to_sha256": round(rate / (count / sha), 4),
    }
    if floor is not None:
        row["raw_insert_per_s"] = round(count / floor)
        row["ratio_to_raw_insert"] = round(rate / (count / floor), 3)
    return row


def _raw_insert_seconds(encoded: list[EncodedEvent]) -> float:
    """The storage floor: the same leaf rows written by bare sqlite3, no tree, same pragmas."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE leaf (i INTEGER PRIMARY KEY, kind TEXT, data BLOB, hash BLOB)")
        rows = [(i, e.kind, e.leaf_data, e.leaf_hash) for i, e in enumerate(encoded)]

        def write() -> None:
            for start in range(0, len(rows), 10_000):
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO leaf VALUES (?, ?, ?, ?)", rows[start : start + 10_000]
                )
                conn.execute("COMMIT")

        took = seconds(write)
        conn.close()
    return took


def fill(ledger: Ledger, count: int) -> None:
    """Grow a ledger to ``count`` leaves with small, distinct events, showing progress."""
    progress = Progress(f"filling {count:,} leaves", total=count)
    batch = 50_000
    for start in range(ledger.tree_size(), count, batch):
        end = min(count, start + batch)
        ledger.append_encoded(
            [
                ledger.encode("access.decided", {"n": n, "decision": "permit"})
                for n in range(start, end)
            ]
        )
        progress.advance(end - start)
    progress.finish()


def proof_times(sizes: list[int], queries: int = 2000) -> list[dict[str, Any]]:
    """Median and p99 time of inclusion and consistency proofs at each log size."""
    rows = []
    rng = random.Random(5)
    with temporary_ledger("sqlite") as ledger:
        for size in sorted(sizes):
            fill(ledger, size)
            inclusion, consistency = [], []
            for _ in range(queries):
                index = rng.randrange(size)
                inclusion.append(seconds(lambda i=index, s=size: ledger.inclusion_proof(i, s)))
                older = rng.randrange(1, size)
                consistency.append(seconds(lambda o=older, s=size: ledger.consistency_proof(o, s)))
            rows.append(
                {
                    "leaves": size,
                    "inclusion_median_ms": round(1000 * median(inclusion), 3),
                    "inclusion_p99_ms": round(1000 * percentile(inclusion, 0.99), 3),
                    "consistency_median_ms": round(1000 * median(consistency), 3),
                    "consistency_p99_ms": round(1000 * percentile(consistency, 0.99), 3),
                }
            )
    base = rows[0]
    for row in rows:
        row["inclusion_vs_smallest"] = round(
            row["inclusion_median_ms"] / base["inclusion_median_ms"], 2
        )
        row["consistency_vs_smallest"] = round(
            row["consistency_median_ms"] / base["consistency_median_ms"], 2
        )
    return rows


def tree_build(count: int) -> dict[str, Any]:
    """Building the tree of ``count`` entries: ours against pymerkle, in the same process."""
    from pymerkle import InmemoryTree

    rng = random.Random(11)
    entries = [rng.randbytes(32) for _ in range(count)]

    def ours() -> bytes:
        # What the ledger runs: the compact range, giving every node to store, not just a root.
        tree = CompactRange()
        tree.extend_rows([leaf_hash(e) for e in entries])
        return tree.root()

    def ours_root() -> bytes:
        return merkle_root([leaf_hash(e) for e in entries])

    def theirs() -> bytes:
        tree = InmemoryTree(algorithm="sha256")
        for entry in entries:
            tree.append_entry(entry)
        root: bytes = tree.get_root()
        return root

    ours_s = best_of(3, ours)
    root_s = best_of(3, ours_root)
    theirs_s = seconds(theirs)
    assert ours() == ours_root() == theirs()
    return {
        "entries": count,
        "compact_range_s": round(ours_s, 3),
        "merkle_root_s": round(root_s, 3),
        "pymerkle_s": round(theirs_s, 3),
        "speedup_compact_range": round(theirs_s / ours_s, 1),
        "speedup_merkle_root": round(theirs_s / root_s, 1),
    }
