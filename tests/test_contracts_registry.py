"""AnchorRegistry rules and the client's anchoring API, on the embedded chain and on anvil."""

from __future__ import annotations

import hashlib

import pytest
from eth_abi import decode as abi_decode
from eth_utils import keccak

from contracts.artifact import load_artifact
from contracts.chain import Chain
from contracts.client import AnchorRegistryClient
from contracts.errors import AnchorMismatchError, AnchorRejectedError, ChainError
from contracts.records import AnchorRecord, PreparedTx
from tests.chain_fixtures import *  # noqa: F403 - fixtures are found by name
from tests.chain_fixtures import Registry

LOG_A = hashlib.sha256(b"log A").digest()
LOG_B = hashlib.sha256(b"log B").digest()


def root(n: int, log_id: bytes = LOG_A) -> bytes:
    return hashlib.sha256(log_id + n.to_bytes(8, "big")).digest()


@pytest.fixture
def registry_chain(any_chain: Chain) -> Chain:
    return any_chain


def rejected_name(excinfo: pytest.ExceptionInfo[AnchorRejectedError]) -> str | None:
    return excinfo.value.error_name


# -- who may do what -------------------------------------------------------------------------


def test_deployer_owns_and_only_listed_accounts_anchor(registry: Registry) -> None:
    client = registry.client()
    assert client.owner() == registry.owner.address
    assert client.is_anchorer(registry.anchorer.address)
    assert not client.is_anchorer(registry.owner.address)


def test_non_anchorer_is_rejected(registry: Registry) -> None:
    stranger = registry.funded_account()
    with pytest.raises(AnchorRejectedError) as excinfo:
        registry.client(stranger).anchor(LOG_A, 1, root(1))
    assert rejected_name(excinfo) == "NotAnchorer"
    assert excinfo.value.error_args[0].lower() == stranger.address.lower()


def test_owner_is_not_implicitly_an_anchorer(registry: Registry) -> None:
    with pytest.raises(AnchorRejectedError) as excinfo:
        registry.owner_client.prepare_anchor(LOG_A, 1, root(1))
    assert rejected_name(excinfo) == "NotAnchorer"


def test_removed_anchorer_is_rejected(registry: Registry) -> None:
    client = registry.client()
    client.anchor(LOG_A, 1, root(1))
    registry.owner_client.remove_anchorer(registry.anchorer.address)
    assert not client.is_anchorer(registry.anchorer.address)
    with pytest.raises(AnchorRejectedError) as excinfo:
        client.anchor(LOG_A, 2, root(2))
    assert rejected_name(excinfo) == "NotAnchorer"
    registry.owner_client.add_anchorer(registry.anchorer.address)
    assert client.anchor(LOG_A, 2, root(2)).tree_size == 2


@pytest.mark.parametrize("operation", ["add_anchorer", "remove_anchorer", "transfer_ownership"])
def test_only_the_owner_manages(registry: Registry, operation: str) -> None:
    stranger = registry.funded_account()
    with pytest.raises(AnchorRejectedError) as excinfo:
        getattr(registry.client(), operation)(stranger.address)
    assert rejected_name(excinfo) == "NotOwner"
    assert excinfo.value.error_args[0].lower() == registry.anchorer.address.lower()


def test_zero_address_cannot_be_anchorer_or_owner(registry: Registry) -> None:
    zero = "0x" + "00" * 20
    for operation in (registry.owner_client.add_anchorer, registry.owner_client.transfer_ownership):
        with pytest.raises(AnchorRejectedError) as excinfo:
            operation(zero)
        assert rejected_name(excinfo) == "ZeroAddress"


def test_ownership_transfer_moves_management_rights(registry: Registry) -> None:
    new_owner = registry.funded_account()
    registry.owner_client.transfer_ownership(new_owner.address)
    assert registry.client().owner() == new_owner.address
    with pytest.raises(AnchorRejectedError):
        registry.owner_client.add_anchorer(new_owner.address)
    registry.client(new_owner).add_anchorer(new_owner.address)
    assert registry.client().is_anchorer(new_owner.address)


def test_anchorer_list_changes_are_events(registry: Registry) -> None:
    w3 = registry.chain.w3
    owner = registry.owner_client
    account = registry.funded_account().address

    def events(tx_hash: bytes) -> list[tuple[bytes, bytes]]:
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        return [(bytes(log["topics"][0]), bytes(log["topics"][1])) for log in receipt["logs"]]

    account_topic = bytes(12) + bytes.fromhex(account[2:])
    added = keccak(text="AnchorerAdded(address)")
    removed = keccak(text="AnchorerRemoved(address)")
    assert events(owner.add_anchorer(account)) == [(added, account_topic)]
    assert events(owner.add_anchorer(account)) == []  # already listed: no change, no event
    assert events(owner.remove_anchorer(account)) == [(removed, account_topic)]
    assert events(owner.remove_anchorer(account)) == []


def test_at_refuses_an_address_without_registry_code(registry: Registry) -> None:
    with pytest.raises(AnchorMismatchError) as excinfo:
        AnchorRegistryClient.at(registry.chain, registry.owner.address)
    assert excinfo.value.field == "contract"


def test_read_only_client_cannot_sign(registry: Registry) -> None:
    reader = AnchorRegistryClient.at(registry.chain, registry.address)
    assert reader.is_anchorer(registry.anchorer.address)
    with pytest.raises(ChainError, match="read-only"):
        reader.prepare_anchor(LOG_A, 1, root(1))


# -- tree sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "new_root"),
    [
        ("equal size, same root (replay)", 5, root(5)),
        ("equal size, other root (fork)", 5, root(99)),
        ("smaller size (rollback)", 4, root(4)),
        ("size one (rollback to start)", 1, root(1)),
    ],
)
def test_stale_tree_sizes_are_rejected(
    registry: Registry,
    name: str,
    size: int,
    new_root: bytes,
) -> None:
    client = registry.client()
    client.anchor(LOG_A, 5, root(5))
    with pytest.raises(AnchorRejectedError) as excinfo:
        client.anchor(LOG_A, size, new_root)
    assert rejected_name(excinfo) == "StaleTreeSize", name
    assert excinfo.value.error_args == (LOG_A, 5, size)
    latest = client.latest(LOG_A)
    assert latest is not None
    assert (latest.tree_size, latest.root_hash) == (5, root(5))


@pytest.mark.parametrize("size", [0, -1, 2**64, True])
def test_out_of_range_sizes_never_reach_the_chain(registry: Registry, size: int) -> None:
    with pytest.raises(ValueError, match="tree_size"):
        registry.client().prepare_anchor(LOG_A, size, root(1))


def test_malformed_ids_never_reach_the_chain(registry: Registry) -> None:
    client = registry.client()
    with pytest.raises(ValueError, match="log_id"):
        client.prepare_anchor(LOG_A[:31], 1, root(1))
    with pytest.raises(ValueError, match="root_hash"):
        client.prepare_anchor(LOG_A, 1, root(1).hex().encode())


def test_tx_that_went_stale_after_prepare_fails_with_decoded_reason(
    registry: Registry,
) -> None:
    """Prepared while valid, mined after another anchorer moved the log past it."""
    client = registry.client()
    other = registry.funded_account()
    registry.owner_client.add_anchorer(other.address)
    prepared = client.prepare_anchor(LOG_A, 10, root(10))
    registry.client(other).anchor(LOG_A, 20, root(20))
    client.send(prepared)
    with pytest.raises(AnchorRejectedError) as excinfo:
        client.wait(prepared.tx_hash)
    assert rejected_name(excinfo) == "StaleTreeSize"
    assert excinfo.value.error_args == (LOG_A, 20, 10)
    assert excinfo.value.tx_hash == prepared.tx_hash


def test_logs_are_independent(registry: Registry) -> None:
    client = registry.client()
    client.anchor(LOG_A, 10, root(10))
    assert client.latest(LOG_B) is None
    record_b = client.anchor(LOG_B, 1, root(1, LOG_B))
    with pytest.raises(AnchorRejectedError):
        client.anchor(LOG_A, 9, root(9))
    client.anchor(LOG_B, 2, root(2, LOG_B))
    latest_a, latest_b = client.latest(LOG_A), client.latest(LOG_B)
    assert latest_a is not None
    assert latest_b is not None
    assert (latest_a.tree_size, latest_a.root_hash) == (10, root(10))
    assert (latest_b.tree_size, latest_b.root_hash) == (2, root(2, LOG_B))
    assert record_b.log_id == LOG_B


# -- what the chain records -----------------------------------------------------------------


def test_event_carries_exactly_what_was_anchored(registry: Registry) -> None:
    client = registry.client()
    record = client.anchor(LOG_A, 7, root(7))
    w3 = registry.chain.w3
    receipt = w3.eth.get_transaction_receipt(record.tx_hash)
    block = w3.eth.get_block(receipt["blockNumber"])
    (log,) = receipt["logs"]
    # Decode by hand from the ABI, independently of the client's decoding.
    event_abi = next(e for e in load_artifact().abi if e.get("name") == "Anchored")
    signature = "Anchored(" + ",".join(i["type"] for i in event_abi["inputs"]) + ")"
    assert signature == "Anchored(bytes32,uint64,bytes32,uint64,address)"
    assert log["address"] == registry.address
    assert [bytes(t) for t in log["topics"]] == [
        keccak(text=signature),
        LOG_A,
        (7).to_bytes(32, "big"),
    ]
    root_hash, timestamp, anchorer = abi_decode(
        ["bytes32", "uint64", "address"], bytes(log["data"])
    )
    assert root_hash == root(7)
    assert timestamp == block["timestamp"]
    assert anchorer.lower() == registry.anchorer.address.lower()
    assert record == AnchorRecord(
        chain_id=registry.chain.chain_id,
        contract=registry.address,
        log_id=LOG_A,
        tree_size=7,
        root_hash=root(7),
        tx_hash=bytes(receipt["transactionHash"]),
        block_number=receipt["blockNumber"],
        block_hash=bytes(block["hash"]),
        timestamp=block["timestamp"],
        gas_used=receipt["gasUsed"],
    )


def test_latest_returns_the_full_record_of_the_last_anchor(registry: Registry) -> None:
    client = registry.client()
    assert client.latest(LOG_A) is None
    client.anchor(LOG_A, 3, root(3))
    last = client.anchor(LOG_A, 8, root(8))
    assert client.latest(LOG_A) == last
    raw = client._contract.functions.latest(LOG_A).call()
    assert tuple(raw) == (8, root(8), last.timestamp, last.block_number)


def test_anchors_by_block_range(registry: Registry) -> None:
    client = registry.client()
    start = registry.chain.block_number()
    records = []
    for size in (1, 2, 3, 4, 5):
        records.append(client.anchor(LOG_A, size, root(size)))
        client.anchor(LOG_B, size, root(size, LOG_B))
    assert client.anchors(LOG_A, start) == records
    assert client.anchors(LOG_A, records[1].block_number, records[3].block_number) == records[1:4]
    assert client.anchors(LOG_A, records[1].block_number + 1, records[2].block_number - 1) == []
    assert client.anchors(LOG_A, 0, start) == []
    assert [r.tree_size for r in client.anchors(LOG_B, start)] == [1, 2, 3, 4, 5]
    assert client.anchors(hashlib.sha256(b"never").digest(), start) == []


# -- two-phase sending -------------------------------------------------------------------------


def test_prepare_find_send_wait(registry: Registry) -> None:
    client = registry.client()
    prepared = client.prepare_anchor(LOG_A, 1, root(1))
    assert client.find_receipt(prepared.tx_hash) is None
    assert client.latest(LOG_A) is None
    assert client.send(prepared) == prepared.tx_hash
    record = client.wait(prepared.tx_hash)
    assert record.tx_hash == prepared.tx_hash
    assert client.find_receipt(prepared.tx_hash) == record
    assert client.latest(LOG_A) == record


def test_send_is_idempotent(registry: Registry) -> None:
    client = registry.client()
    w3 = registry.chain.w3
    nonce_before = w3.eth.get_transaction_count(registry.anchorer.address)
    prepared = client.prepare_anchor(LOG_A, 1, root(1))
    assert prepared.nonce == nonce_before
    client.send(prepared)
    client.send(prepared)  # already known or already mined
    record = client.wait(prepared.tx_hash)
    client.send(prepared)  # certainly mined by now
    assert client.anchors(LOG_A, 0) == [record]
    assert w3.eth.get_transaction_count(registry.anchorer.address) == nonce_before + 1


def test_prepared_tx_survives_a_json_round_trip(registry: Registry) -> None:
    client = registry.client()
    prepared = client.prepare_anchor(LOG_A, 1, root(1))
    restored = PreparedTx.from_json(prepared.to_json())
    assert restored == prepared
    client.send(restored)
    assert client.wait(prepared.tx_hash).root_hash == root(1)


def test_explicit_nonces_allow_several_prepared_anchors(registry: Registry) -> None:
    client = registry.client()
    first = client.prepare_anchor(LOG_A, 1, root(1))
    second = client.prepare_anchor(LOG_B, 1, root(1, LOG_B), nonce=first.nonce + 1)
    client.send(first)
    client.send(second)
    assert client.wait(second.tx_hash).log_id == LOG_B
    assert client.wait(first.tx_hash).log_id == LOG_A


def test_a_transaction_to_something_else_is_not_an_anchor(registry: Registry) -> None:
    tx_hash = registry.chain.send_value(registry.owner, registry.anchorer.address, 1)
    with pytest.raises(ChainError):
        registry.client().find_receipt(tx_hash)


# -- gas ----------------------------------------------------------------------------------------


def test_gas_per_anchor_is_constant_whatever_the_tree_size(registry: Registry) -> None:
    client = registry.client()
    first = client.anchor(LOG_A, 1, root(1)).gas_used
    later = [client.anchor(LOG_A, size, root(size)).gas_used for size in (2, 1000, 10**9, 2**63)]
    first_of_other_log = client.anchor(LOG_B, 2**40, root(1, LOG_B)).gas_used
    # Only calldata bytes differ between sizes (zero vs non-zero bytes), a few hundred gas.
    assert max(later) - min(later) < 300, later
    assert abs(first - first_of_other_log) < 300
    assert max(later) < 100_000
    assert first < 100_000
    # The first anchor of a log writes two fresh slots; later anchors overwrite them.
    assert first - max(later) > 20_000
