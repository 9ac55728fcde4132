"""One resident floods its access history; how much do the others feel it (issue 12, item 4)?

A real ``consent-ledger serve`` (SQLite) starts on a temporary data dir; an admin registers two
hospitals and some residents (``api_scale.register_parties``), and ``h-east`` asks about one
resident, the flooder, often enough to give them a long history, which the background anchorer
then covers with receipts. A probe then measures, one request after another, a second
resident's ``GET /v1/consents`` and ``h-east``'s decisions (``POST /v1/access-requests``), first
unloaded, then while another process floods: ``--width`` connections each asking the flooder's
``GET /v1/me/access-history?limit=1000`` again the moment an answer (200 or 429) arrives, never
waiting for ``Retry-After``. The figures are the p99s flooded against unloaded, as ratios
measured in the same run (goal: within 3x), with what the flood was answered.

    python -m bench.flood [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from consent_api.auth import PlatformKeys, Role, sign_institution_token
from consent_api.settings import ApiSettings
from ledger.settings import LedgerSettings

from .api_scale import HOLDER, REQUESTER, register_parties, served
from .common import REPO, median, percentile, table

RESULTS = REPO / "bench" / "results" / "flood.json"
GOAL = 3.0


def _flood(url: str, token: str, width: int, seconds: float, out: Any) -> None:
    """In a process of its own: ``width`` threads asking for the history back to back."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while time.monotonic() < deadline:
                try:
                    answer = client.get(
                        "/v1/me/access-history",
                        params={"limit": 1000},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0  # a client time-out
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=run) for _ in range(width)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(dict(statuses))


def probe(
    url: str, reader: str, requester: str, subjects: list[str], seconds: float
) -> dict[str, list[float]]:
    """A second resident's reads and h-east's decisions, alternately, for ``seconds``."""
    took: dict[str, list[float]] = {"reads": [], "decisions": []}
    deadline = time.monotonic() + seconds
    n = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            read = client.get("/v1/consents", headers={"Authorization": f"Bearer {reader}"})
            took["reads"].append(time.perf_counter() - start)
            assert read.status_code == 200, read.text
            body = {
                "subject": subjects[n % len(subjects)],
                "holder": HOLDER,
                "categories": ["lab-results"],
                "purpose": "treatment",
            }
            start = time.perf_counter()
            decided = client.post(
                "/v1/access-requests", json=body, headers={"Authorization": f"Bearer {requester}"}
            )
            took["decisions"].append(time.perf_counter() - start)
            assert decided.status_code == 201, decided.text
            n += 1
            time.sleep(0.01)  # a steady probe, not a load of its own
    return took


def _ms(values: list[float], share: float) -> float:
    return round(percentile(values, share) * 1000, 2)


def run(*, history: int, seconds: float, width: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        data_dir = Path(tmp) / "data"
        with served(data_dir) as url:
            parties = register_parties(url, data_dir, residents=12)
            platform = PlatformKeys.of_deployment(
                ApiSettings(ledger=LedgerSettings(data_dir=data_dir))
            )
            flooder, reader = sorted(parties.consenting)[:2]
            others = [s for s in parties.subjects if s != flooder]
            requester = sign_institution_token(
                parties.requester_key, REQUESTER, audience=platform.audience
            )
            body = {"holder": HOLDER, "categories": ["lab-results"], "purpose": "treatment"}
            with httpx.Client(base_url=url, timeout=120) as client:
                for _ in range(history):
                    client.post(
                        "/v1/access-requests",
                        json={**body, "subject": flooder},
                        headers={"Authorization": f"Bearer {requester}"},
                    ).raise_for_status()
                flood_token = platform.issue(Role.RESIDENT, flooder).token
                auth = {"Authorization": f"Bearer {flood_token}"}
                deadline = time.monotonic() + 120
                while True:  # until the anchorer covers the whole history with receipts
                    page = client.get("/v1/me/access-history?limit=1000", headers=auth).json()
                    if page and not page[-1]["pending_anchor"]:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("the history was not anchored within 120 s")
                    time.sleep(1)
            reader_token = platform.issue(Role.RESIDENT, reader).token
            probe(url, reader_token, requester, others, 2)  # warm-up
            unloaded = probe(url, reader_token, requester, others, seconds)
            answers: Any = multiprocessing.get_context("spawn").Queue()
            flood = multiprocessing.get_context("spawn").Process(
                target=_flood, args=(url, flood_token, width, seconds + 4, answers)
            )
            flood.start()
            time.sleep(2)  # the flood at full width before measuring
            flooded = probe(url, reader_token, requester, others, seconds)
            statuses = answers.get(timeout=300)
            flood.join()
    rows = []
    for name in ("reads", "decisions"):
        calm, busy = unloaded[name], flooded[name]
        rows.append(
            {
                "what": name,
                "unloaded p50 / p99 ms": f"{_ms(calm, 0.5)} / {_ms(calm, 0.99)}",
                "flooded p50 / p99 ms": f"{_ms(busy, 0.5)} / {_ms(busy, 0.99)}",
                "p99 ratio": round(
                    percentile(flooded[name], 0.99) / percentile(unloaded[name], 0.99), 2
                ),
                "samples": f"{len(unloaded[name])} / {len(flooded[name])}",
            }
        )
    return {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "history_entries": history,
        "flood_width": width,
        "settings": {k: v for k, v in os.environ.items() if k.startswith("CONSENT_API_")},
        "load_average": os.getloadavg()[0],
        "seconds": seconds,
        "flood_answers": {str(k): v for k, v in sorted(statuses.items())},
        "rows": rows,
        "median_decision_ms_unloaded": round(median(unloaded["decisions"]) * 1000, 2),
        "goal_ratio": GOAL,
        "goal_met": all(row["p99 ratio"] <= GOAL for row in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--width", type=int, default=40, help="flooding connections")
    args = parser.parse_args()
    history, seconds = (200, 4.0) if args.quick else (1000, 20.0)
    result = run(history=history, seconds=seconds, width=args.width)
    columns = ["what", "unloaded p50 / p99 ms", "flooded p50 / p99 ms", "p99 ratio", "samples"]
    print(table(result["rows"], columns))
    met = result["goal_met"]
    print(f"flood answers: {result['flood_answers']}; goal (p99 within {GOAL}x) met: {met}")
    if not args.quick:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
