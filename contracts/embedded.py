"""The embedded chain: a py-evm chain in this process, persisted in ``data_dir``, behind a
web3 provider that answers like a JSON-RPC node.

Layout of ``data_dir``:

* ``chain.sqlite3`` -- every py-evm key/value (blocks, receipts, tx index, state trie),
  committed once per mined block (see :mod:`contracts.evmdb`);
* ``dev-account.key`` -- the hex private key of the account funded at genesis, created
  (mode 0600, crash-safe: see :mod:`contracts.devkey`) together with the chain. A chain
  whose key file is gone (say, a copy given to an auditor) opens with no dev account;
  no new key is made for it, since genesis funded the old one;
* ``lock`` -- held (``flock``) while a process has the chain open: two writers would fork it.

``open_embedded(data_dir, create=False)`` opens only a chain that is already there: on a
directory without one it raises ChainUnavailableError and makes nothing (no directory,
database or key). On one with a chain it still takes the lock, so two processes never have
the chain open at once, and that creates the empty ``lock`` file if it was missing.

Each transaction is mined into its own block as soon as it arrives (auto-mine), stamped
with the wall-clock time (or parent + 1 s when blocks come faster than one a second). The
chain only grows: snapshots, reverts and time travel are refused. Transactions arrive
signed; the node holds no keys. Reverts come back as JSON-RPC errors (code 3, revert data
attached) exactly as geth or anvil return them, so clients have one error path.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from eth.abc import VirtualMachineAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.estimators.gas import binary_gas_search_intrinsic_tolerance
from eth.exceptions import CanonicalHeadNotFound
from eth.exceptions import TransactionNotFound as EVMTransactionNotFound
from eth.typing import AccountDetails
from eth.vm.forks.prague import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import get_default_genesis_params
from eth_tester.backends.pyevm.serializers import (
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_tester.exceptions import BlockNotFound, TransactionNotFound
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_typing import Address, BlockNumber, Hash32
from eth_utils.exceptions import ValidationError as EVMValidationError
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.eth_tester.defaults import API_ENDPOINTS
from web3.types import RPCEndpoint

from contracts.devkey import load_or_create_key, read_key
from contracts.errors import ChainError, ChainUnavailableError
from contracts.evmdb import SqliteKV

# A development chain id ("1337" then "9162", after the Merkle log RFC); records carry
# it, so an embedded-chain anchor is never mistaken for one on a public network.
EMBEDDED_CHAIN_ID = 13_379_162
DB_FILE = "chain.sqlite3"
DEV_KEY_FILE = "dev-account.key"
LOCK_FILE = "lock"
DEV_BALANCE_WEI = 1_000_000 * 10**18
ZERO_ADDRESS = b"\x00" * 20
_ZERO_ADDRESS_HEX = "0x" + "00" * 20


class _EmbeddedChain(MiningChain):
    chain_id = EMBEDDED_CHAIN_ID
    vm_configuration: tuple[tuple[BlockNumber, type[VirtualMachineAPI]], ...] = (
        (BlockNumber(0), PragueVM),
    )

    def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
        # A dev chain has no reason to drift its gas limit.
        header_params["gas_limit"] = parent_header.gas_limit
        return super().create_header_from_parent(parent_header, **header_params)

    def get_transaction_builder(self) -> Any:
        return self.get_vm().get_transaction_builder()


class _Revert(Exception):
    """The EVM reverted a call or gas estimate; ``data`` is the raw revert payload."""

    def __init__(self, data: bytes, message: str) -> None:
        super().__init__(message)
        self.data = data


class _PersistentBackend(PyEVMBackend):  # type: ignore[misc]  # eth-tester ships no types
    """eth-tester's py-evm backend on a SQLite-backed, append-only, auto-committing chain."""

    def __init__(self, kv: SqliteKV, dev_address: bytes | None) -> None:
        """Open the chain in ``kv``, first writing its genesis (funding ``dev_address``) if
        ``kv`` holds none yet."""
        # PyEVMBackend.__init__ would build a throwaway in-memory chain; build ours instead.
        self.account_keys = ()  # the node holds no keys: transactions arrive signed
        self._kv = kv
        self._db = AtomicDB(kv)
        if not _has_chain(kv):
            if dev_address is None:
                raise ChainError("a new embedded chain needs a dev address to fund")
            dev_account: AccountDetails = {
                "balance": DEV_BALANCE_WEI,
                "nonce": 0,
                "code": b"",
                "storage": {},
            }
            genesis_state = {Address(dev_address): dev_account}
            _EmbeddedChain.from_genesis(self._db, get_default_genesis_params(), genesis_state)
            kv.commit()
        self.chain = _EmbeddedChain(self._db)

    def _abort(self) -> None:
        """Drop uncommitted writes and reload the chain from the last committed block."""
        self._kv.rollback()
        self.chain = _EmbeddedChain(self._db)

    # The chain only grows.
    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the embedded chain is append-only")

    def take_snapshot(self) -> Any:
        raise NotImplementedError("the embedded chain is append-only")

    def revert_to_snapshot(self, snapshot: Any) -> None:
        raise NotImplementedError("the embedded chain is append-only")

    def time_travel(self, to_timestamp: int) -> int:
        raise NotImplementedError("the embedded chain keeps wall-clock time")

    def send_raw_transaction(self, raw_transaction: bytes) -> bytes:
        # py-evm does not check a transaction's chain id; a node must (replay protection).
        chain_id = self.chain.get_transaction_builder().decode(raw_transaction).chain_id
        if chain_id != EMBEDDED_CHAIN_ID:
            raise EVMValidationError(
                f"invalid chain id {chain_id}: this chain is {EMBEDDED_CHAIN_ID} "
                "(and accepts only replay-protected transactions)"
            )
        if not self.chain.get_block().transactions:
            # The pending header was stamped when the previous block was mined, which may
            # be long ago; restamp it now, before anything executes against it.
            parent = self.chain.get_canonical_head()
            self.chain.set_header_timestamp(max(parent.timestamp + 1, int(time.time())))
        try:
            tx_hash: bytes = super().send_raw_transaction(raw_transaction)
        except BaseException:
            self._abort()
            raise
        return tx_hash

    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = ZERO_ADDRESS) -> Any:
        try:
            hashes = super().mine_blocks(num_blocks, coinbase)
            self._kv.commit()
        except BaseException:
            self._abort()
            raise
        return hashes

    # eth-tester finds a transaction by walking every block from the head down; py-evm
    # keeps a tx-hash index, so use it (lookups stay O(1) however long the chain grows).
    def _locate(self, tx_hash: bytes) -> tuple[Any, Any, int]:
        pending = self.chain.get_block()
        for index, tx in enumerate(pending.transactions):
            if tx.hash == tx_hash:
                return pending, tx, index
        try:
            block_number, index = self.chain.chaindb.get_transaction_index(Hash32(tx_hash))
        except EVMTransactionNotFound as exc:
            raise TransactionNotFound(f"no transaction 0x{tx_hash.hex()}") from exc
        block = self.chain.get_canonical_block_by_number(block_number)
        return block, block.transactions[index], index

    def _is_pending(self, block: Any) -> bool:
        return bool(block.number == self.chain.get_block().number)

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        block, tx, index = self._locate(transaction_hash)
        return serialize_transaction(block, tx, index, self._is_pending(block))

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        block, tx, index = self._locate(transaction_hash)
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(
            block, receipts, tx, index, self._is_pending(block), self.chain.get_vm()
        )

    # Calls and estimates: revert data must reach the client intact (eth-tester turns it
    # into a string), and, as on geth, an unfunded sender may still call.
    def _state_at(self, block_number: Any) -> Any:
        head = self.chain.get_canonical_head()
        if block_number in ("latest", "safe", "finalized"):
            header = head
        elif block_number == "pending":
            header = self.chain.header
        elif block_number == "earliest":
            header = self.chain.get_canonical_block_header_by_number(BlockNumber(0))
        elif isinstance(block_number, int) and 0 <= block_number <= head.block_number:
            header = self.chain.get_canonical_block_header_by_number(BlockNumber(block_number))
        else:
            raise BlockNotFound(f"no block {block_number!r}")
        return self.chain.get_vm(at_header=header).state

    def _spoof(self, transaction: dict[str, Any], block_number: Any, gas: int) -> Any:
        unsigned = self._get_normalized_and_unsigned_evm_transaction(
            {**transaction, "gas": gas}, block_number
        )
        return SpoofTransaction(unsigned, from_=transaction.get("from") or ZERO_ADDRESS)

    @contextmanager
    def _funded(self, state: Any, tx: Any) -> Iterator[None]:
        """Let the sender afford ``tx`` for the duration of a read-only execution."""
        snapshot = state.snapshot()
        try:
            price = getattr(tx, "max_fee_per_gas", None) or tx.gas_price
            needed = tx.gas * price + tx.value
            if state.get_balance(tx.sender) < needed:
                state.set_balance(tx.sender, needed)
            yield
        finally:
            state.revert(snapshot)

    def _execute(self, state: Any, tx: Any) -> Any:
        with self._funded(state, tx):
            return state.apply_transaction(tx)

    def call(self, transaction: dict[str, Any], block_number: Any = "latest") -> bytes:
        state = self._state_at(block_number)
        gas = transaction.get("gas") or state.gas_limit
        computation = self._execute(state, self._spoof(transaction, block_number, gas))
        if computation.is_error:
            raise _revert(computation.error)
        output: bytes = computation.output
        return output

    def estimate_gas(self, transaction: dict[str, Any], block_number: Any = "latest") -> int:
        """Run once with the block gas limit, then confirm the gas that run consumed.

        py-evm's own estimator bisects down from the block gas limit (a dozen executions);
        the consumed gas is nearly always enough, and when it is not we bisect after all.
        """
        state = self._state_at(block_number)
        full = self._spoof(transaction, block_number, state.gas_limit)
        computation = self._execute(state, full)
        if computation.is_error:
            raise _revert(computation.error)
        consumed = int(full.intrinsic_gas + computation.get_gas_used())
        if not self._execute(state, self._spoof(transaction, block_number, consumed)).is_error:
            return consumed
        with self._funded(state, full):
            return int(binary_gas_search_intrinsic_tolerance(state, full))


def _has_chain(kv: SqliteKV) -> bool:
    try:
        ChainDB(AtomicDB(kv)).get_canonical_head()
    except CanonicalHeadNotFound:
        return False
    return True


def _revert(error: Exception) -> _Revert:
    data = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
    return _Revert(data, f"execution reverted: {type(error).__name__}")


class EmbeddedProvider(EthereumTesterProvider):
    """web3 provider over the embedded chain: one request at a time, RPC-shaped errors."""

    def __init__(self, backend: _PersistentBackend) -> None:
        # eth-tester answers eth_chainId with a constant of its own; answer with ours.
        endpoints = {**API_ENDPOINTS, "eth": {**API_ENDPOINTS["eth"], "chainId": _chain_id}}
        super().__init__(EthereumTester(backend, auto_mine_transactions=True), endpoints)
        self._lock = threading.RLock()

    def make_request(self, method: RPCEndpoint, params: Any) -> Any:
        if method in ("eth_call", "eth_estimateGas") and not params[0].get("from"):
            params = [{**params[0], "from": _ZERO_ADDRESS_HEX}, *params[1:]]
        with self._lock:
            try:
                return super().make_request(method, params)
            except _Revert as exc:
                return _error_response(3, str(exc), "0x" + exc.data.hex())
            except (EVMValidationError, TesterValidationError) as exc:
                # What a node says for a bad nonce, too little balance, a malformed tx...
                return _error_response(-32000, str(exc), None)


def _chain_id(tester: Any, params: Any) -> int:
    return EMBEDDED_CHAIN_ID


def _error_response(code: int, message: str, data: str | None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": 0, "error": error}


@dataclass
class EmbeddedNode:
    """An opened embedded chain: its provider, its funded dev key (None when the key file
    is gone), and its data_dir lock."""

    provider: EmbeddedProvider
    dev_key: bytes | None
    data_dir: Path
    _kv: SqliteKV
    _lock_file: IO[bytes]

    def close(self) -> None:
        self._kv.close()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()


def open_embedded(data_dir: Path, *, create: bool = True) -> EmbeddedNode:
    """Open the embedded chain kept in ``data_dir``, making one there first if there is none;
    with ``create=False``, raise ChainUnavailableError instead and make nothing."""
    if not create and not (data_dir / DB_FILE).is_file():
        raise ChainUnavailableError(f"no embedded chain in {data_dir}")
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_file = (data_dir / LOCK_FILE).open("ab")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        lock_file.close()
        raise ChainUnavailableError(
            f"embedded chain in {data_dir} is open in another process"
        ) from exc
    try:
        kv = _open_kv(data_dir, create)
        try:
            dev_key = _dev_key(data_dir / DEV_KEY_FILE, kv, create)
            dev_address = None if dev_key is None else Account.from_key(dev_key).address
            backend = _PersistentBackend(
                kv, None if dev_address is None else bytes.fromhex(dev_address[2:])
            )
        except BaseException:
            kv.close()
            raise
    except BaseException:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        lock_file.close()
        raise
    return EmbeddedNode(EmbeddedProvider(backend), dev_key, data_dir, kv, lock_file)


def _open_kv(data_dir: Path, create: bool) -> SqliteKV:
    try:
        return SqliteKV(data_dir / DB_FILE, create=create)
    except FileNotFoundError:
        raise ChainUnavailableError(f"no embedded chain in {data_dir}") from None


def _dev_key(path: Path, kv: SqliteKV, create: bool) -> bytes | None:
    """The dev key: made only together with a new chain, which funds it at genesis."""
    if _has_chain(kv):
        try:
            return read_key(path)
        except FileNotFoundError:
            return None
    if not create:
        raise ChainUnavailableError(f"no embedded chain in {path.parent}")
    return load_or_create_key(path)
