"""verify_anchor against tampered records, and the AnchorRecord JSON edge."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
from eth_account import Account

from contracts.chain import Chain
from contracts.client import AnchorRegistryClient
from contracts.errors import AnchorMismatchError
from contracts.records import AnchorRecord
from tests.chain_fixtures import *  # noqa: F403 - fixtures are found by name
from tests.chain_fixtures import Registry, deploy_registry

LOG_A = hashlib.sha256(b"log A").digest()
ROOT = hashlib.sha256(b"root").digest()


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
    other = deploy_registry(registry.chain)
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
    on_embedded = deploy_registry(embedded_chain)
    on_anvil = deploy_registry(anvil_chain)
    record = on_embedded.client().anchor(LOG_A, 1, ROOT)
    with pytest.raises(AnchorMismatchError) as excinfo:
        on_anvil.client().verify_anchor(record)
    assert excinfo.value.field == "chain_id"
    assert (excinfo.value.expected, excinfo.value.actual) == (
        embedded_chain.chain_id,
        anvil_chain.chain_id,
    )


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
        ("extra key", lambda d: d.update(note="x")),
        ("hex without 0x", lambda d: d.update(root_hash=ROOT.hex())),
        ("short root", lambda d: d.update(root_hash="0x" + ROOT[:31].hex())),
        ("not hex", lambda d: d.update(tx_hash="0x" + "zz" * 32)),
        ("lower-case address", lambda d: d.update(contract=d["contract"].lower())),
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
