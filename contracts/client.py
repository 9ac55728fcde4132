"""AnchorRegistryClient: deploy the registry, assign logs to anchorers, anchor checkpoints,
read anchors back from events and receipts, and verify an anchor record against the chain.

Anchoring is two-phase for crash safety: :meth:`AnchorRegistryClient.prepare_anchor` signs
without sending, so the caller can store the transaction hash before
:meth:`~AnchorRegistryClient.send`; after a crash, :meth:`~AnchorRegistryClient.find_receipt`
tells whether it landed and ``send`` may safely be repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import BlockNumber, ChecksumAddress, Hash32
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import (
    BlockNotFound,
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import BlockIdentifier, TxParams

from contracts.artifact import load_artifact
from contracts.chain import Chain, unavailable_on_io_error
from contracts.errors import AnchorMismatchError, AnchorRejectedError, ChainError
from contracts.records import UINT64_MAX, AnchorRecord, PreparedTx
from contracts.transactions import RevertDecoder, abi_signature, prepare_transaction, send_raw

DEFAULT_WAIT_S = 60.0
# Many nodes cap eth_getLogs ranges; ask in windows no wider than this.
LOG_WINDOW_BLOCKS = 5_000
_ZERO_ADDRESS = "0x" + "00" * 20


class AnchorRegistryClient:
    """A handle on one deployed AnchorRegistry, signing with ``account`` when given."""

    def __init__(self, chain: Chain, address: str, account: LocalAccount | None) -> None:
        artifact = load_artifact()
        self.chain = chain
        self.address: ChecksumAddress = Web3.to_checksum_address(address)
        self.account = account
        self._contract = chain.w3.eth.contract(address=self.address, abi=list(artifact.abi))
        self._reverts = RevertDecoder(artifact.abi)
        self._anchored_topic = _event_topic(artifact.abi, "Anchored")
        self._assigned_topic = _event_topic(artifact.abi, "LogAssigned")

    # -- construction ------------------------------------------------------------------

    @staticmethod
    def deploy(chain: Chain, owner_key: bytes | LocalAccount) -> str:
        """Deploy a registry owned by ``owner_key``; return its checksum address."""
        owner = _as_account(owner_key)
        artifact = load_artifact()
        factory = chain.w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
        reverts = RevertDecoder(artifact.abi)
        prepared = prepare_transaction(chain, owner, factory.constructor(), None, reverts)
        send_raw(chain, prepared)
        receipt = chain.wait_for_receipt(prepared.tx_hash, DEFAULT_WAIT_S)
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise AnchorRejectedError("registry deployment failed", tx_hash=prepared.tx_hash)
        return str(receipt["contractAddress"])

    @classmethod
    def at(
        cls, chain: Chain, address: str, key: bytes | LocalAccount | None = None
    ) -> AnchorRegistryClient:
        """A client for the registry at ``address``, after checking the code there is ours."""
        client = cls(chain, address, None if key is None else _as_account(key))
        with unavailable_on_io_error("reading the registry code"):
            code = bytes(chain.w3.eth.get_code(client.address))
        if code != load_artifact().deployed_bytecode:
            raise AnchorMismatchError(
                "contract", client.address, "no AnchorRegistry code at that address"
            )
        return client

    # -- owner operations --------------------------------------------------------------

    def assign_log(self, log_id: bytes, account: str) -> bytes:
        """Make ``account`` the only one that may anchor ``log_id``; return the tx hash.

        Reassigning hands the log over (its anchors stay; the new anchorer goes on from the
        latest tree size). The zero address revokes: nobody may anchor the log until it is
        assigned again. Owner only (``NotOwner`` otherwise).
        """
        _require_bytes32("log_id", log_id)
        return self._transact(self._contract.functions.assignLog(log_id, _checksum(account)))

    def transfer_ownership(self, new_owner: str) -> bytes:
        return self._transact(self._contract.functions.transferOwnership(_checksum(new_owner)))

    def anchorer_of(self, log_id: bytes) -> str | None:
        """The account that may anchor ``log_id`` now, or None if it is not assigned."""
        _require_bytes32("log_id", log_id)
        return _assigned(self._call(self._contract.functions.anchorerOf(log_id)))

    def owner(self) -> str:
        return str(self._call(self._contract.functions.owner()))

    # -- anchoring -----------------------------------------------------------------------

    def prepare_anchor(
        self, log_id: bytes, tree_size: int, root_hash: bytes, nonce: int | None = None
    ) -> PreparedTx:
        """Check (by simulation) and sign an anchor transaction without sending it.

        Raises AnchorRejectedError naming the contract's error (e.g. ``StaleTreeSize``,
        ``NotLogAnchorer``) when the registry would revert it now.
        """
        _check_checkpoint(log_id, tree_size, root_hash)
        fn = self._contract.functions.anchor(log_id, tree_size, root_hash)
        return prepare_transaction(self.chain, self._signer(), fn, nonce, self._reverts)

    def send(self, prepared: PreparedTx) -> bytes:
        """Broadcast ``prepared``; sending one the node already has (or mined) is a no-op."""
        return send_raw(self.chain, prepared)

    def find_receipt(self, tx_hash: bytes) -> AnchorRecord | None:
        """The anchor ``tx_hash`` made, or None while it is unknown or pending.

        Raises AnchorRejectedError if it was mined but reverted.
        """
        with unavailable_on_io_error("reading a receipt"):
            try:
                receipt = self.chain.w3.eth.get_transaction_receipt(Hash32(tx_hash))
            except TransactionNotFound:
                return None
        return self._record_from_receipt(receipt)

    def wait(self, tx_hash: bytes, timeout: float = DEFAULT_WAIT_S) -> AnchorRecord:
        """Wait until ``tx_hash`` is mined and return its anchor (AnchorTimeoutError after)."""
        return self._record_from_receipt(self.chain.wait_for_receipt(tx_hash, timeout))

    def anchor(
        self, log_id: bytes, tree_size: int, root_hash: bytes, timeout: float = DEFAULT_WAIT_S
    ) -> AnchorRecord:
        """Prepare, send and wait: the one-call form for callers without a crash journal."""
        prepared = self.prepare_anchor(log_id, tree_size, root_hash)
        self.send(prepared)
        return self.wait(prepared.tx_hash, timeout)

    # -- reading anchors back --------------------------------------------------------------

    def latest(self, log_id: bytes) -> AnchorRecord | None:
        """The registry's latest anchor of ``log_id``, or None if it was never anchored."""
        _require_bytes32("log_id", log_id)
        tree_size, _root, _ts, block_number = self._call(self._contract.functions.latest(log_id))
        if tree_size == 0:
            return None
        found = self.anchors(log_id, block_number, block_number, tree_size=tree_size)
        if not found:
            raise ChainError(f"no Anchored event at block {block_number} for the latest anchor")
        return found[0]

    def anchors(
        self,
        log_id: bytes,
        from_block: int,
        to_block: int | None = None,
        *,
        tree_size: int | None = None,
    ) -> list[AnchorRecord]:
        """Every anchor of ``log_id`` in blocks ``from_block..to_block`` (inclusive; None
        means the latest block), oldest first, from ``Anchored`` events.

        With ``tree_size``, only the anchor of that size: the node filters on the indexed
        size, so finding it does not read the log's other anchors. Sizes strictly grow, so
        a registry holds at most one anchor of each size of a log.
        """
        _require_bytes32("log_id", log_id)
        if from_block < 0:
            raise ValueError(f"from_block must be >= 0, got {from_block}")
        topics = [Hash32(self._anchored_topic), Hash32(log_id)]
        if tree_size is not None:
            _check_tree_size(tree_size)
            topics.append(Hash32(tree_size.to_bytes(32, "big")))
        last = self.chain.block_number() if to_block is None else to_block
        records: list[AnchorRecord] = []
        receipts: dict[bytes, Any] = {}
        for start in range(from_block, last + 1, LOG_WINDOW_BLOCKS):
            end = min(start + LOG_WINDOW_BLOCKS - 1, last)
            with unavailable_on_io_error("reading Anchored events"):
                logs = self.chain.w3.eth.get_logs(
                    {
                        "address": self.address,
                        "topics": list(topics),
                        "fromBlock": start,
                        "toBlock": end,
                    }
                )
                for log in logs:
                    tx_hash = bytes(log["transactionHash"])
                    if tx_hash not in receipts:
                        receipts[tx_hash] = self.chain.w3.eth.get_transaction_receipt(
                            Hash32(tx_hash)
                        )
                    records.append(self._record(receipts[tx_hash], log))
        return records

    def is_canonical(self, record: AnchorRecord) -> bool:
        """Whether ``record``'s block is still the chain's block at its height.

        Blocks chain by hash: when it is, every anchor in an earlier block of this chain is
        too, so one call vouches for all anchors up to this one. False after a reorg past it,
        or when the node lost blocks (restarted from older state, or reset).
        """
        with unavailable_on_io_error("reading a block"):
            try:
                block = self.chain.w3.eth.get_block(BlockNumber(record.block_number))
            except BlockNotFound:
                return False
        return bytes(block["hash"]) == record.block_hash

    def has_code(self) -> bool:
        """Whether this registry's code is (still) at its address: a reset chain has none."""
        with unavailable_on_io_error("reading the registry code"):
            code = bytes(self.chain.w3.eth.get_code(self.address))
        return code == load_artifact().deployed_bytecode

    def next_nonce(self) -> int:
        """The signing account's next nonce, counting transactions pending at the node."""
        with unavailable_on_io_error("reading the account's nonce"):
            return int(self.chain.w3.eth.get_transaction_count(self._signer().address, "pending"))

    def verify_anchor(self, record: AnchorRecord) -> None:
        """Re-read ``record``'s transaction, block and event from the chain.

        The registry address checked against is this client's (one the caller trusts),
        never the record's own claim. Raises AnchorMismatchError naming the first field
        that differs, in the order: chain_id, contract, tx_hash, status, block_number,
        block_hash, log_id, tree_size, root_hash, anchorer, timestamp, gas_used.

        ``anchorer`` is checked twice: against the event, and against ``anchorerOf(log_id)``
        as the anchoring transaction ran, so a later reassignment of the log does not
        invalidate anchors made before it. While the log's current assignment predates the
        anchor, the current state tells; if the log was reassigned since, the check may need
        the registry state as of the anchor's block, and on a node that has pruned it (only
        archive nodes keep old state) this raises ChainError rather than skip the check.
        """
        w3 = self.chain.w3
        with unavailable_on_io_error("verifying an anchor"):
            live_chain_id = int(w3.eth.chain_id)
            if record.chain_id != live_chain_id:
                raise AnchorMismatchError("chain_id", record.chain_id, live_chain_id)
            if record.contract != self.address:
                raise AnchorMismatchError("contract", record.contract, self.address)
            try:
                receipt = w3.eth.get_transaction_receipt(Hash32(record.tx_hash))
            except TransactionNotFound:
                raise AnchorMismatchError("tx_hash", record.tx_hash, None) from None
            if receipt["status"] != 1:
                raise AnchorMismatchError("status", 1, receipt["status"])
            if receipt["blockNumber"] != record.block_number:
                raise AnchorMismatchError(
                    "block_number", record.block_number, receipt["blockNumber"]
                )
            # The receipt's block must also be the canonical block at that height.
            block = w3.eth.get_block(receipt["blockNumber"])
            for block_hash in (bytes(receipt["blockHash"]), bytes(block["hash"])):
                if block_hash != record.block_hash:
                    raise AnchorMismatchError("block_hash", record.block_hash, block_hash)
        logs = self._anchored_logs(receipt)
        if not logs:
            raise AnchorMismatchError("contract", record.contract, receipt["to"])
        matching = [lg for lg in logs if bytes(lg["topics"][1]) == record.log_id]
        if not matching:
            raise AnchorMismatchError("log_id", record.log_id, bytes(logs[0]["topics"][1]))
        # One transaction may anchor a log more than once (e.g. through a batching contract).
        size_topic = record.tree_size.to_bytes(32, "big")
        exact = [lg for lg in matching if bytes(lg["topics"][2]) == size_topic]
        anchored = (exact or matching)[0]
        actual = self._record(receipt, anchored)
        for name in ("tree_size", "root_hash", "anchorer", "timestamp", "gas_used"):
            if getattr(actual, name) != getattr(record, name):
                raise AnchorMismatchError(name, getattr(record, name), getattr(actual, name))
        if block["timestamp"] != record.timestamp:
            raise AnchorMismatchError("timestamp", record.timestamp, block["timestamp"])
        bound = self._anchorer_when(record.log_id, receipt, anchored)
        if bound != record.anchorer:
            raise AnchorMismatchError("anchorer", record.anchorer, bound)

    # -- internals ---------------------------------------------------------------------------

    def _signer(self) -> LocalAccount:
        if self.account is None:
            raise ChainError("this client is read-only: pass a key to AnchorRegistryClient.at")
        return self.account

    def _call(self, fn: Any, block_number: int | None = None) -> Any:
        sender = self.account.address if self.account is not None else _ZERO_ADDRESS
        block: BlockIdentifier = "latest" if block_number is None else BlockNumber(block_number)
        with unavailable_on_io_error("calling the registry"):
            try:
                return fn.call({"from": sender}, block)
            except ContractLogicError as exc:
                raise self._reverts.rejection(exc) from exc

    def _anchorer_when(self, log_id: bytes, receipt: Any, anchored: Any) -> str | None:
        """``anchorerOf(log_id)`` as the transaction that emitted ``anchored`` ran.

        When the log's current assignment is older than the anchor's block, that is the
        answer. Otherwise (the log was assigned in that block or since), the last
        ``LogAssigned`` before the anchor in its block is; failing that, the registry state
        just before the block, which only a node that keeps old state can give.
        """
        block_number = int(receipt["blockNumber"])
        anchorer, assigned_block = self._call(self._contract.functions.assignment(log_id))
        if assigned_block < block_number:
            return _assigned(anchorer)
        with unavailable_on_io_error("reading LogAssigned events"):
            assigned = self.chain.w3.eth.get_logs(
                {
                    "address": self.address,
                    "topics": [Hash32(self._assigned_topic), Hash32(log_id)],
                    "fromBlock": block_number,
                    "toBlock": block_number,
                }
            )
        earlier = sorted(
            (lg for lg in assigned if lg["logIndex"] < anchored["logIndex"]),
            key=lambda lg: int(lg["logIndex"]),
        )
        if earlier:
            return _assigned("0x" + bytes(earlier[-1]["topics"][2])[12:].hex())
        try:
            before = self._call(self._contract.functions.anchorerOf(log_id), block_number - 1)
        except Web3RPCError as exc:
            raise ChainError(
                f"log 0x{log_id.hex()} was assigned again after this anchor (in block "
                f"{assigned_block}); who could anchor it in block {block_number} is in the "
                f"registry state at block {block_number - 1}, which this node does not have "
                f"(an archive node has it): {exc.message}"
            ) from exc
        return _assigned(before)

    def _transact(self, fn: Any) -> bytes:
        prepared = prepare_transaction(self.chain, self._signer(), fn, None, self._reverts)
        send_raw(self.chain, prepared)
        receipt = self.chain.wait_for_receipt(prepared.tx_hash, DEFAULT_WAIT_S)
        if receipt["status"] != 1:
            raise self._failure(receipt)
        return prepared.tx_hash

    def _anchored_logs(self, receipt: Any) -> list[Any]:
        return [
            log
            for log in receipt["logs"]
            if log["address"] == self.address
            and log["topics"]
            and bytes(log["topics"][0]) == self._anchored_topic
        ]

    def _record_from_receipt(self, receipt: Any) -> AnchorRecord:
        if receipt["status"] != 1:
            raise self._failure(receipt)
        logs = self._anchored_logs(receipt)
        if len(logs) != 1:
            raise AnchorMismatchError("contract", self.address, f"{len(logs)} Anchored events")
        return self._record(receipt, logs[0])

    def _record(self, receipt: Any, log: Any) -> AnchorRecord:
        args = self._contract.events.Anchored().process_log(log)["args"]
        return AnchorRecord(
            chain_id=self.chain.chain_id,
            contract=self.address,
            log_id=bytes(args["logId"]),
            tree_size=int(args["treeSize"]),
            root_hash=bytes(args["rootHash"]),
            tx_hash=bytes(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            block_hash=bytes(receipt["blockHash"]),
            anchorer=_checksum(args["anchorer"]),
            timestamp=int(args["timestamp"]),
            gas_used=int(receipt["gasUsed"]),
        )

    def _failure(self, receipt: Any) -> AnchorRejectedError:
        """Explain a mined, reverted transaction by replaying it on the state before it."""
        tx_hash = bytes(receipt["transactionHash"])
        w3 = self.chain.w3
        with unavailable_on_io_error("replaying a failed transaction"):
            tx = w3.eth.get_transaction(Hash32(tx_hash))
            replay: TxParams = {
                "from": tx["from"],
                "to": tx["to"],
                "data": tx["input"],
                "gas": tx["gas"],
            }
            try:
                w3.eth.call(replay, receipt["blockNumber"] - 1)
            except ContractLogicError as exc:
                return self._reverts.rejection(exc, tx_hash)
            except Web3RPCError:
                pass  # the node may have pruned that state: the reason stays unknown
        return AnchorRejectedError(
            f"transaction 0x{tx_hash.hex()} reverted (gas used {receipt['gasUsed']} "
            f"of {tx['gas']})",
            tx_hash=tx_hash,
        )


# -- module helpers -------------------------------------------------------------------------


def _as_account(key: bytes | LocalAccount) -> LocalAccount:
    if isinstance(key, bytes):
        account: LocalAccount = Account.from_key(key)
        return account
    return key


def _checksum(address: str) -> str:
    return str(Web3.to_checksum_address(address))


def _assigned(address: str) -> str | None:
    """A registry address as the client returns it: checksummed, None for the zero address."""
    return None if int(address, 16) == 0 else _checksum(address)


def _event_topic(abi: Sequence[dict[str, Any]], name: str) -> bytes:
    entry = next(e for e in abi if e["type"] == "event" and e["name"] == name)
    return keccak(text=abi_signature(entry))


def _require_bytes32(name: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes")


def _check_tree_size(tree_size: int) -> None:
    if type(tree_size) is not int or not 1 <= tree_size <= UINT64_MAX:
        raise ValueError(f"tree_size must be an int in 1..2**64-1, got {tree_size!r}")


def _check_checkpoint(log_id: bytes, tree_size: int, root_hash: bytes) -> None:
    _require_bytes32("log_id", log_id)
    _require_bytes32("root_hash", root_hash)
    _check_tree_size(tree_size)
