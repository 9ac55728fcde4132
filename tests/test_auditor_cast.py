"""The auditor's anchors, read again by an independent client: Foundry's ``cast`` on anvil.

A ledger anchors on anvil (a separate node process) through the JSON-RPC anchorer, a real
``consent-ledger serve`` serves it, and the ``auditor`` command audits it with ``--rpc``. Then
``cast`` (Rust, its own ABI decoding and its own RPC client) reads the registry's ``Anchored``
events, their blocks and the ``latest`` view; every tree size, root, block number, timestamp
and transaction must be what the auditor recorded in its state and report.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.state import AuditorState
from ledger.anchoring import Anchorer, log_id_for
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from tests.chain_fixtures import *  # noqa: F403 - fixtures are found by name
from tests.chain_fixtures import ANVIL_BIN, ANVIL_KEYS, CAST_BIN, AnvilNode
from tests.live_server import LiveServer
from tests.test_auditor_deployment import DENIAL

pytestmark = pytest.mark.anvil

ORIGIN = "cast.test/log"
ANCHORED = (10, 25, 40)
LATEST = 46  # sealed, not anchored
EVENT = "Anchored(bytes32 indexed,uint64 indexed,bytes32,uint64,address)"
DATA_TYPES = "f()(bytes32,uint64,address)"  # the event's fields that are not indexed


def cast(*args: str) -> str:
    completed = subprocess.run(
        [str(CAST_BIN), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def first_word(line: str) -> str:
    """cast prints a number as ``42`` or ``42 [4.2e1]``: the value is the first word."""
    return line.split()[0]


@pytest.fixture
def tools() -> None:
    for binary in (ANVIL_BIN, CAST_BIN):
        if not binary.exists():
            pytest.skip(f"{binary.name} not installed at {binary} (run `make setup`)")


def anchored_ledger(root: Path, rpc_url: str) -> tuple[LedgerSettings, str]:
    """A ledger anchored on the node at ``ANCHORED`` sizes, with a later checkpoint unanchored."""
    key_file = root / "anchor.key"
    key_file.write_text(ANVIL_KEYS[1].hex())
    key_file.chmod(0o600)
    settings = LedgerSettings(
        data_dir=root / "data",
        origin=ORIGIN,
        checkpoint_every=1000,
        checkpoint_interval=3600,
        rpc_url=rpc_url,
        anchor_key_file=key_file,
    )
    ledger = Ledger.open(settings)
    anchorer = Anchorer(ledger)
    try:
        for size in ANCHORED:
            start = ledger.tree_size()
            ledger.append_many(
                ("access.decided", {**DENIAL, "request_id": f"r-{n}"}) for n in range(start, size)
            )
            report = anchorer.run_once(force_seal=True)
            assert report.error is None, report.error
        ledger.append_many(
            ("access.decided", {**DENIAL, "request_id": f"r-{n}"})
            for n in range(ANCHORED[-1], LATEST)
        )
        ledger.checkpoint()
        contract = anchorer.connect().address
    finally:
        anchorer.close()
        ledger.close()
    return settings, contract


def cast_anchors(rpc_url: str, contract: str) -> list[dict[str, Any]]:
    """Every ``Anchored`` event of the log, decoded by cast, with its block's timestamp."""
    log_id = "0x" + log_id_for(ORIGIN).hex()
    logs = json.loads(
        cast(
            "logs",
            "--rpc-url",
            rpc_url,
            "--address",
            contract,
            "--from-block",
            "0",
            "--json",
            EVENT,
            log_id,  # the first indexed field: only this log's anchors
        )
    )
    anchors = []
    for entry in logs:
        topics = entry["topics"]
        assert topics[1] == log_id
        # The data holds the three fields that are not indexed; cast decodes them by the ABI.
        root_hash, timestamp, anchorer = (
            first_word(line) for line in cast("abi-decode", DATA_TYPES, entry["data"]).splitlines()
        )
        block_number = int(entry["blockNumber"], 16)
        block_time = cast("block", str(block_number), "--field", "timestamp", "--rpc-url", rpc_url)
        anchors.append(
            {
                "tree_size": int(cast("to-dec", topics[2])),
                "root_hash": root_hash.removeprefix("0x"),
                "timestamp": int(timestamp),
                "anchorer": anchorer,
                "block_number": block_number,
                "block_timestamp": int(first_word(block_time)),
                "tx_hash": entry["transactionHash"].removeprefix("0x"),
            }
        )
    return anchors


def test_cast_reads_the_anchors_the_auditor_read(
    tools: None, anvil: AnvilNode, tmp_path: Path
) -> None:
    settings, contract = anchored_ledger(tmp_path, anvil.url)
    server = LiveServer(
        settings.data_dir,
        env={"CONSENT_LEDGER_ORIGIN": ORIGIN, "CONSENT_API_ANCHOR_IN_BACKGROUND": "false"},
    )
    state_dir = tmp_path / "auditor-state"
    report_path = tmp_path / "report.json"
    try:
        code = main(
            [
                "--api",
                server.url,
                "--rpc",
                anvil.url,
                "--contract",
                contract,
                "--state",
                str(state_dir),
                "--json",
                str(report_path),
                "--quiet",
            ]
        )
    finally:
        server.stop()
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["verified"]["tree_size"] == LATEST
    assert report["anchored_size"] == ANCHORED[-1]

    by_cast = cast_anchors(anvil.url, contract)
    state = AuditorState.load(state_dir)
    by_auditor = [
        {
            "tree_size": a.tree_size,
            "root_hash": a.root_hash.hex(),
            "timestamp": a.timestamp,
            "block_number": a.block_number,
            "tx_hash": a.tx_hash.hex(),
        }
        for a in state.anchors
    ]
    assert [a["tree_size"] for a in by_cast] == list(ANCHORED)
    assert [{k: a[k] for k in by_auditor[0]} for a in by_cast] == by_auditor
    for anchor in by_cast:
        assert anchor["timestamp"] == anchor["block_timestamp"]  # the block's own time
        assert (
            anchor["anchorer"].lower()
            == cast("wallet", "address", "--private-key", "0x" + ANVIL_KEYS[1].hex()).lower()
        )
    # The roots are the ledger's own, at those sizes: cast and the auditor saw the real tree.
    ledger = Ledger.open(settings)
    try:
        assert [a["root_hash"] for a in by_cast] == [ledger.root(s).hex() for s in ANCHORED]
    finally:
        ledger.close()
    if report.get("anchoring"):  # the report's own list of anchors, once the auditor writes it
        reported = [(a["tree_size"], a["block_number"]) for a in report["anchoring"]]
        assert reported == [(a["tree_size"], a["block_number"]) for a in by_cast]

    latest = cast(
        "call",
        contract,
        "latest(bytes32)(uint64,bytes32,uint64,uint64)",
        "0x" + log_id_for(ORIGIN).hex(),
        "--rpc-url",
        anvil.url,
    ).splitlines()
    tree_size, root_hash, timestamp, block_number = (first_word(line) for line in latest)
    newest = by_auditor[-1]
    assert int(tree_size) == newest["tree_size"]
    assert root_hash.removeprefix("0x") == newest["root_hash"]
    assert int(timestamp) == newest["timestamp"]
    assert int(block_number) == newest["block_number"]
