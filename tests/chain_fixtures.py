"""Pytest fixtures for tests that need a real EVM: the embedded chain, a local anvil node,
and a deployed AnchorRegistry with a funded anchorer.

Use ``from tests.chain_fixtures import *  # noqa: F403`` (pytest finds fixtures by name,
so a fixture imported alone would miss the ones it depends on), plus explicit imports of
the helpers you name (``Registry``, ``deploy_registry``, ...). ``registry`` deploys on
``registry_chain``, the embedded chain unless a test module overrides that fixture (for
example with ``any_chain`` to run each test on both kinds), and assigns the anchorer the
logs in ``registry_log_ids`` (none unless a module overrides it with the ids it anchors).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from contracts.chain import Chain, connect
from contracts.client import AnchorRegistryClient
from tests.paths import NODE_BIN

__all__ = [
    "ANVIL_BIN",
    "ANVIL_KEYS",
    "CAST_BIN",
    "AnvilNode",
    "Registry",
    "anvil",
    "anvil_chain",
    "any_chain",
    "deploy_registry",
    "embedded_chain",
    "fund_new_account",
    "registry",
    "registry_chain",
    "registry_log_ids",
]

ANVIL_BIN = NODE_BIN / "anvil"
CAST_BIN = NODE_BIN / "cast"
# anvil's well-known development keys (from its default mnemonic); public, test-only.
ANVIL_KEYS = (
    bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"),
    bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"),
    bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"),
)
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0
ANCHORER_FUNDING_WEI = 10**18


class AnvilNode:
    """A local anvil on 127.0.0.1 whose chain survives stop()/start() (``--state``)."""

    def __init__(self, state_file: Path, port: int | None = None) -> None:
        self.state_file = state_file
        self.port = port if port is not None else _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers JSON-RPC."""
        if self.running:
            return
        self._process = subprocess.Popen(
            [
                str(ANVIL_BIN),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--silent",
                "--state",
                str(self.state_file),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the npm shim spawns the real binary: stop both
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _answers(self.url):
            if self._process.poll() is not None:
                raise RuntimeError(f"anvil exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"anvil did not answer on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop gracefully: anvil writes its state file on SIGTERM."""
        if self._process is None:
            return
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self._process = None

    def dump_state(self) -> bytes:
        """The chain's state now (``anvil_dumpState``), in the form ``--state`` loads: write it
        to ``state_file`` before a start to restart the node from this older state."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_dumpState", "params": []})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            result = json.loads(response.read())["result"]
        return gzip.decompress(bytes.fromhex(result.removeprefix("0x")))

    def kill(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Registry:
    """A deployed registry: its owner, and one funded anchorer assigned some logs."""

    chain: Chain
    address: str
    owner: LocalAccount
    anchorer: LocalAccount

    def client(self, account: LocalAccount | None = None) -> AnchorRegistryClient:
        """A client signing as ``account`` (the anchorer by default)."""
        return AnchorRegistryClient.at(self.chain, self.address, account or self.anchorer)

    @property
    def owner_client(self) -> AnchorRegistryClient:
        return self.client(self.owner)

    def funded_account(self) -> LocalAccount:
        """A fresh key with some ether, assigned no log."""
        return fund_new_account(self.chain, self.owner)

    def assign(self, log_id: bytes, account: LocalAccount | None = None) -> None:
        """Have the owner assign ``log_id`` to ``account`` (the anchorer by default)."""
        self.owner_client.assign_log(log_id, (account or self.anchorer).address)


def fund_new_account(chain: Chain, funder: LocalAccount) -> LocalAccount:
    """A fresh random key, sent enough ether by ``funder`` to pay for many anchors."""
    account: LocalAccount = Account.create()
    chain.send_value(funder, account.address, ANCHORER_FUNDING_WEI)
    return account


def deploy_registry(chain: Chain, log_ids: Iterable[bytes] = ()) -> Registry:
    """Deploy as ``chain.accounts[0]`` and assign ``log_ids`` to a freshly funded key."""
    owner = chain.accounts[0]
    address = AnchorRegistryClient.deploy(chain, owner)
    registry = Registry(
        chain=chain, address=address, owner=owner, anchorer=fund_new_account(chain, owner)
    )
    for log_id in log_ids:
        registry.assign(log_id)
    return registry


@pytest.fixture
def embedded_chain(tmp_path: Path) -> Iterator[Chain]:
    """A fresh embedded chain kept in ``tmp_path / "chain"``."""
    chain = connect(data_dir=tmp_path / "chain")
    try:
        yield chain
    finally:
        chain.close()


@pytest.fixture
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    """A running anvil node (killed at teardown); skipped if the npm binary is missing."""
    if shutil.which(str(ANVIL_BIN)) is None:
        pytest.skip(f"anvil not installed at {ANVIL_BIN} (run `npm ci`)")
    node = AnvilNode(tmp_path_factory.mktemp("anvil") / "state.json")
    node.start()
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
def anvil_chain(anvil: AnvilNode) -> Chain:
    """The anvil node as a Chain holding anvil's first three dev keys."""
    return connect(anvil.url, keys=ANVIL_KEYS)


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def any_chain(request: pytest.FixtureRequest) -> Chain:
    """Each test using this runs once on the embedded chain and once on anvil."""
    chain: Chain = request.getfixturevalue(f"{request.param}_chain")
    return chain


@pytest.fixture
def registry_chain(embedded_chain: Chain) -> Chain:
    """The chain ``registry`` deploys on; override it in a module to change kinds."""
    return embedded_chain


@pytest.fixture
def registry_log_ids() -> tuple[bytes, ...]:
    """The logs ``registry`` assigns to its anchorer; override it in a module."""
    return ()


@pytest.fixture
def registry(registry_chain: Chain, registry_log_ids: tuple[bytes, ...]) -> Registry:
    return deploy_registry(registry_chain, registry_log_ids)
