"""Receipts: one document per event that verifies with no database, and names what was altered."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from contracts.client import AnchorRegistryClient
from hashing import NoteVerifier
from ledger.anchoring import Anchorer
from ledger.errors import IntegrityError, MismatchError
from ledger.log import Ledger
from ledger.receipts import NotAnchoredError, build_receipt, verify_receipt
from ledger.settings import LedgerSettings
from tests.chain_fixtures import *  # noqa: F403
from tests.chain_fixtures import ANVIL_KEYS, AnvilNode
from tests.paths import REPO


@pytest.fixture
def anchored(tmp_path: Path) -> Iterator[tuple[Ledger, Anchorer]]:
    settings = LedgerSettings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        origin="receipts.test/log",
        checkpoint_every=8,
    )
    ledger = Ledger.open(settings)
    anchorer = Anchorer(ledger)
    for start in range(0, 24, 8):
        ledger.append_many(
            ("consent.granted", {"consent_id": f"c-{n}", "subject": "s-1"})
            for n in range(start, start + 8)
        )
        assert anchorer.run_once().error is None
    yield ledger, anchorer
    anchorer.close()
    ledger.close()


def flip_b64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def flip_hex(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _set(path: str, change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        key: Any = int(last) if last.isdigit() else last
        target[key] = change(target[key])

    return apply


TAMPERS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "event data": (_set("event.data.consent_id", lambda v: v + "x"), "inclusion"),
    "event kind": (_set("event.kind", lambda v: "consent.revoked"), "inclusion"),
    "leaf index": (_set("leaf_index", lambda v: v + 1), "inclusion"),
    "proof hash": (_set("proof.0", flip_b64), "inclusion"),
    "proof truncated": (_set("proof", lambda v: v[:-1]), "inclusion"),
    "tree size": (_set("tree_size", lambda v: v + 1), "tree_size"),
    "checkpoint root": (
        _set("checkpoint", lambda v: v.replace(v.split("\n")[2], flip_b64(v.split("\n")[2]))),
        "checkpoint",
    ),
    "anchor root": (_set("anchor.root_hash", flip_hex), "anchor.root_hash"),
    "anchor size": (_set("anchor.tree_size", lambda v: v + 8), "anchor.tree_size"),
    "anchor log id": (_set("anchor.log_id", flip_hex), "anchor.log_id"),
    "anchor tx": (_set("anchor.tx_hash", flip_hex), "anchor.tx_hash"),
    "anchor block number": (_set("anchor.block_number", lambda v: v + 1), "anchor.block_number"),
    "anchor block hash": (_set("anchor.block_hash", flip_hex), "anchor.block_hash"),
    "anchor chain id": (_set("anchor.chain_id", lambda v: v + 1), "anchor.chain_id"),
    "anchor timestamp": (_set("anchor.timestamp", lambda v: v + 1), "anchor.timestamp"),
    "anchor contract": (
        _set("anchor.contract", lambda v: "0x" + "11" * 20),
        "anchor.contract",
    ),
}


def test_a_receipt_verifies_offline_and_on_chain(anchored: tuple[Ledger, Anchorer]) -> None:
    ledger, anchorer = anchored
    verifier = NoteVerifier.from_vkey(ledger.verifier.to_vkey())
    for leaf_index in (0, 7, 8, 23):
        receipt = json.loads(json.dumps(build_receipt(ledger, anchorer.anchors, leaf_index)))
        check = verify_receipt(receipt, verifier, anchorer.registry)
        assert check.leaf_index == leaf_index
        assert check.chain_checked
        assert check.checkpoint.tree_size == 8 * (leaf_index // 8 + 1)


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_every_altered_field_is_named(anchored: tuple[Ledger, Anchorer], name: str) -> None:
    ledger, anchorer = anchored
    verifier = NoteVerifier.from_vkey(ledger.verifier.to_vkey())
    receipt = json.loads(json.dumps(build_receipt(ledger, anchorer.anchors, 10)))
    tamper, field = TAMPERS[name]
    altered = copy.deepcopy(receipt)
    tamper(altered)
    with pytest.raises((MismatchError, ValueError)) as caught:
        verify_receipt(altered, verifier, anchorer.registry)
    assert field in str(caught.value)


def test_an_event_not_yet_anchored_has_no_receipt(anchored: tuple[Ledger, Anchorer]) -> None:
    ledger, anchorer = anchored
    index = ledger.append("consent.revoked", {"consent_id": "c-1"})
    with pytest.raises(NotAnchoredError):
        build_receipt(ledger, anchorer.anchors, index)


def test_a_receipt_from_another_log_key_fails(anchored: tuple[Ledger, Anchorer]) -> None:
    ledger, anchorer = anchored
    from hashing import NoteSigner

    stranger = NoteSigner.generate("receipts.test/log").verifier()
    receipt = build_receipt(ledger, anchorer.anchors, 3)
    with pytest.raises(MismatchError, match="checkpoint"):
        verify_receipt(receipt, stranger, anchorer.registry)


@pytest.mark.anvil
def test_verify_receipt_command_against_an_rpc_node(tmp_path: Path, anvil: AnvilNode) -> None:
    key_file = tmp_path / "anchor.key"
    key_file.write_text(ANVIL_KEYS[0].hex())
    key_file.chmod(0o600)
    settings = LedgerSettings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        rpc_url=anvil.url,
        anchor_key_file=key_file,
    )
    ledger = Ledger.open(settings)
    anchorer = Anchorer(ledger)
    ledger.append_many(("consent.granted", {"consent_id": f"c-{n}"}) for n in range(5))
    assert anchorer.run_once(force_seal=True).error is None
    receipt = build_receipt(ledger, anchorer.anchors, 2)
    registry = anchorer.registry
    assert isinstance(registry, AnchorRegistryClient)
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "log.vkey").write_text(ledger.verifier.to_vkey())
    anchorer.close()
    ledger.close()

    command = [
        sys.executable,
        "-m",
        "ledger.cli",
        "verify-receipt",
        str(tmp_path / "receipt.json"),
        "--key",
        str(tmp_path / "log.vkey"),
        "--rpc-url",
        anvil.url,
        "--contract",
        registry.address,
    ]
    ok = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["anchor"] == "checked on chain"

    receipt["anchor"]["block_hash"] = flip_hex(receipt["anchor"]["block_hash"])
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    bad = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "anchor.block_hash" in bad.stderr

    offline_only = subprocess.run(
        [*command[:7], "--offline"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert offline_only.returncode == 0  # the block hash is only checked against a chain
    assert "not checked" in offline_only.stdout


def test_a_stored_anchor_forged_in_the_database_gives_no_receipt(
    anchored: tuple[Ledger, Anchorer],
) -> None:
    ledger, anchorer = anchored
    anchor = anchorer.anchors.covering(3)
    assert anchor is not None
    assert anchor.record is not None
    record = json.loads(anchor.record)
    record["root_hash"] = flip_hex(record["root_hash"])
    with ledger.store.write() as conn:
        conn.execute(
            text("UPDATE anchor SET record = :record WHERE tree_size = :size"),
            {"record": json.dumps(record), "size": anchor.tree_size},
        )
    with pytest.raises(IntegrityError, match="not of its checkpoint's root"):
        build_receipt(ledger, anchorer.anchors, 3)
