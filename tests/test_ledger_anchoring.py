"""The anchorer on real chains: sealing rules, order, kill -9 at each step, chain outages."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from contracts.chain import connect
from contracts.client import AnchorRegistryClient
from ledger.anchoring import Anchorer, log_id_for
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from tests.chain_fixtures import *  # noqa: F403
from tests.chain_fixtures import ANVIL_KEYS, AnvilNode
from tests.paths import REPO


def grow(ledger: Ledger, count: int) -> None:
    start = ledger.tree_size()
    ledger.append_many(
        ("access.decided", {"request_id": f"r-{n}", "decision": "permit"})
        for n in range(start, start + count)
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> LedgerSettings:
    return LedgerSettings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        origin="test.example/log",
        checkpoint_every=10,
        checkpoint_interval=3600,
    )


@pytest.fixture
def ledger(sqlite_settings: LedgerSettings) -> Iterator[Ledger]:
    opened = Ledger.open(sqlite_settings)
    yield opened
    opened.close()


def registry_of(settings: LedgerSettings, chain_id: int, chain: object) -> AnchorRegistryClient:
    ledger = Ledger.open(settings)
    address = ledger.store.get_meta(f"registry:{chain_id}")
    ledger.close()
    assert address is not None
    return AnchorRegistryClient.at(chain, address)  # type: ignore[arg-type]


def test_seals_every_n_events_or_t_seconds(ledger: Ledger) -> None:
    anchorer = Anchorer(ledger)
    grow(ledger, 9)
    assert anchorer.seal_if_due() is None
    grow(ledger, 1)
    sealed = anchorer.seal_if_due()
    assert sealed is not None
    assert sealed.tree_size == 10
    grow(ledger, 3)
    assert anchorer.seal_if_due() is None
    later = anchorer.seal_if_due(now=sealed.created_at + 3601)
    assert later is not None
    assert later.tree_size == 13
    assert anchorer.seal_if_due(now=sealed.created_at + 7200) is None  # nothing new


def test_checkpoints_are_anchored_in_order_with_their_blocks(ledger: Ledger) -> None:
    anchorer = Anchorer(ledger)
    try:
        for _ in range(3):
            grow(ledger, 10)
            report = anchorer.run_once()
            assert report.error is None
        assert [a.tree_size for a in anchorer.anchors.confirmed()] == [10, 20, 30]
        registry = anchorer.registry
        assert registry is not None
        on_chain = registry.anchors(log_id_for(ledger.origin), 0)
        assert [r.tree_size for r in on_chain] == [10, 20, 30]
        for record, stored in zip(on_chain, anchorer.anchors.confirmed(), strict=True):
            assert stored.tx_hash == record.tx_hash
            assert stored.block_number == record.block_number
            checkpoint = ledger.store.checkpoint_at(record.tree_size)
            assert checkpoint is not None
            assert checkpoint.root_hash == record.root_hash
            assert record.chain_id == registry.chain.chain_id
            assert record.contract == registry.address
            registry.verify_anchor(record)
        assert anchorer.run_once().anchored == []  # nothing new: nothing sent
    finally:
        anchorer.close()


def _run_worker(
    settings: LedgerSettings, step: str, rpc: list[str]
) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "tests.anchor_worker",
        str(settings.data_dir),
        settings.resolved_database_url(),
        step,
        *rpc,
    ]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("step", ["prepare", "record_prepared", "send", "wait"])
def test_kill_9_at_each_step_neither_repeats_nor_loses_an_anchor(
    sqlite_settings: LedgerSettings, step: str
) -> None:
    ledger = Ledger.open(sqlite_settings)
    grow(ledger, 10)
    ledger.checkpoint()
    ledger.close()
    first = _run_worker(sqlite_settings, "none", [])
    assert first.returncode == 0, first.stderr

    ledger = Ledger.open(sqlite_settings)
    grow(ledger, 5)
    ledger.checkpoint()
    grow(ledger, 5)
    ledger.checkpoint()
    ledger.close()
    killed = _run_worker(sqlite_settings, step, [])
    assert killed.returncode == -9, killed.stderr
    again = _run_worker(sqlite_settings, "none", [])
    assert again.returncode == 0, again.stderr

    with connect(data_dir=sqlite_settings.chain_dir) as chain:
        registry = registry_of(sqlite_settings, chain.chain_id, chain)
        on_chain = registry.anchors(log_id_for("test.example/log"), 0)
    assert [r.tree_size for r in on_chain] == [10, 15, 20]
    ledger = Ledger.open(sqlite_settings)
    anchorer = Anchorer(ledger)
    stored = anchorer.anchors.confirmed()
    assert [a.tree_size for a in stored] == [10, 15, 20]
    assert [a.tx_hash for a in stored] == [r.tx_hash for r in on_chain]
    assert anchorer.anchors.prepared() is None
    ledger.close()


@pytest.mark.anvil
def test_chain_outage_queues_checkpoints_and_anchors_them_in_order(
    sqlite_settings: LedgerSettings, anvil: AnvilNode, tmp_path: Path
) -> None:
    key_file = tmp_path / "anchor.key"
    key_file.write_text(ANVIL_KEYS[1].hex())
    key_file.chmod(0o600)
    settings = sqlite_settings.model_copy(
        update={"rpc_url": anvil.url, "anchor_key_file": key_file}
    )
    ledger = Ledger.open(settings)
    anchorer = Anchorer(ledger)
    try:
        grow(ledger, 10)
        assert anchorer.run_once().error is None
        anvil.stop()
        for _ in range(3):
            grow(ledger, 10)  # appends keep succeeding while the chain is down
            report = anchorer.run_once()
            assert report.error is not None
            assert report.anchored == []
        assert report.queued == 3
        assert ledger.tree_size() == 40
        anvil.start()
        report = anchorer.run_once()
        assert report.error is None
        assert [r.tree_size for r in report.anchored] == [20, 30, 40]
        assert report.queued == 0
        registry = anchorer.registry
        assert registry is not None
        sizes = [r.tree_size for r in registry.anchors(log_id_for(ledger.origin), 0)]
        assert sizes == [10, 20, 30, 40]
    finally:
        anchorer.close()
        ledger.close()


@pytest.mark.anvil
def test_kill_9_after_sending_on_an_rpc_node(
    sqlite_settings: LedgerSettings, anvil: AnvilNode, tmp_path: Path
) -> None:
    key_file = tmp_path / "anchor.key"
    key_file.write_text(ANVIL_KEYS[2].hex())
    key_file.chmod(0o600)
    rpc = [anvil.url, str(key_file)]
    ledger = Ledger.open(sqlite_settings)
    grow(ledger, 10)
    ledger.checkpoint()
    ledger.close()
    assert _run_worker(sqlite_settings, "send", rpc).returncode == -9
    assert _run_worker(sqlite_settings, "none", rpc).returncode == 0
    chain = connect(anvil.url)
    registry = registry_of(sqlite_settings, chain.chain_id, chain)
    assert [r.tree_size for r in registry.anchors(log_id_for("test.example/log"), 0)] == [10]


def test_a_size_0_checkpoint_never_blocks_the_queue(ledger: Ledger) -> None:
    ledger.checkpoint()  # the empty tree: signed, but never anchored
    anchorer = Anchorer(ledger)
    try:
        grow(ledger, 3)
        report = anchorer.run_once(force_seal=True)
        assert report.error is None
        assert [r.tree_size for r in report.anchored] == [3]
    finally:
        anchorer.close()


def test_anchors_found_on_chain_are_adopted_not_repeated(ledger: Ledger) -> None:
    anchorer = Anchorer(ledger)
    try:
        for _ in range(2):
            grow(ledger, 10)
            assert anchorer.run_once().error is None
        before = [a.tx_hash for a in anchorer.anchors.confirmed()]
        # Lose the journal, as after restoring the database from an older backup.
        with ledger.store.write() as conn:
            conn.execute(text("DELETE FROM anchor"))
        report = anchorer.run_once()
        assert report.error is None
        assert [r.tree_size for r in report.anchored] == [10, 20]
        assert [a.tx_hash for a in anchorer.anchors.confirmed()] == before
        registry = anchorer.connect()
        assert len(registry.anchors(log_id_for(ledger.origin), 0)) == 2  # no new transaction
    finally:
        anchorer.close()


def test_a_checkpoint_passed_on_chain_is_superseded(ledger: Ledger) -> None:
    anchorer = Anchorer(ledger)
    try:
        grow(ledger, 10)
        assert anchorer.run_once().error is None
        grow(ledger, 5)
        ledger.checkpoint()
        grow(ledger, 5)
        twenty = ledger.checkpoint()
        registry = anchorer.connect()
        # Size 20 was anchored by hand (say, by an operator) and its record never reached us.
        registry.anchor(log_id_for(ledger.origin), 20, twenty.root_hash)
        report = anchorer.run_once()
        assert report.error is None
        assert [r.tree_size for r in report.anchored] == [20]
        assert report.queued == 0
        assert [a.tree_size for a in anchorer.anchors.confirmed()] == [10, 20]
    finally:
        anchorer.close()


def test_a_journaled_transaction_that_can_never_be_mined_is_replaced(ledger: Ledger) -> None:
    anchorer = Anchorer(ledger)
    try:
        grow(ledger, 10)
        ten = ledger.checkpoint()
        registry = anchorer.connect()
        log_id = log_id_for(ledger.origin)
        dead = registry.prepare_anchor(log_id, 10, ten.root_hash)
        anchorer.anchors.record_prepared(
            tree_size=10,
            chain_id=registry.chain.chain_id,
            contract=registry.address,
            nonce=dead.nonce,
            tx_hash=dead.tx_hash,
            raw_tx=dead.raw,
            now=0.0,
        )
        # Before the journaled transaction went out, its nonce was spent on the same anchor.
        manual = registry.anchor(log_id, 10, ten.root_hash)
        report = anchorer.run_once()
        assert report.error is None
        assert anchorer.anchors.prepared() is None
        confirmed = anchorer.anchors.confirmed()
        assert [(a.tree_size, a.tx_hash) for a in confirmed] == [(10, manual.tx_hash)]
    finally:
        anchorer.close()


def test_two_anchorers_on_one_log_send_one_transaction(ledger: Ledger) -> None:
    first = Anchorer(ledger)
    try:
        registry = first.connect()
        second = Anchorer(ledger, registry)  # another process, on the same database and chain
        grow(ledger, 10)
        ledger.checkpoint()
        original = first.anchors.record_prepared

        def second_wins_the_race(**kwargs: object) -> None:
            # The other anchorer journals, sends and confirms between our prepare and record.
            assert second.run_once().anchored
            original(**kwargs)  # type: ignore[arg-type]

        first.anchors.record_prepared = second_wins_the_race  # type: ignore[method-assign]
        report = first.run_once()
        assert report.error is None
        assert report.anchored == []
        assert len(registry.anchors(log_id_for(ledger.origin), 0)) == 1
    finally:
        first.close()
