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
from typing import Any

import pytest
from eth_account import Account
from web3.exceptions import Web3RPCError

from contracts.chain import Chain, connect
from contracts.client import AnchorRegistryClient
from contracts.devkey import load_or_create_key, read_key
from contracts.embedded import DB_FILE, DEV_KEY_FILE, EMBEDDED_CHAIN_ID, LOCK_FILE
from contracts.errors import ChainError, ChainUnavailableError
from contracts.records import AnchorRecord
from tests.chain_fixtures import *  # noqa: F403 - fixtures are found by name
from tests.chain_fixtures import Registry
from tests.paths import REPO

LOG = bytes(range(32))


@pytest.fixture
def registry_log_ids() -> tuple[bytes, ...]:
    return (LOG,)


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
        client.assign_log(bytes(range(32)), dev.address)
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
        AnchorRegistryClient.at(chain, address, dev).assign_log(LOG, dev.address)
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


def test_create_false_makes_nothing_where_there_is_no_chain(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "chain"
    with pytest.raises(ChainUnavailableError, match="no embedded chain in"):
        connect(data_dir=missing, create=False)
    assert not missing.parent.exists()
    # A directory with other things in it, even a dev key or an empty database file.
    for present in ([], [DEV_KEY_FILE], [DB_FILE]):
        data_dir = tmp_path / f"with-{len(present)}-{'-'.join(present)}"
        data_dir.mkdir()
        for name in present:
            (data_dir / name).touch(mode=0o600)
        with pytest.raises(ChainUnavailableError, match="no embedded chain in"):
            connect(data_dir=data_dir, create=False)
        assert sorted(p.name for p in data_dir.iterdir()) <= sorted([*present, LOCK_FILE])
        assert all((data_dir / name).stat().st_size == 0 for name in present)


def test_create_false_opens_an_existing_chain(tmp_path: Path) -> None:
    data_dir = tmp_path / "chain"
    with connect(data_dir=data_dir) as chain:
        dev = chain.accounts[0].address
        chain.send_value(chain.accounts[0], Account.create().address, 1)
        height = chain.block_number()
    files = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.name != DB_FILE + "-wal"}
    with connect(data_dir=data_dir, create=False) as chain:
        assert chain.accounts[0].address == dev
        assert chain.block_number() == height
    assert {p.name: p.read_bytes() for p in data_dir.iterdir() if p.name in files} == files


def test_a_chain_without_its_dev_key_opens_with_no_dev_account(tmp_path: Path) -> None:
    """E.g. a copy handed to an auditor: readable, and no new (unfunded) key is made."""
    data_dir = tmp_path / "chain"
    with connect(data_dir=data_dir) as chain:
        dev = chain.accounts[0]
        address = AnchorRegistryClient.deploy(chain, dev)
        client = AnchorRegistryClient.at(chain, address, dev)
        client.assign_log(LOG, dev.address)
        record = client.anchor(LOG, 1, root(1))
    (data_dir / DEV_KEY_FILE).unlink()
    for create in (False, True):
        with connect(data_dir=data_dir, create=create) as chain:
            assert chain.accounts == ()
            AnchorRegistryClient.at(chain, address).verify_anchor(record)
        assert not (data_dir / DEV_KEY_FILE).exists()


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


# -- the dev key file ---------------------------------------------------------------------------

CREATE_KEY_CRASHING_AT_STEP = """
    import os, sys
    from pathlib import Path
    from contracts.devkey import load_or_create_key

    crash_at = int(sys.argv[2])
    calls = 0

    def crashing(real):
        def step(*args, **kwargs):
            global calls
            calls += 1
            if calls == crash_at:
                os._exit(75)  # no cleanup, no buffers flushed: as abrupt as a kill -9
            return real(*args, **kwargs)
        return step

    for name in ("open", "fdopen", "write", "fsync", "close", "link", "rename", "replace",
                 "unlink", "urandom", "ftruncate"):
        setattr(os, name, crashing(getattr(os, name)))
    print(load_or_create_key(Path(sys.argv[1])).hex())
"""


def test_a_crash_at_any_step_of_creating_the_dev_key_leaves_none_or_a_whole_one(
    tmp_path: Path,
) -> None:
    """Kill the creating process at each os call in turn; the file is never half there."""
    crash_at = 0
    while True:
        crash_at += 1
        assert crash_at < 50, "key creation never completed"
        data_dir = tmp_path / f"crash-at-{crash_at}"
        data_dir.mkdir()
        key_file = data_dir / DEV_KEY_FILE
        process = run_python(CREATE_KEY_CRASHING_AT_STEP, str(key_file), str(crash_at))
        out, err = process.communicate(timeout=60)
        assert process.returncode in (0, 75), err
        left = read_key(key_file) if key_file.exists() else None  # raises if half there
        key = load_or_create_key(key_file)  # the next start
        if left is not None:
            assert key == left
        assert read_key(key_file) == key
        if process.returncode == 0:
            assert bytes.fromhex(out.strip()) == key
            break
    assert crash_at > 4  # the crashes did land inside the creation


def test_a_dev_key_that_appears_meanwhile_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``link`` never replaces a key: if one appears while ours is written, it wins."""
    key_file = tmp_path / DEV_KEY_FILE
    theirs = bytes([7]) * 32
    real_link = os.link

    def racing_link(src: Any, dst: Any) -> None:
        key_file.write_text(theirs.hex() + "\n")
        key_file.chmod(0o600)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    assert load_or_create_key(key_file) == theirs
    assert [p.name for p in tmp_path.iterdir()] == [DEV_KEY_FILE]  # our temp file is gone


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty (what an interrupted write used to leave)", ""),
        ("truncated", "ab" * 20),
        ("upper-case", "AB" * 32),
        ("0x prefix", "0x" + "ab" * 32),
        ("spaces", " ".join(["ab"] * 32)),
        ("two newlines", "ab" * 32 + "\n\n"),
        ("zero", "00" * 32),
        ("not below the curve order", "ff" * 32),
        ("not text", "\udcff"),
    ],
)
def test_a_malformed_dev_key_is_refused(tmp_path: Path, name: str, text: str) -> None:
    key_file = tmp_path / DEV_KEY_FILE
    key_file.write_bytes(text.encode("utf-8", "surrogateescape"))
    key_file.chmod(0o600)
    with pytest.raises(ChainError, match="private key"):
        load_or_create_key(key_file)
    assert key_file.read_bytes() == text.encode("utf-8", "surrogateescape")  # left for a human
