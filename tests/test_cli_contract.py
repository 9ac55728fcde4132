"""``verify-receipt`` and the registry address: the one ``anchor`` used is remembered in the
data dir and taken by default (saying so); a placeholder or a missing one is refused with where
the address comes from, never a web3 message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli_process import consent_ledger

EVENT = '{"kind": "consent.granted", "data": {"consent_id": "c-1"}}\n'


@pytest.fixture(scope="module")
def anchored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised platform (``var`` in the returned directory) with one anchored event,
    its receipt (receipt.json) and key (log.vkey)."""
    here = tmp_path_factory.mktemp("contract")
    for command in (["init"], ["append"], ["anchor"]):
        ran = consent_ledger(*command, cwd=here, stdin=EVENT)
        assert ran.code == 0, ran.err
    (here / "receipt.json").write_text(consent_ledger("receipt", "--leaf-index", "0", cwd=here).out)
    (here / "log.vkey").write_text(consent_ledger("key", cwd=here).out)
    return here


def test_anchor_remembers_the_registry_and_verify_receipt_takes_it(anchored: Path) -> None:
    address = (anchored / "var" / "contract-address").read_text().strip()
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", address)
    receipt = json.loads((anchored / "receipt.json").read_text())
    assert receipt["anchor"]["contract"].lower() == address.lower()
    ran = consent_ledger(
        "verify-receipt", "receipt.json", "--key", "log.vkey", "--chain-dir", "var/chain",
        cwd=anchored,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["anchor"] == "checked on chain"
    assert f"registry {address} from var/contract-address" in ran.err


def test_the_readme_placeholder_says_where_the_address_comes_from(anchored: Path) -> None:
    ran = consent_ledger(
        "verify-receipt", "receipt.json", "--key", "log.vkey", "--chain-dir", "var/chain",
        "--contract", "0x…", cwd=anchored,
    )  # fmt: skip
    assert ran.code == 2
    assert "'0x…' is not an address" in ran.err, ran.err
    assert "contract-address" in ran.err
    assert "GET /v1/log/anchors" in ran.err
    assert "web3" not in ran.err.lower()


def test_no_address_known_says_where_to_get_one(anchored: Path, tmp_path: Path) -> None:
    ran = consent_ledger(
        "verify-receipt", anchored / "receipt.json", "--key", anchored / "log.vkey",
        "--chain-dir", anchored / "var" / "chain", cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 2
    assert "needs the AnchorRegistry's address (--contract ADDRESS)" in ran.err, ran.err
    assert "var/contract-address does not exist" in ran.err
