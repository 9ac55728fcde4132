"""The public log endpoints through the real app: what an auditor fetches and checks."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.settings import ApiSettings
from hashing import NoteVerifier, leaf_hash, open_checkpoint, verify_consistency, verify_inclusion
from ledger.anchoring import Anchorer
from ledger.log import Ledger
from ledger.settings import LedgerSettings


@pytest.fixture
def client(settings: LedgerSettings) -> Iterator[TestClient]:
    app = create_app(
        ApiSettings(ledger=settings, anchor_in_background=False, page_size=10, max_body_bytes=2048)
    )
    with TestClient(app) as test_client:
        yield test_client


def ledger_of(client: TestClient) -> Ledger:
    ledger: Ledger = client.app.state.ledger  # type: ignore[attr-defined]
    return ledger


def grow(client: TestClient, count: int) -> None:
    ledger_of(client).append_many(
        ("consent.granted", {"consent_id": f"c-{n}"}) for n in range(count)
    )


def unb64(value: str) -> bytes:
    return base64.b64decode(value)


def test_checkpoint_key_and_proofs_verify_against_each_other(client: TestClient) -> None:
    verifier = NoteVerifier.from_vkey(client.get("/v1/log/key").text.strip())
    empty = client.get("/v1/log/checkpoint")  # a new log has signed its empty tree
    assert open_checkpoint(empty.text, verifier).tree_size == 0
    assert client.get("/v1/log/checkpoints/0").text == empty.text
    grow(client, 13)
    ledger_of(client).checkpoint()
    old = open_checkpoint(client.get("/v1/log/checkpoint").text, verifier)
    grow(client, 8)
    ledger_of(client).checkpoint()
    new = open_checkpoint(client.get("/v1/log/checkpoint").text, verifier)
    assert (old.tree_size, new.tree_size) == (13, 21)
    assert (
        client.get("/v1/log/checkpoints/13").text == ledger_of(client).store.checkpoint_at(13).note
    )  # type: ignore[union-attr]

    leaves = client.get("/v1/log/leaves", params={"start": 5, "end": 6}).json()["leaves"]
    data = unb64(leaves[0]["leaf_data"])
    proof = client.get("/v1/log/proof/inclusion", params={"leaf_index": 5, "tree_size": 21}).json()
    verify_inclusion(leaf_hash(data), 5, 21, [unb64(h) for h in proof["proof"]], new.root_hash)
    con = client.get("/v1/log/proof/consistency", params={"size1": 13, "size2": 21}).json()
    verify_consistency(13, 21, [unb64(h) for h in con["proof"]], old.root_hash, new.root_hash)


def test_leaves_are_paged_in_order(client: TestClient) -> None:
    grow(client, 25)
    seen: list[int] = []
    url: str | None = "/v1/log/leaves?start=0"
    while url:
        page = client.get(url).json()
        seen += [leaf["leaf_index"] for leaf in page["leaves"]]
        assert len(page["leaves"]) <= 10
        url = page["next"]
    assert seen == list(range(25))
    assert client.get("/v1/log/leaves", params={"start": 30}).json()["leaves"] == []
    assert client.get("/v1/log/leaves", params={"start": 5, "end": 2}).json()["leaves"] == []


@pytest.mark.parametrize(
    ("url", "status", "slug"),
    [
        ("/v1/log/proof/inclusion?leaf_index=99", 404, "not-in-log"),
        ("/v1/log/proof/inclusion?leaf_index=1&tree_size=99", 404, "not-in-log"),
        ("/v1/log/proof/inclusion?leaf_index=-1", 422, "validation"),
        ("/v1/log/proof/inclusion?leaf_index=abc", 422, "validation"),
        ("/v1/log/proof/consistency?size1=4&size2=3", 404, "not-in-log"),
        ("/v1/log/checkpoints/77", 404, "not-found"),
        ("/v1/log/nowhere", 404, "not-found"),
        ("/v1/log/proof/inclusion?leaf_index=99999999999999999999999", 422, "validation"),
    ],
)
def test_bad_requests_are_problem_documents(
    client: TestClient, url: str, status: int, slug: str
) -> None:
    grow(client, 5)
    response = client.get(url)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"urn:consent-ledger:problem:{slug}"
    assert body["status"] == status


def test_oversized_bodies_get_413(client: TestClient) -> None:
    response = client.post("/v1/log/leaves", content=b"x" * 5000)
    assert response.status_code == 413
    assert response.json()["type"].endswith("payload-too-large")


def test_anchors_are_listed_with_their_checkpoints(
    settings: LedgerSettings, tmp_path: Path
) -> None:
    ledger = Ledger.open(settings)
    anchorer = Anchorer(ledger)
    ledger.append_many(("consent.granted", {"consent_id": f"c-{n}"}) for n in range(4))
    assert anchorer.run_once(force_seal=True).error is None
    anchorer.close()
    ledger.close()
    app = create_app(ApiSettings(ledger=settings, anchor_in_background=False))
    with TestClient(app) as client:
        anchors = client.get("/v1/log/anchors").json()
    assert [a["tree_size"] for a in anchors] == [4]
    assert anchors[0]["anchor"]["tree_size"] == 4
    assert anchors[0]["checkpoint"].split("\n")[1] == "4"
