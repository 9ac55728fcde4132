"""C2SP tiles (issue 16), each figure beside a baseline from the same run.

1. Appends with tile writing against appends without: the same events, batches and seals on
   two fresh SQLite logs; the one with tiles exports them (``export_tiles``: new full tiles,
   the seal's partial tiles, the checkpoint) after every seal, as ``tiles export --watch`` or
   a publisher would. Rounds alternate, best of each kept. Goal: ratio >= 0.9.
2. Bytes per second of hash tiles against ``/v1/log/leaves``, on one ``consent-ledger serve``:
   wrk (4 connections) cycles through every leaf page (1,000 leaves), then through every full
   level-0 tile (after one read of each, from storage, has cached them); bytes with headers.
   Goal: tiles >= 10x the leaves' bytes per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from hashing import TileID
from ledger.events import EncodedEvent
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from ledger.tiles import export_tiles

from .common import REPO, serve_process, temporary_ledger


def _events(ledger: Ledger, count: int) -> list[EncodedEvent]:
    # About the size of an access decision's leaf (350-400 bytes).
    return [
        ledger.encode(
            "access.decided",
            {
                "request_id": f"r-{n:012d}",
                "subject": f"{n:064x}",
                "requester": "h-city-general",
                "holder": "h-east-clinic",
                "purpose": "treatment",
                "categories": ["laboratory", "imaging"],
                "decision": "permit",
                "reason": "covered-by-consent",
                "consents": [f"c-{n % 9973:08d}"],
                "decided_at": "2026-11-26T11:46:28.123456Z",
            },
        )
        for n in range(count)
    ]


def _append_rate(count: int, batch: int, every: int, with_tiles: bool) -> float:
    with temporary_ledger("sqlite") as ledger, tempfile.TemporaryDirectory() as out:
        events = _events(ledger, count)
        start = time.perf_counter()
        for first in range(0, count, batch):
            ledger.append_encoded(events[first : first + batch])
            if (first + batch) % every == 0 or first + batch >= count:
                ledger.checkpoint()
                if with_tiles:
                    export_tiles(ledger, Path(out))
        return count / (time.perf_counter() - start)


def appends(count: int, batch: int, every: int, rounds: int) -> dict[str, Any]:
    without: list[float] = []
    with_tiles: list[float] = []
    for _ in range(rounds):
        without.append(_append_rate(count, batch, every, False))
        with_tiles.append(_append_rate(count, batch, every, True))
    return {
        "events": count,
        "batch": batch,
        "seal_every": every,
        "without_tiles_per_s": round(max(without)),
        "with_tiles_per_s": round(max(with_tiles)),
        "ratio": round(max(with_tiles) / max(without), 3),
    }


_LUA = """
local paths = {{
{paths}
}}
local position = 0
function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d\\n", summary.bytes, summary.duration,
    summary.requests, summary.errors.status))
end
"""


def _wrk(url: str, paths: list[str], seconds: int, connections: int) -> dict[str, float]:
    """wrk cycling through ``paths``: bytes (with headers) and requests per second."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA.format(paths=",\n".join(f'"{path}"' for path in paths)))
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    line = next(line for line in output.splitlines() if line.startswith("RESULT"))
    total, micros, requests, bad = (int(word) for word in line.split()[1:])
    if bad:
        raise RuntimeError(f"{bad} non-2xx answers from {url}")
    return {"bytes_per_s": total / micros * 1e6, "requests_per_s": requests / micros * 1e6}


def serving(count: int, seconds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-tiles-") as tmp:
        data_dir = Path(tmp) / "data"
        settings = LedgerSettings(data_dir=data_dir, origin="bench.example/tlog")
        ledger = Ledger.open(settings)
        try:
            events = _events(ledger, count)
            for first in range(0, count, 50_000):
                ledger.append_encoded(events[first : first + 50_000])
            ledger.checkpoint()
        finally:
            ledger.close()
        env = {
            **os.environ,
            "CONSENT_LEDGER_CHECKPOINT_INTERVAL": "100000",
            "CONSENT_API_CALLER_RATE": "1000000",
            "CONSENT_API_CALLER_BURST": "1000000",
            "CONSENT_API_CALLER_CONCURRENCY": "1000",
        }
        with serve_process(data_dir, env, [], "/v1/log/key", start_timeout=60) as url:
            pages = [
                f"/v1/log/leaves?start={start}&end={min(count, start + 1000)}"
                for start in range(0, count, 1000)
            ]
            tiles = [f"/tlog/{TileID(0, n).path()}" for n in range(count // 256)]
            with httpx.Client(base_url=url, timeout=60) as client:
                start = time.perf_counter()
                for path in tiles:  # the first read of each: from storage, checked, cached
                    client.get(path).raise_for_status()
                first_read = len(tiles) / (time.perf_counter() - start)
            leaves = _wrk(url, pages, seconds, 4)
            cached = _wrk(url, tiles, seconds, 4)
    return {
        "leaves": count,
        "leaves_bytes_per_s": round(leaves["bytes_per_s"]),
        "leaf_pages_per_s": round(leaves["requests_per_s"], 1),
        "tiles_bytes_per_s": round(cached["bytes_per_s"]),
        "tiles_per_s": round(cached["requests_per_s"]),
        "ratio": round(cached["bytes_per_s"] / leaves["bytes_per_s"], 3),
        "first_reads_per_s_one_client": round(first_read),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 20_000 if args.quick else 100_000
    result = {
        "run": "tiles",
        "quick": args.quick,
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": os.uname().nodename,
        "appends": appends(count, 1000, 10_000, 1 if args.quick else 3),
        "serving": serving(count, 5 if args.quick else 10),
    }
    print(json.dumps(result, indent=2))
    if not args.quick:
        (REPO / "bench" / "results" / "tiles.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
