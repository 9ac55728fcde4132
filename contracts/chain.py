"""Connecting to a chain: one :class:`Chain` shape for a JSON-RPC node and the embedded chain.

Both kinds are reached through a web3 provider (``HTTPProvider`` or the embedded
provider), and both get only locally signed transactions, so code that works on one works
on the other. Network and storage failures surface as :class:`ChainUnavailableError`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from web3 import Web3
from web3.exceptions import ProviderConnectionError, TransactionNotFound

from contracts.errors import AnchorTimeoutError, ChainUnavailableError

if TYPE_CHECKING:
    from contracts.embedded import EmbeddedNode

DEFAULT_TIMEOUT_S = 10.0
TRANSFER_GAS = 21_000


@contextmanager
def unavailable_on_io_error(what: str) -> Iterator[None]:
    """Turn "could not talk to the node" failures into :class:`ChainUnavailableError`."""
    try:
        yield
    except (OSError, ProviderConnectionError, sqlite3.OperationalError) as exc:
        # requests' ConnectionError and Timeout are OSErrors; sqlite's are the embedded
        # chain's storage failing.
        raise ChainUnavailableError(f"{what}: {exc}") from exc


@dataclass(eq=False)
class Chain:
    """A connection to one chain.

    ``accounts`` are the signing keys held locally for this chain: the embedded chain's
    funded dev account first (when its key file is there), then any keys passed to
    :func:`connect`.
    """

    w3: Web3
    chain_id: int
    accounts: tuple[LocalAccount, ...]
    url: str | None = None
    data_dir: Path | None = None
    _embedded: EmbeddedNode | None = field(default=None, repr=False)

    @property
    def is_embedded(self) -> bool:
        return self._embedded is not None

    def close(self) -> None:
        """Release the embedded chain's files and lock; a no-op for RPC chains."""
        if self._embedded is not None:
            self._embedded.close()
            self._embedded = None

    def __enter__(self) -> Chain:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def block_number(self) -> int:
        with unavailable_on_io_error("reading the block number"):
            return int(self.w3.eth.block_number)

    def fee_fields(self) -> dict[str, int]:
        """EIP-1559 fee caps: twice the latest base fee plus the node's suggested tip."""
        with unavailable_on_io_error("reading fees"):
            base_fee = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
            tip = int(self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}

    def send_value(self, sender: LocalAccount, to: str, value_wei: int) -> bytes:
        """Transfer ether (e.g. to fund an anchorer key) and wait until it is mined."""
        with unavailable_on_io_error("sending a transfer"):
            nonce = self.w3.eth.get_transaction_count(sender.address, "pending")
            tx: dict[str, Any] = {
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": Web3.to_checksum_address(to),
                "value": value_wei,
                "gas": TRANSFER_GAS,
                "type": 2,
                **self.fee_fields(),
            }
            signed = sender.sign_transaction(tx)
            tx_hash = bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        self.wait_for_receipt(tx_hash, DEFAULT_TIMEOUT_S)
        return tx_hash

    def wait_for_receipt(self, tx_hash: bytes, timeout: float) -> Any:
        """The receipt of ``tx_hash`` once mined; AnchorTimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            with unavailable_on_io_error("reading a receipt"):
                try:
                    return self.w3.eth.get_transaction_receipt(Hash32(tx_hash))
                except TransactionNotFound:
                    pass
            if time.monotonic() >= deadline:
                raise AnchorTimeoutError(f"0x{tx_hash.hex()} not mined after {timeout} s")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)


def connect(
    rpc_url: str | None = None,
    *,
    data_dir: Path | None = None,
    keys: Sequence[bytes] = (),
    timeout: float = DEFAULT_TIMEOUT_S,
    create: bool = True,
) -> Chain:
    """Connect to a JSON-RPC node at ``rpc_url``, or open the embedded chain in ``data_dir``.

    Exactly one of the two must be given. ``keys`` are private keys to hold as
    ``Chain.accounts``. Raises ChainUnavailableError if the node does not answer (an RPC
    node is asked for its chain id) or another process has the embedded chain open.

    An embedded chain is created in ``data_dir`` on first use. For checking anchors, pass
    ``create=False``: a directory without a chain then raises ChainUnavailableError ("no
    embedded chain in DIR") instead of getting a new, empty chain, and nothing is written
    there. Opening an existing chain that way still takes its lock (creating the empty lock
    file if it is missing), so it fails while another process has the chain open. It does
    not stop transactions being sent through the returned Chain. (Connecting to a node
    never creates a chain, so ``create`` matters only with ``data_dir``.)
    """
    if (rpc_url is None) == (data_dir is None):
        raise ValueError("connect() needs exactly one of rpc_url or data_dir")
    held = tuple(Account.from_key(key) for key in keys)
    if rpc_url is not None:
        # No provider-level retries: the caller (e.g. the anchorer's queue) owns retry policy.
        provider = Web3.HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        w3 = Web3(provider)
        with unavailable_on_io_error(f"connecting to {rpc_url}"):
            chain_id = int(w3.eth.chain_id)
        return Chain(w3=w3, chain_id=chain_id, accounts=held, url=rpc_url)
    assert data_dir is not None
    # Imported here: RPC-only users need not load py-evm and eth-tester.
    from contracts.embedded import open_embedded

    node = open_embedded(data_dir, create=create)
    w3 = Web3(node.provider)
    dev = () if node.dev_key is None else (Account.from_key(node.dev_key),)
    return Chain(
        w3=w3,
        chain_id=int(w3.eth.chain_id),
        accounts=(*dev, *held),
        data_dir=data_dir,
        _embedded=node,
    )
