"""Against a separate node process: outages, restarts, and an independent client (cast)."""

from __future__ import annotations

import hashlib
import subprocess
import time

import pytest

from contracts.chain import Chain, connect
from contracts.errors import ChainUnavailableError
from tests.chain_fixtures import *  # noqa: F403 - fixtures are found by name
from tests.chain_fixtures import CAST_BIN, AnvilNode, Registry

pytestmark = pytest.mark.anvil

LOG = hashlib.sha256(b"consent log").digest()


def root(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(8, "big")).digest()


@pytest.fixture
def registry_chain(anvil_chain: Chain) -> Chain:
    return anvil_chain


@pytest.fixture
def registry_log_ids() -> tuple[bytes, ...]:
    return (LOG,)


def test_node_outage_is_chain_unavailable_and_work_resumes(
    anvil: AnvilNode, registry: Registry
) -> None:
    client = registry.client()
    first = client.anchor(LOG, 1, root(1))
    # Two-phase: prepared (and journaled by the caller) before the node goes away.
    prepared = client.prepare_anchor(LOG, 2, root(2))
    anvil.stop()
    started = time.monotonic()
    for attempt in (
        lambda: client.latest(LOG),
        lambda: client.send(prepared),
        lambda: client.find_receipt(prepared.tx_hash),
        lambda: client.prepare_anchor(LOG, 3, root(3)),
        lambda: client.verify_anchor(first),
        lambda: client.anchors(LOG, 0),
        lambda: connect(anvil.url),
    ):
        with pytest.raises(ChainUnavailableError):
            attempt()
    assert time.monotonic() - started < 5, "an outage must be reported, not waited out"
    anvil.start()
    assert client.latest(LOG) == first
    client.verify_anchor(first)
    assert client.find_receipt(prepared.tx_hash) is None
    client.send(prepared)
    second = client.wait(prepared.tx_hash)
    assert (second.tree_size, second.root_hash) == (2, root(2))
    assert client.anchors(LOG, 0) == [first, second]


def test_nothing_listening_is_chain_unavailable(anvil: AnvilNode) -> None:
    anvil.stop()
    with pytest.raises(ChainUnavailableError):
        connect(anvil.url, timeout=1)


def cast(*args: str, rpc_url: str) -> str:
    if not CAST_BIN.exists():
        pytest.skip(f"cast not installed at {CAST_BIN} (run `npm ci`)")
    completed = subprocess.run(
        [str(CAST_BIN), *args, "--rpc-url", rpc_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return completed.stdout


def test_cast_reads_the_same_anchor(anvil: AnvilNode, registry: Registry) -> None:
    record = registry.client().anchor(LOG, 42, root(42))
    out = cast(
        "call",
        registry.address,
        "latest(bytes32)(uint64,bytes32,uint64,uint64)",
        "0x" + LOG.hex(),
        rpc_url=anvil.url,
    )
    # cast prints one value per line, numbers optionally followed by " [4.2e1]".
    tree_size, root_hash, timestamp, block_number = (
        line.split()[0] for line in out.strip().splitlines()
    )
    assert int(tree_size) == record.tree_size
    assert bytes.fromhex(root_hash.removeprefix("0x")) == record.root_hash
    assert int(timestamp) == record.timestamp
    assert int(block_number) == record.block_number
    assert record.anchorer == registry.anchorer.address
    anchorer = cast(
        "call",
        registry.address,
        "anchorerOf(bytes32)(address)",
        "0x" + LOG.hex(),
        rpc_url=anvil.url,
    )
    assert anchorer.strip() == registry.anchorer.address
