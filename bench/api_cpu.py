"""CPU per access decision in process: the app driven through ASGI, no sockets, no wrk.

``python -m bench.api_cpu [--requests N] [--concurrency C] [--profile out.pstats]`` builds the
app on a temporary SQLite data dir, registers two hospitals and a few hundred residents (two in
three consent), then posts N access requests from C concurrent tasks and reports the process's
CPU time (all threads: the event loop, the group committer, any others) per decision,
beside the same figure for ``GET /v1/ping`` measured in the same process. CPU time is far less
sensitive than wall-clock to other work sharing the machine, so before/after comparisons of the
decision path use it. ``--profile`` writes a cProfile of the decisions (event loop thread only).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent_api.app import create_app
from consent_api.auth import PlatformKeys, Role, sign_institution_token
from consent_api.institutions import jwk_of
from consent_api.settings import ApiSettings
from ledger.settings import LedgerSettings

from .api_scale import CONSENT, HOLDER, REQUESTER


async def _setup(
    client: httpx.AsyncClient, platform: PlatformKeys, residents: int
) -> tuple[str, list[str]]:
    admin = {"Authorization": f"Bearer {platform.issue(Role.ADMIN, 'ops').token}"}
    keys = {REQUESTER: Ed25519PrivateKey.generate(), HOLDER: Ed25519PrivateKey.generate()}
    for institution_id, key in keys.items():
        body = {
            "id": institution_id,
            "name": institution_id,
            "type": "hospital",
            "public_key": jwk_of(key.public_key()),
        }
        assert (await client.post("/v1/admin/institutions", json=body, headers=admin)).is_success
    subjects = []
    for n in range(residents):
        person = {"identifier": f"CPU-{n}", "name": f"R {n}", "birth_date": "1980-01-01"}
        answer = await client.post("/v1/admin/residents", json=person, headers=admin)
        subject = answer.json()["subject"]
        subjects.append(subject)
        if n % 3 != 2:
            token = platform.issue(Role.RESIDENT, subject).token
            headers = {"Authorization": f"Bearer {token}"}
            assert (await client.post("/v1/consents", json=CONSENT, headers=headers)).is_success
    token = sign_institution_token(keys[REQUESTER], REQUESTER, ttl=300, audience=platform.audience)
    return token, subjects


async def _drive(
    client: httpx.AsyncClient, requests: Sequence[tuple[str, str, bytes | None]], concurrency: int
) -> float:
    """Send ``requests`` from ``concurrency`` tasks; return the CPU seconds they took."""
    queue: asyncio.Queue[tuple[str, str, bytes | None]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)

    async def worker(headers: dict[str, str]) -> None:
        while not queue.empty():
            method, path, body = queue.get_nowait()
            answer = await client.request(method, path, content=body, headers=headers)
            assert answer.is_success, answer.text

    start = time.process_time()
    await asyncio.gather(*(worker(HEADERS) for _ in range(concurrency)))
    return time.process_time() - start


HEADERS: dict[str, str] = {}


def _without_sniffio() -> None:
    """httpx's ASGI transport tries ``import sniffio`` on every request; absent, that is a
    failed import (four stat calls) each time, client-side cost that would blur the figures."""
    if importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


async def measure(
    requests: int, concurrency: int, residents: int, profile: Path | None
) -> dict[str, Any]:
    _without_sniffio()
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        settings = ApiSettings(
            ledger=LedgerSettings(data_dir=Path(tmp) / "data", origin="bench.cpu/log"),
            anchor_in_background=False,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cpu") as client:
                token, subjects = await _setup(client, app.state.platform_keys, residents)
                HEADERS.clear()
                HEADERS.update(
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                )
                bodies = [
                    json.dumps(
                        {
                            "subject": subjects[n % len(subjects)],
                            "holder": HOLDER,
                            "categories": ["lab-results"],
                            "purpose": "treatment",
                        }
                    ).encode()
                    for n in range(requests)
                ]
                decide = [("POST", "/v1/access-requests", body) for body in bodies]
                ping = [("GET", "/v1/ping", None)] * requests
                await _drive(client, decide[: requests // 10], concurrency)  # warm up
                profiler = cProfile.Profile() if profile is not None else None
                if profiler is not None:
                    profiler.enable()
                wall = time.perf_counter()
                decision_cpu = await _drive(client, decide, concurrency)
                wall = time.perf_counter() - wall
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(profile)  # type: ignore[arg-type]
                ping_cpu = await _drive(client, ping, concurrency)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "cpu_us_per_decision": round(decision_cpu / requests * 1e6),
        "cpu_us_per_ping": round(ping_cpu / requests * 1e6),
        "ratio": round(decision_cpu / ping_cpu, 2),
        "decisions_per_s_wall": round(requests / wall),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.requests, args.concurrency, args.residents, args.profile))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
