"""Signing, sending and explaining transactions: the parts of a registry client that do
not depend on which registry function is being called.

Every transaction is simulated (gas estimation doubles as a dry run that surfaces reverts),
given EIP-1559 fees and a nonce, and signed locally. Reverts are named from the ABI's
custom errors, so callers see ``StaleTreeSize`` rather than four opaque bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from contracts.chain import Chain, unavailable_on_io_error
from contracts.errors import AnchorRejectedError, ChainError
from contracts.records import PreparedTx

# Registry gas depends on little beyond first-vs-later anchor of a log; the margin covers
# estimate drift, and gas left unused is not charged.
GAS_MARGIN_NUM, GAS_MARGIN_DEN = 5, 4

# Solidity's built-in revert payloads, alongside an ABI's custom errors.
_BUILTIN_ERRORS: dict[bytes, tuple[str, list[str]]] = {
    bytes.fromhex("08c379a0"): ("Error", ["string"]),
    bytes.fromhex("4e487b71"): ("Panic", ["uint256"]),
}


def abi_signature(entry: dict[str, Any]) -> str:
    """``Name(type,...)`` of an ABI event or error (the registry's take no tuples)."""
    return f"{entry['name']}({','.join(arg['type'] for arg in entry['inputs'])})"


class RevertDecoder:
    """Names reverts by selector, from an ABI's errors plus ``Error`` and ``Panic``."""

    def __init__(self, abi: Iterable[dict[str, Any]]) -> None:
        self._table = dict(_BUILTIN_ERRORS)
        for entry in abi:
            if entry["type"] == "error":
                types = [arg["type"] for arg in entry["inputs"]]
                self._table[keccak(text=abi_signature(entry))[:4]] = (entry["name"], types)

    def decode(self, data_hex: str) -> tuple[str | None, tuple[Any, ...]]:
        """(error name, arguments) of revert data, or (None, ()) if not recognised."""
        try:
            data = bytes.fromhex(data_hex.removeprefix("0x"))
        except ValueError:
            return None, ()
        known = self._table.get(data[:4])
        if known is None:
            return None, ()
        name, types = known
        try:
            return name, tuple(abi_decode(types, data[4:]))
        except DecodingError:  # malformed arguments: the name is still worth reporting
            return name, ()

    def rejection(
        self, exc: ContractLogicError, tx_hash: bytes | None = None
    ) -> AnchorRejectedError:
        name, args = self.decode(exc.data if isinstance(exc.data, str) else "")
        shown = f"{name}{args!r}" if name else (exc.message or "execution reverted")
        return AnchorRejectedError(
            f"registry rejected the transaction: {shown}",
            error_name=name,
            error_args=args,
            tx_hash=tx_hash,
        )


def prepare_transaction(
    chain: Chain, sender: LocalAccount, fn: Any, nonce: int | None, reverts: RevertDecoder
) -> PreparedTx:
    """Simulate ``fn`` (a web3 contract function or constructor call), then sign it.

    Raises AnchorRejectedError if the simulation reverts or the node refuses it.
    """
    with unavailable_on_io_error("preparing a transaction"):
        try:
            gas = int(fn.estimate_gas({"from": sender.address}))
        except ContractLogicError as exc:
            raise reverts.rejection(exc) from exc
        except Web3RPCError as exc:
            raise AnchorRejectedError(f"node refused to simulate: {exc.message}") from exc
        if nonce is None:
            nonce = int(chain.w3.eth.get_transaction_count(sender.address, "pending"))
        tx = fn.build_transaction(
            {
                "from": sender.address,
                "chainId": chain.chain_id,
                "nonce": nonce,
                "gas": gas * GAS_MARGIN_NUM // GAS_MARGIN_DEN,
                "type": 2,
                **chain.fee_fields(),
            }
        )
    signed = sender.sign_transaction(tx)
    return PreparedTx(tx_hash=bytes(signed.hash), raw=bytes(signed.raw_transaction), nonce=nonce)


def send_raw(chain: Chain, prepared: PreparedTx) -> bytes:
    """Broadcast ``prepared``; a node that already has it (pending or mined) is success."""
    w3 = chain.w3
    with unavailable_on_io_error("sending a transaction"):
        try:
            sent = bytes(w3.eth.send_raw_transaction(prepared.raw))
        except Web3RPCError as exc:
            # "already known", or "nonce too low" because it was mined: fine if it is ours.
            try:
                w3.eth.get_transaction(Hash32(prepared.tx_hash))
            except TransactionNotFound:
                raise AnchorRejectedError(
                    f"node refused 0x{prepared.tx_hash.hex()}: {exc.message}",
                    tx_hash=prepared.tx_hash,
                ) from exc
            return prepared.tx_hash
    if sent != prepared.tx_hash:
        raise ChainError(f"node reports hash 0x{sent.hex()} for 0x{prepared.tx_hash.hex()}")
    return sent
