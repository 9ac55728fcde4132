"""The anchorer trusts neither its database nor its own record of the chain.

On a real anvil: a database restored behind the chain's latest anchor is refused by ``anchor``
and ``serve``; a node restarted from older state (blocks lost) gets the lost anchors made
again, in order, and receipts cite anchors that exist; on a reset chain nothing is sent to the
registry's empty address.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent_api.cli import main as service_main
from contracts.chain import connect
from contracts.client import AnchorRegistryClient
from contracts.records import AnchorRecord
from hashing import NoteVerifier
from ledger.anchoring import Anchorer
from ledger.cli import main
from ledger.log import Ledger
from ledger.receipts import build_receipt, verify_receipt
from ledger.settings import LedgerSettings
from tests.chain_fixtures import *  # noqa: F403
from tests.chain_fixtures import ANVIL_KEYS, AnvilNode
from tests.db_copies import copy_aside, put_back

pytestmark = pytest.mark.anvil


def grow(ledger: Ledger, count: int) -> None:
    start = ledger.tree_size()
    ledger.append_many(
        ("access.decided", {"request_id": f"r-{n}", "decision": "permit"})
        for n in range(start, start + count)
    )


@pytest.fixture
def on_anvil(settings: LedgerSettings, anvil: AnvilNode, tmp_path: Path) -> LedgerSettings:
    key_file = tmp_path / "anchor.key"
    key_file.write_text(ANVIL_KEYS[1].hex())
    key_file.chmod(0o600)
    return settings.model_copy(
        update={"rpc_url": anvil.url, "anchor_key_file": key_file, "checkpoint_interval": 3600}
    )


@pytest.fixture
def anchorer(on_anvil: LedgerSettings) -> Iterator[Anchorer]:
    ledger = Ledger.open(on_anvil)
    anchorer = Anchorer(ledger)
    yield anchorer
    anchorer.close()
    ledger.close()


def anchor_more(anchorer: Anchorer, count: int) -> list[int]:
    grow(anchorer.ledger, count)
    report = anchorer.run_once(force_seal=True)
    assert report.error is None, report.error
    return [record.tree_size for record in report.anchored]


def run(argv: list[str], settings: LedgerSettings, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    flags = ["--data-dir", str(settings.data_dir), "--database-url"]
    flags += [settings.resolved_database_url(), "--origin", settings.origin]
    return main([argv[0], *flags, *argv[1:]])


def test_a_database_behind_the_chain_is_refused_by_anchor_and_serve(
    anchorer: Anchorer,
    on_anvil: LedgerSettings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = on_anvil.resolved_database_url()
    assert anchor_more(anchorer, 10) == [10]
    copy_aside(url, "backup")
    assert anchor_more(anchorer, 5) == [15]
    anchorer.close()
    anchorer.ledger.close()
    # The whole data dir restored with the database: only the chain remembers size 15.
    put_back(url, "backup")
    (on_anvil.data_dir / "latest-checkpoint").unlink(missing_ok=True)
    for name, value in (
        ("RPC_URL", on_anvil.rpc_url),
        ("ANCHOR_KEY_FILE", on_anvil.anchor_key_file),
    ):
        monkeypatch.setenv(f"CONSENT_LEDGER_{name}", str(value))
    assert run(["anchor"], on_anvil, capsys) == 2
    err = capsys.readouterr().err
    assert "the chain anchors this log at size 15" in err
    assert "holds 10 leaves" in err
    for name in ("DATA_DIR", "DATABASE_URL", "ORIGIN"):
        monkeypatch.setenv(f"CONSENT_LEDGER_{name}", "")  # restored after, whatever serve sets
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = service_main(
        [
            "serve",
            "--data-dir",
            str(on_anvil.data_dir),
            "--database-url",
            url,
            "--origin",
            on_anvil.origin,
            "--port",
            "1",
        ]
    )
    assert code == 2
    assert "the chain anchors this log at size 15" in capsys.readouterr().err


def test_anchors_lost_with_the_chains_blocks_are_made_again(
    anchorer: Anchorer, anvil: AnvilNode
) -> None:
    assert anchor_more(anchorer, 10) == [10]
    older = anvil.dump_state()  # the node's "older state"
    assert anchor_more(anchorer, 5) == [15]
    assert anchor_more(anchorer, 5) == [20]
    anvil.kill()
    anvil.state_file.write_bytes(older)
    anvil.start()  # restarted from older state: the blocks of the anchors of 15 and 20 are gone

    report = anchorer.run_once()
    assert report.error is None, report.error
    assert [record.tree_size for record in report.anchored] == [15, 20]
    registry = anchorer.connect()
    for anchor in anchorer.anchors.confirmed():
        assert anchor.record is not None
        registry.verify_anchor(AnchorRecord.from_json(anchor.record))
    verifier = NoteVerifier.from_vkey(anchorer.ledger.verifier.to_vkey())
    receipt = build_receipt(anchorer.ledger, anchorer.anchors, 12)
    check = verify_receipt(
        receipt, verifier, AnchorRegistryClient.at(registry.chain, registry.address)
    )
    assert check.chain_checked
    assert check.checkpoint.tree_size == 15


def test_on_a_reset_chain_nothing_is_sent_to_the_empty_address(
    anchorer: Anchorer, anvil: AnvilNode
) -> None:
    assert anchor_more(anchorer, 10) == [10]
    anvil.kill()
    anvil.state_file.unlink(missing_ok=True)  # killed: it wrote no state either
    anvil.start()  # a new, empty chain on the same address and chain id
    grow(anchorer.ledger, 5)
    report = anchorer.run_once(force_seal=True)
    assert report.error is not None
    assert "no AnchorRegistry at" in report.error
    assert "CONSENT_LEDGER_CONTRACT_ADDRESS" in report.error
    chain = connect(anvil.url)
    account = connect(anvil.url, keys=[ANVIL_KEYS[1]]).accounts[-1].address
    assert chain.w3.eth.get_transaction_count(account) == 0  # nothing was sent
    assert anchorer.anchors.confirmed() == []  # the anchor of 10 is gone, and not listed
