"""Damaged storage is found and refused, never served: a zeroed tree node, lost leaf rows.

Each scenario edits the real database by hand (SQLite file, PostgreSQL schema), then asks the
real app, the ``fsck`` command and ``Ledger.open``.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.settings import ApiSettings
from hashing import NoteVerifier, leaf_hash, open_checkpoint, verify_inclusion
from ledger.cli import main
from ledger.errors import IntegrityError
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from tests.db_copies import execute, zero_node

SIZE = 20


def build(settings: LedgerSettings) -> None:
    ledger = Ledger.open(settings)
    ledger.append_many(("consent.granted", {"consent_id": f"c-{n}"}) for n in range(SIZE))
    ledger.checkpoint()
    ledger.close()


@pytest.fixture
def client(settings: LedgerSettings) -> Iterator[TestClient]:
    build(settings)
    app = create_app(ApiSettings(ledger=settings, anchor_in_background=False, page_size=100))
    with TestClient(app) as test_client:
        yield test_client


def fsck(
    settings: LedgerSettings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    flags = ["--data-dir", str(settings.data_dir), "--database-url"]
    code = main(["fsck", *flags, settings.resolved_database_url(), "--origin", settings.origin])
    return code, json.loads(capsys.readouterr().out)


def test_a_zeroed_node_answers_a_problem_never_a_bad_proof(
    client: TestClient, settings: LedgerSettings
) -> None:
    verifier = NoteVerifier.from_vkey(client.get("/v1/log/key").text.strip())
    checkpoint = open_checkpoint(client.get("/v1/log/checkpoint").text, verifier)
    zero_node(settings.resolved_database_url(), 2, 1)  # the subtree of leaves 4..7
    leaves = client.get("/v1/log/leaves").json()["leaves"]
    refused = []
    for leaf in leaves:
        index = leaf["leaf_index"]
        for params in ({"leaf_index": index}, {"leaf_index": index, "tree_size": SIZE}):
            answer = client.get("/v1/log/proof/inclusion", params=params)
            if answer.status_code == 503:
                assert answer.json()["type"].endswith("log-storage-damaged")
                assert "fsck" in answer.json()["detail"]
                refused.append(index)
                continue
            assert answer.status_code == 200
            proof = [base64.b64decode(h) for h in answer.json()["proof"]]
            data = base64.b64decode(leaf["leaf_data"])
            verify_inclusion(leaf_hash(data), index, SIZE, proof, checkpoint.root_hash)
    assert {0, 1, 2, 3} <= set(refused)  # their proofs need the zeroed node
    answer = client.get("/v1/log/proof/consistency", params={"size1": 8, "size2": SIZE})
    assert answer.status_code == 503


def test_fsck_finds_the_zeroed_node(
    settings: LedgerSettings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings)
    code, report = fsck(settings, capsys, monkeypatch)
    assert code == 0
    assert report["clean"] is True
    assert report["leaves_checked"] == SIZE
    zero_node(settings.resolved_database_url(), 2, 1)
    code, report = fsck(settings, capsys, monkeypatch)
    assert code == 1
    assert report["findings"] == [
        {"kind": "node", "where": "level 2 index 1", "detail": "differs from its recomputation"}
    ]


def test_fsck_finds_an_edited_leaf_and_a_forged_checkpoint(
    settings: LedgerSettings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings)
    url = settings.resolved_database_url()
    forged = (
        "CAST(replace(CAST(leaf_data AS TEXT), 'c-3', 'c-9') AS BLOB)"
        if url.startswith("sqlite")
        else "convert_to(replace(convert_from(leaf_data, 'UTF8'), 'c-3', 'c-9'), 'UTF8')"
    )
    execute(url, f"UPDATE leaf SET leaf_data = {forged} WHERE leaf_index = 3")
    execute(url, f"UPDATE checkpoint SET note = replace(note, '\n{SIZE}\n', '\n{SIZE - 1}\n')")
    code, report = fsck(settings, capsys, monkeypatch)
    assert code == 1
    kinds = {(f["kind"], f["where"]) for f in report["findings"]}  # type: ignore[attr-defined]
    assert ("leaf", "leaf_index 3") in kinds
    assert ("checkpoint", f"tree_size {SIZE}") in kinds


def test_missing_leaf_rows_are_refused_at_start_and_while_serving(
    client: TestClient, settings: LedgerSettings
) -> None:
    execute(settings.resolved_database_url(), "DELETE FROM leaf WHERE leaf_index IN (7, 19)")
    page = client.get("/v1/log/leaves")
    assert page.status_code == 503
    assert page.json()["type"].endswith("log-storage-damaged")
    proof = client.get("/v1/log/proof/inclusion", params={"leaf_index": 19})
    assert proof.status_code == 503
    with pytest.raises(IntegrityError, match="leaf rows end at 19"):
        Ledger.open(settings)
