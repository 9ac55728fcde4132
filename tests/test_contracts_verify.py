"""verify_anchor against tampered records, and the AnchorRecord JSON edge."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
from eth_account import Account
from web3.exceptions import Web3RPCError

from contracts.artifact import load_artifact
from contracts.chain import Chain
from contracts.client import AnchorRegistryClient
from contracts.errors import AnchorMismatchError, ChainError
from contracts.records import AnchorRecord, PreparedTx
from tests.chain_fixtures import *  # noqa: F403 - fixtures are found by name
from tests.chain_fixtures import Registry, deploy_registry

LOG_A = hashlib.sha256(b"log A").digest()
ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture
def registry_log_ids() -> tuple[bytes, ...]:
    return (LOG_A,)


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


@pytest.fixture
def anchored(registry: Registry) -> tuple[AnchorRegistryClient, AnchorRecord]:
    client = registry.client()
    client.anchor(LOG_A, 1, hashlib.sha256(b"earlier").digest())
    return client, client.anchor(LOG_A, 2, ROOT)


def test_a_genuine_record_verifies(anchored: tuple[AnchorRegistryClient, AnchorRecord]) -> None:
    client, record = anchored
    client.verify_anchor(record)
    client.verify_anchor(AnchorRecord.from_json(record.to_json()))


TAMPERS: list[tuple[str, str, Any]] = [
    ("other chain id", "chain_id", lambda r: r.chain_id + 1),
    ("other contract", "contract", lambda r: Account.create().address),
    ("unknown tx hash", "tx_hash", lambda r: flip(r.tx_hash)),
    ("later block number", "block_number", lambda r: r.block_number + 1),
    ("earlier block number", "block_number", lambda r: r.block_number - 1),
    ("other block hash", "block_hash", lambda r: flip(r.block_hash)),
    ("other log id", "log_id", lambda r: hashlib.sha256(b"log B").digest()),
    ("larger tree size", "tree_size", lambda r: r.tree_size + 1),
    ("smaller tree size", "tree_size", lambda r: r.tree_size - 1),
    ("flipped root bit", "root_hash", lambda r: flip(r.root_hash)),
    ("earlier root", "root_hash", lambda r: hashlib.sha256(b"earlier").digest()),
    ("other anchorer", "anchorer", lambda r: Account.create().address),
    ("later timestamp", "timestamp", lambda r: r.timestamp + 1),
    ("other gas used", "gas_used", lambda r: r.gas_used + 1),
]


@pytest.mark.parametrize(("name", "field", "tamper"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_each_tampered_field_is_named(
    anchored: tuple[AnchorRegistryClient, AnchorRecord], name: str, field: str, tamper: Any
) -> None:
    client, record = anchored
    forged = dataclasses.replace(record, **{field: tamper(record)})
    with pytest.raises(AnchorMismatchError) as excinfo:
        client.verify_anchor(forged)
    assert excinfo.value.field == field, name
    assert excinfo.value.expected == getattr(forged, field)


def test_a_record_from_another_registry_on_the_same_chain_is_refused(
    registry: Registry,
) -> None:
    other = deploy_registry(registry.chain, [LOG_A])
    record = other.client().anchor(LOG_A, 1, ROOT)
    other.client().verify_anchor(record)
    with pytest.raises(AnchorMismatchError) as excinfo:
        registry.client().verify_anchor(record)
    assert excinfo.value.field == "contract"
    # Even with the contract field rewritten, the receipt's event came from elsewhere.
    forged = dataclasses.replace(record, contract=registry.address)
    with pytest.raises(AnchorMismatchError) as excinfo:
        registry.client().verify_anchor(forged)
    assert excinfo.value.field == "contract"


def test_a_record_from_another_chain_is_refused(
    embedded_chain: Chain,
    anvil_chain: Chain,
) -> None:
    on_embedded = deploy_registry(embedded_chain, [LOG_A])
    on_anvil = deploy_registry(anvil_chain, [LOG_A])
    record = on_embedded.client().anchor(LOG_A, 1, ROOT)
    with pytest.raises(AnchorMismatchError) as excinfo:
        on_anvil.client().verify_anchor(record)
    assert excinfo.value.field == "chain_id"
    assert (excinfo.value.expected, excinfo.value.actual) == (
        embedded_chain.chain_id,
        anvil_chain.chain_id,
    )


def test_reassigning_a_log_leaves_its_earlier_anchors_valid(
    anchored: tuple[AnchorRegistryClient, AnchorRecord], registry: Registry
) -> None:
    """The anchorer is checked as of the anchoring transaction, not as of now."""
    client, record = anchored
    successor = registry.funded_account()
    registry.assign(LOG_A, successor)
    later = registry.client(successor).anchor(LOG_A, 3, ROOT)
    registry.owner_client.assign_log(LOG_A, "0x" + "00" * 20)  # and then revoked
    client.verify_anchor(record)
    client.verify_anchor(later)
    assert (record.anchorer, later.anchorer) == (registry.anchorer.address, successor.address)
    # A record cannot take the credit for the other anchorer's anchor.
    with pytest.raises(AnchorMismatchError) as excinfo:
        client.verify_anchor(dataclasses.replace(later, anchorer=record.anchorer))
    assert excinfo.value.field == "anchorer"
    assert excinfo.value.actual == successor.address


def prune_old_state(client: AnchorRegistryClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the node answer calls only on the latest state, as most non-archive nodes do."""
    eth = client.chain.w3.eth
    real_call = eth.call

    def pruned_call(transaction: Any, block_identifier: Any = None, **kwargs: Any) -> Any:
        if block_identifier not in (None, "latest"):
            raise Web3RPCError("missing trie node")
        return real_call(transaction, block_identifier=block_identifier, **kwargs)

    monkeypatch.setattr(eth, "call", pruned_call)


def test_a_node_without_old_state_verifies_anchors_of_a_log_not_reassigned_since(
    anchored: tuple[AnchorRegistryClient, AnchorRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, record = anchored
    prune_old_state(client, monkeypatch)
    client.verify_anchor(record)
    with pytest.raises(AnchorMismatchError) as excinfo:
        client.verify_anchor(dataclasses.replace(record, anchorer=Account.create().address))
    assert excinfo.value.field == "anchorer"


def test_after_a_reassignment_a_node_without_old_state_fails_loudly(
    anchored: tuple[AnchorRegistryClient, AnchorRecord],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Who could anchor back then is in old state only: no answer, and no silent skip."""
    client, record = anchored
    registry.assign(LOG_A, registry.funded_account())
    prune_old_state(client, monkeypatch)
    with pytest.raises(ChainError, match="archive node") as excinfo:
        client.verify_anchor(record)
    assert not isinstance(excinfo.value, AnchorMismatchError)


@pytest.mark.anvil
@pytest.mark.parametrize("first", ["anchor", "assignment"])
def test_a_reassignment_in_the_anchors_own_block(anvil_chain: Chain, first: str) -> None:
    """Whichever comes first in the block, the anchorer is judged as the anchor ran."""
    registry = deploy_registry(anvil_chain, [] if first == "assignment" else [LOG_A])
    w3 = anvil_chain.w3
    successor = registry.funded_account()
    # The assignment makes the anchor valid (first) or hands the log on after it.
    new_anchorer = registry.anchorer if first == "assignment" else successor
    contract = w3.eth.contract(address=registry.address, abi=list(load_artifact().abi))

    def signed(account: Any, fn: Any, tip_gwei: int) -> bytes:
        fees = anvil_chain.fee_fields()
        tip = tip_gwei * 10**9
        tx = fn.build_transaction(
            {
                "from": account.address,
                "chainId": anvil_chain.chain_id,
                "nonce": w3.eth.get_transaction_count(account.address),
                "gas": 200_000,
                "type": 2,
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": fees["maxFeePerGas"] + tip,
            }
        )
        return bytes(account.sign_transaction(tx).raw_transaction)

    # Higher tip first: anvil orders a block by fee.
    anchor_tx = signed(
        registry.anchorer, contract.functions.anchor(LOG_A, 1, ROOT), 3 if first == "anchor" else 1
    )
    assign_tx = signed(
        registry.owner,
        contract.functions.assignLog(LOG_A, new_anchorer.address),
        3 if first == "assignment" else 1,
    )
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        hashes = [w3.eth.send_raw_transaction(raw) for raw in (anchor_tx, assign_tx)]
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    anchor_receipt, assign_receipt = (w3.eth.get_transaction_receipt(h) for h in hashes)
    assert anchor_receipt["blockNumber"] == assign_receipt["blockNumber"]
    order = anchor_receipt["transactionIndex"] < assign_receipt["transactionIndex"]
    assert order == (first == "anchor")
    client = registry.client()
    record = client.wait(bytes(hashes[0]))
    assert record.anchorer == registry.anchorer.address
    assert client.anchorer_of(LOG_A) == new_anchorer.address
    client.verify_anchor(record)


def test_mismatch_message_shows_hex() -> None:
    error = AnchorMismatchError("root_hash", b"\x01" * 2, b"\x02" * 2)
    assert "record has 0x0101" in str(error)
    assert "chain has 0x0202" in str(error)


# -- the JSON edge ------------------------------------------------------------------------------


def sample_record() -> AnchorRecord:
    return AnchorRecord(
        chain_id=31337,
        contract=Account.from_key(b"\x01" * 32).address,
        log_id=LOG_A,
        tree_size=2,
        root_hash=ROOT,
        anchorer=Account.from_key(b"\x02" * 32).address,
        tx_hash=b"\x11" * 32,
        block_number=9,
        block_hash=b"\x22" * 32,
        timestamp=1_700_000_000,
        gas_used=37_000,
    )


def test_record_json_is_hex_at_the_edge_and_round_trips() -> None:
    record = sample_record()
    document = json.loads(record.to_json())
    assert document["root_hash"] == "0x" + ROOT.hex()
    assert document["tree_size"] == 2
    assert AnchorRecord.from_json(record.to_json()) == record
    assert AnchorRecord.from_dict(record.to_dict()) == record


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("missing key", lambda d: d.pop("gas_used")),
        ("missing anchorer", lambda d: d.pop("anchorer")),
        ("extra key", lambda d: d.update(note="x")),
        ("hex without 0x", lambda d: d.update(root_hash=ROOT.hex())),
        ("upper-case 0X", lambda d: d.update(root_hash="0X" + ROOT.hex())),
        ("upper-case hex", lambda d: d.update(root_hash="0x" + ROOT.hex().upper())),
        ("spaces between bytes", lambda d: d.update(root_hash="0x" + spaced(ROOT))),
        ("trailing newline", lambda d: d.update(log_id=d["log_id"] + "\n")),
        ("leading space", lambda d: d.update(tx_hash="0x " + d["tx_hash"][2:])),
        (
            "tab inside",
            lambda d: d.update(block_hash=d["block_hash"][:10] + "\t" + d["block_hash"][10:]),
        ),
        ("short root", lambda d: d.update(root_hash="0x" + ROOT[:31].hex())),
        ("long root", lambda d: d.update(root_hash="0x" + ROOT.hex() + "00")),
        ("odd-length hex", lambda d: d.update(root_hash="0x" + ROOT.hex()[:-1])),
        ("not hex", lambda d: d.update(tx_hash="0x" + "zz" * 32)),
        ("hash as list", lambda d: d.update(tx_hash=list(b"\x11" * 32))),
        ("lower-case address", lambda d: d.update(contract=d["contract"].lower())),
        ("lower-case anchorer", lambda d: d.update(anchorer=d["anchorer"].lower())),
        ("anchorer not an address", lambda d: d.update(anchorer="alice")),
        ("zero tree size", lambda d: d.update(tree_size=0)),
        ("string block number", lambda d: d.update(block_number="9")),
        ("negative timestamp", lambda d: d.update(timestamp=-1)),
    ],
)
def test_malformed_record_json_is_refused(name: str, change: Any) -> None:
    document = sample_record().to_dict()
    change(document)
    with pytest.raises(ValueError):
        AnchorRecord.from_json(json.dumps(document))


def spaced(value: bytes) -> str:
    """Hex with a space between bytes: ``bytes.fromhex`` reads it, the JSON edge must not."""
    return " ".join(f"{b:02x}" for b in value)


def sample_prepared() -> dict[str, Any]:
    return PreparedTx(tx_hash=b"\x11" * 32, raw=b"\x02\xf8\x01", nonce=7).to_dict()


def test_prepared_tx_json_round_trips() -> None:
    prepared = PreparedTx.from_dict(sample_prepared())
    assert PreparedTx.from_json(prepared.to_json()) == prepared


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("missing key", lambda d: d.pop("nonce")),
        ("extra key", lambda d: d.update(note="x")),
        ("spaces in raw", lambda d: d.update(raw="0x" + spaced(b"\x02\xf8\x01"))),
        ("upper-case raw", lambda d: d.update(raw=d["raw"].upper().replace("0X", "0x"))),
        ("empty raw", lambda d: d.update(raw="0x")),
        ("odd-length raw", lambda d: d.update(raw=d["raw"] + "0")),
        ("short tx hash", lambda d: d.update(tx_hash=d["tx_hash"][:-2])),
        ("nonce as string", lambda d: d.update(nonce="7")),
        ("nonce as float", lambda d: d.update(nonce=7.0)),
        ("nonce as bool", lambda d: d.update(nonce=True)),
        ("negative nonce", lambda d: d.update(nonce=-1)),
    ],
)
def test_malformed_prepared_tx_json_is_refused(name: str, change: Any) -> None:
    document = sample_prepared()
    change(document)
    with pytest.raises(ValueError):
        PreparedTx.from_json(json.dumps(document))
