"""The embedded py-evm chain: persistence across processes and crashes, its data dir, speed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3.exceptions import Web3RPCError

from contracts.chain import Chain, connect
from contracts.client import AnchorRegistryClient
from contracts.embedded import DEV_KEY_FILE, EMBEDDED_CHAIN_ID
from contracts.errors import ChainError, ChainUnavailableError
from contracts.records import AnchorRecord
from tests.chain_fixtures import *  # noqa: F403 - fixtures are found by name
from tests.chain_fixtures import Registry
from tests.paths import REPO

LOG = bytes(range(32))


def root(n: int) -> bytes:
    return n.to_bytes(32, "big")


def run_python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_to_end(code: str, *args: str) -> dict[str, str]:
    process = run_python(code, *args)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    result: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return result


FIRST_PROCESS = """
    import json, sys
    from pathlib import Path
    from contracts.chain import connect
    from contracts.client import AnchorRegistryClient

    with connect(data_dir=Path(sys.argv[1])) as chain:
        dev = chain.accounts[0]
        address = AnchorRegistryClient.deploy(chain, dev)
        client = AnchorRegistryClient.at(chain, address, dev)
        client.add_anchorer(dev.address)
        record = client.anchor(bytes(range(32)), 1, (1).to_bytes(32, "big"))
        print(json.dumps({"address": address, "dev": dev.address, "record": record.to_json()}))
"""

SECOND_PROCESS = """
    import json, sys
    from pathlib import Path
    from contracts.chain import connect
    from contracts.client import AnchorRegistryClient

    with connect(data_dir=Path(sys.argv[1])) as chain:
        client = AnchorRegistryClient.at(chain, sys.argv[2], chain.accounts[0])
        latest = client.latest(bytes(range(32)))
        record = client.anchor(bytes(range(32)), 2, (2).to_bytes(32, "big"))
        print(json.dumps({"latest": latest.to_json(), "record": record.to_json()}))
"""


def test_anchors_survive_a_process_restart(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "chain")
    first = run_to_end(FIRST_PROCESS, data_dir)
    second = run_to_end(SECOND_PROCESS, data_dir, first["address"])
    record_1 = AnchorRecord.from_json(first["record"])
    record_2 = AnchorRecord.from_json(second["record"])
    assert AnchorRecord.from_json(second["latest"]) == record_1
    assert record_2.block_number > record_1.block_number
    with connect(data_dir=tmp_path / "chain") as chain:
        assert chain.accounts[0].address == first["dev"]
        client = AnchorRegistryClient.at(chain, first["address"])
        assert client.anchors(LOG, 0) == [record_1, record_2]
        client.verify_anchor(record_1)
        client.verify_anchor(record_2)


ANCHOR_FOREVER = """
    import sys
    from pathlib import Path
    from contracts.chain import connect
    from contracts.client import AnchorRegistryClient

    chain = connect(data_dir=Path(sys.argv[1]))
    dev = chain.accounts[0]
    client = AnchorRegistryClient.at(chain, sys.argv[2], dev)
    size = 1
    while True:
        client.anchor(bytes(range(32)), size, size.to_bytes(32, "big"))
        print(size, flush=True)
        size += 1
"""


def test_a_killed_process_loses_no_mined_anchor(tmp_path: Path) -> None:
    data_dir = tmp_path / "chain"
    with connect(data_dir=data_dir) as chain:
        dev = chain.accounts[0]
        address = AnchorRegistryClient.deploy(chain, dev)
        AnchorRegistryClient.at(chain, address, dev).add_anchorer(dev.address)
    process = run_python(ANCHOR_FOREVER, str(data_dir), address)
    assert process.stdout is not None
    reported = [int(process.stdout.readline()) for _ in range(5)]
    os.kill(process.pid, signal.SIGKILL)  # mid-anchor, most likely
    process.wait(10)
    assert reported == [1, 2, 3, 4, 5]
    with connect(data_dir=data_dir) as chain:
        client = AnchorRegistryClient.at(chain, address, chain.accounts[0])
        latest = client.latest(LOG)
        assert latest is not None
        assert latest.tree_size >= 5
        sizes = [r.tree_size for r in client.anchors(LOG, 0)]
        assert sizes == list(range(1, latest.tree_size + 1))
        assert client.anchor(LOG, latest.tree_size + 1, root(99)).tree_size == latest.tree_size + 1


def test_one_process_at_a_time(tmp_path: Path) -> None:
    holder = connect(data_dir=tmp_path / "chain")
    try:
        with pytest.raises(ChainUnavailableError, match="open in another process"):
            connect(data_dir=tmp_path / "chain")
    finally:
        holder.close()
    with connect(data_dir=tmp_path / "chain") as chain:
        assert chain.block_number() == 0


def test_dev_key_is_private_and_stable(tmp_path: Path) -> None:
    with connect(data_dir=tmp_path / "chain") as chain:
        first = chain.accounts[0].address
        assert chain.w3.eth.get_balance(first) > 10**18
    key_file = tmp_path / "chain" / DEV_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    with connect(data_dir=tmp_path / "chain") as chain:
        assert chain.accounts[0].address == first
    key_file.chmod(0o644)
    with pytest.raises(ChainError, match="chmod 600"):
        connect(data_dir=tmp_path / "chain")
    # The refusal released the data dir.
    key_file.chmod(0o600)
    connect(data_dir=tmp_path / "chain").close()


def test_two_data_dirs_are_two_chains(tmp_path: Path) -> None:
    with connect(data_dir=tmp_path / "a") as a, connect(data_dir=tmp_path / "b") as b:
        assert a.accounts[0].address != b.accounts[0].address
        assert a.w3.eth.get_block(0)["hash"] != b.w3.eth.get_block(0)["hash"]


def test_connect_needs_exactly_one_target(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        connect()
    with pytest.raises(ValueError, match="exactly one"):
        connect("http://127.0.0.1:1", data_dir=tmp_path)


def test_chain_id_is_ours_and_enforced(embedded_chain: Chain) -> None:
    assert embedded_chain.chain_id == EMBEDDED_CHAIN_ID
    assert embedded_chain.w3.eth.chain_id == EMBEDDED_CHAIN_ID
    dev = embedded_chain.accounts[0]
    tx = {
        "chainId": EMBEDDED_CHAIN_ID + 1,
        "nonce": 0,
        "to": Account.create().address,
        "value": 1,
        "gas": 21_000,
        "type": 2,
        **embedded_chain.fee_fields(),
    }
    with pytest.raises(Web3RPCError, match="invalid chain id"):
        embedded_chain.w3.eth.send_raw_transaction(dev.sign_transaction(tx).raw_transaction)
    assert embedded_chain.block_number() == 0


def test_the_chain_only_grows(embedded_chain: Chain) -> None:
    response = embedded_chain.w3.provider.make_request("evm_snapshot", [])
    assert "error" in response


def test_blocks_carry_wall_clock_time(registry: Registry) -> None:
    client = registry.client()
    before = int(time.time())
    records = [client.anchor(LOG, size, root(size)) for size in (1, 2, 3)]
    stamps = [r.timestamp for r in records]
    assert stamps == sorted(set(stamps))  # strictly increasing
    assert stamps[0] >= before
