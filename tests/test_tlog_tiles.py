"""The log read as C2SP tlog-tiles by a client written from the spec alone
(``tests.tlog_tiles_client``): from a real ``consent-ledger serve`` over HTTP and from a
directory written by ``consent-ledger tiles export``, on both databases."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.log import Ledger
from ledger.settings import LedgerSettings
from tests.live_server import LiveServer
from tests.paths import REPO
from tests.tlog_tiles_client import (
    directory_fetch,
    http_fetch,
    leaf,
    read_log,
    root_from_inclusion,
)

# One full level-1 tile (65,536 leaves) and partial tiles on three levels.
SIZE = 256 * 256 + 3 * 256 + 17
OLD_SIZE = 300  # an earlier checkpoint: its partial tiles are still served


def _events(start: int, end: int) -> Iterator[tuple[str, dict[str, str]]]:
    return (("consent.granted", {"consent_id": f"c-{n}"}) for n in range(start, end))


def cli(settings: LedgerSettings, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--data-dir",
        str(settings.data_dir),
        "--database-url",
        settings.resolved_database_url(),
    ]
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args, *flags],
        cwd=REPO,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def served(settings: LedgerSettings) -> Iterator[tuple[LiveServer, str]]:
    ledger = Ledger.open(settings)
    try:
        ledger.append_many(_events(0, OLD_SIZE))
        ledger.checkpoint()
        ledger.append_many(_events(OLD_SIZE, SIZE))
        ledger.checkpoint()
        ledger.append_many(_events(SIZE, SIZE + 300))  # past the newest checkpoint: unsigned
        vkey = ledger.verifier.to_vkey()
    finally:
        ledger.close()
    env = {
        "CONSENT_LEDGER_DATABASE_URL": settings.resolved_database_url(),
        # The server's anchorer must not seal the unsigned 300 while the test reads.
        "CONSENT_LEDGER_CHECKPOINT_INTERVAL": "100000",
        "CONSENT_LEDGER_CHECKPOINT_EVERY": "1000000",
    }
    server = LiveServer(settings.data_dir, env=env)
    try:
        yield server, vkey
    finally:
        server.stop()


def test_a_spec_client_rebuilds_the_root_and_checks_a_proof_over_http(
    served: tuple[LiveServer, str],
) -> None:
    server, vkey = served
    log = read_log(http_fetch(server.url + "/tlog"), vkey)
    assert log.checkpoint.size == SIZE
    assert log.tiles_read == 260 + 2 + 1  # level 0: 259 full + 1 partial; level 1; level 2

    # The service's own proof, asked for with no size, is for the signed checkpoint's size
    # and verifies against the root the tiles gave; it is also the proof the tiles give.
    index = 70_000 - 4_321
    with httpx.Client(base_url=server.url) as client:
        proof = client.get("/v1/log/proof/inclusion", params={"leaf_index": index}).json()
        page = client.get("/v1/log/leaves", params={"start": index, "end": index + 1}).json()
    assert proof["tree_size"] == SIZE
    hashes = [base64.b64decode(h) for h in proof["proof"]]
    leaf_hash = leaf(base64.b64decode(page["leaves"][0]["leaf_data"]))
    assert leaf_hash == log.leaf_hashes[index]
    assert root_from_inclusion(index, SIZE, leaf_hash, hashes) == log.checkpoint.root
    assert hashes == log.proof(index)

    # An earlier checkpoint's partial tiles are still there, and give its root.
    old_note = urllib.request.urlopen(f"{server.url}/v1/log/checkpoints/{OLD_SIZE}").read()
    old = read_log(http_fetch(server.url + "/tlog"), vkey, old_note.decode())
    assert old.checkpoint.size == OLD_SIZE
    assert old.leaf_hashes == log.leaf_hashes[:OLD_SIZE]


def test_tiles_are_cacheable_and_only_of_the_signed_tree(served: tuple[LiveServer, str]) -> None:
    server, _ = served
    with httpx.Client(base_url=server.url + "/tlog") as client:
        full = client.get("/tile/0/000")
        assert full.status_code == 200
        assert full.headers["content-type"] == "application/octet-stream"
        assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert len(full.content) == 8192
        again = client.get("/tile/0/000", headers={"If-None-Match": full.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
        partial = client.get("/tile/0/259.p/17")
        assert partial.status_code == 200
        assert len(partial.content) == 17 * 32
        assert "immutable" not in partial.headers["cache-control"]
        assert partial.headers["etag"] != full.headers["etag"]
        checkpoint = client.get("/checkpoint")
        assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
        assert checkpoint.headers["cache-control"] == "public, max-age=5"
        assert checkpoint.text == httpx.get(server.url + "/v1/log/checkpoint").text
        for missing in (
            "/tile/0/260",  # complete in the database, past the signed tree
            "/tile/0/259.p/18",  # wider than the signed tree's partial tile
            "/tile/0/x000/005",  # not the canonical spelling
            "/tile/1/000.p/256",
            "/tile/entries/000",  # entry bundles are not served
        ):
            answer = client.get(missing)
            assert answer.status_code == 404, missing
            assert answer.headers["content-type"].startswith("application/problem+json")


def test_an_exported_directory_is_the_same_log(
    served: tuple[LiveServer, str], settings: LedgerSettings, tmp_path: Path
) -> None:
    _, vkey = served
    directory = tmp_path / "tiles"
    first = cli(settings, "tiles", "export", str(directory))
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["tree_size"], report["tiles_written"], report["tiles_kept"]) == (SIZE, 263, 0)
    log = read_log(directory_fetch(directory), vkey)
    assert log.checkpoint.size == SIZE
    assert root_from_inclusion(5, SIZE, log.leaf_hashes[5], log.proof(5)) == log.checkpoint.root

    # The next export writes only what is new: the partial tiles of the newer checkpoint.
    ledger = Ledger.open(settings)
    try:
        ledger.checkpoint()  # SIZE + 300
    finally:
        ledger.close()
    second = json.loads(cli(settings, "tiles", "export", str(directory)).stdout)
    assert second["tree_size"] == SIZE + 300
    assert second["tiles_kept"] == 259 + 1  # full tiles on levels 0 and 1 are not reread
    grown = read_log(directory_fetch(directory), vkey)
    assert grown.leaf_hashes[:SIZE] == log.leaf_hashes
