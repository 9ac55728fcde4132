"""A full disk, for real: a real ``consent-ledger serve`` whose data directory is a small tmpfs,
filled with a file. Every write is answered (a 503 problem with ``Retry-After``, never a
plain-text 500 or a dropped connection), reads and health stay up, and once the file is
removed the same process writes again, no restart."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.world import World
from tests.live_server import LiveServer

PROBLEM = "urn:consent-ledger:problem:"
BURST = 60


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs (mounting needs root, as the test machines run; elsewhere it skips)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the filesystem refuses another byte."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def assert_full(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM + "storage-full"
    assert int(response.headers["Retry-After"]) > 0


@pytest.fixture
def world(small_disk: Path, tmp_path: Path) -> Iterator[World]:
    server = LiveServer(small_disk / "data", env={"CONSENT_LEDGER_CHECKPOINT_INTERVAL": "1"})
    admin = server.cli("issue-token", "--role", "admin", "--subject", "ops").strip()
    client = httpx.Client(base_url=server.url, timeout=60)
    world = World(server, client, {"Authorization": f"Bearer {admin}"}, tmp_path / "world.json")
    try:
        world.register_institution("h-east", "East River Hospital", "hospital")
        world.register_institution("h-west", "West Lake Hospital", "hospital")
        world.register_resident("mei", date(1985, 3, 14))
        grant = {
            "grantee": {"institution": "h-east"},
            "categories": ["lab-results"],
            "purposes": ["treatment"],
        }
        granted = client.post("/v1/consents", json=grant, headers=world.as_resident("mei"))
        assert granted.status_code == 201, granted.text
        yield world
    finally:
        client.close()
        server.stop()


def decide(world: World) -> httpx.Response:
    body: dict[str, Any] = {
        "subject": world.residents["mei"]["subject"],
        "holder": "h-west",
        "categories": ["lab-results"],
        "purpose": "treatment",
    }
    with httpx.Client(base_url=world.server.url, timeout=60) as client:
        return client.post(
            "/v1/access-requests", json=body, headers=world.institutions["h-east"].headers()
        )


def test_a_full_disk_is_answered_and_survived(world: World, small_disk: Path) -> None:
    assert decide(world).status_code == 201
    filler = fill(small_disk)
    # What the database had already allocated may take a few more; then every write is refused.
    for _ in range(5000):
        answer = decide(world)
        if answer.status_code != 201:
            break
    assert_full(answer)

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(lambda _: decide(world), range(BURST)))
    for each in answers:  # every caller is answered, none dropped (httpx would have raised)
        assert_full(each)
    grant = {
        "grantee": {"institution": "h-west"},
        "categories": ["imaging"],
        "purposes": ["treatment"],
    }
    assert_full(world.client.post("/v1/consents", json=grant, headers=world.as_resident("mei")))

    mine = world.client.get("/v1/consents", headers=world.as_resident("mei"))
    assert mine.status_code == 200, mine.text
    assert len(mine.json()) == 1
    assert world.client.get("/v1/log/leaves?start=0").status_code == 200
    health = world.client.get("/v1/health")
    assert health.status_code == 200, health.text
    assert health.json()["storage"]["full_answers"] >= BURST + 2

    filler.unlink()
    after = decide(world)
    assert after.status_code == 201, after.text
    assert after.json()["decision"] == "permit"
