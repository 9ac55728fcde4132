"""Several worker processes on one PostgreSQL log, and one on SQLite: dense indices over HTTP."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent_api.institutions import jwk_of
from hashing import leaf_hash, merkle_root, verify_inclusion
from tests.live_server import LiveServer

RULES = {
    "grantee": {"institution": "h-east"},
    "categories": ["lab-results"],
    "purposes": ["treatment"],
}


def run_concurrent_grants(server: LiveServer, residents: int, grants_each: int) -> list[int]:
    admin = server.cli("issue-token", "--role", "admin", "--subject", "ops").strip()
    tokens = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        grantee = {
            "id": "h-east",
            "name": "East",
            "type": "hospital",
            "public_key": jwk_of(Ed25519PrivateKey.generate().public_key()),
        }
        registered = client.post(
            "/v1/admin/institutions", json=grantee, headers={"Authorization": f"Bearer {admin}"}
        )
        assert registered.status_code == 201, registered.text
        for n in range(residents):
            body = {"identifier": f"NAT-W{n}", "name": f"Resident {n}", "birth_date": "1980-01-01"}
            answer = client.post(
                "/v1/admin/residents", json=body, headers={"Authorization": f"Bearer {admin}"}
            )
            assert answer.status_code == 201, answer.text
            subject = answer.json()["subject"]
            tokens.append(
                server.cli("issue-token", "--role", "resident", "--subject", subject).strip()
            )

    def grant(token: str) -> list[int]:
        indices = []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for _ in range(grants_each):
                answer = client.post(
                    "/v1/consents", json=RULES, headers={"Authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 201, answer.text
                indices.append(answer.json()["leaf_index"])
        return indices

    with ThreadPoolExecutor(max_workers=residents) as pool:
        return [index for batch in pool.map(grant, tokens) for index in batch]


def check_log(server: LiveServer) -> int:
    """The served leaves are dense and hash to the root of a fresh checkpoint."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        data: list[bytes] = []
        url: str | None = "/v1/log/leaves?start=0"
        while url:
            page = client.get(url).json()
            assert [leaf["leaf_index"] for leaf in page["leaves"]] == list(
                range(len(data), len(data) + len(page["leaves"]))
            )
            data += [base64.b64decode(leaf["leaf_data"]) for leaf in page["leaves"]]
            url = page["next"]
        size = len(data)
        root = merkle_root([leaf_hash(d) for d in data])
        # The server's own tree is the tree of the leaves it serves: its proofs verify against
        # the root we computed from those leaves.
        for index in (0, size // 2, size - 1):
            answer = client.get(
                "/v1/log/proof/inclusion", params={"leaf_index": index, "tree_size": size}
            )
            proof = [base64.b64decode(h) for h in answer.json()["proof"]]
            verify_inclusion(leaf_hash(data[index]), index, size, proof, root)
    return size


@pytest.mark.postgres
def test_three_workers_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    server = LiveServer(tmp_path / "data", workers=3, env={"CONSENT_LEDGER_DATABASE_URL": pg_url})
    try:
        indices = run_concurrent_grants(server, residents=6, grants_each=8)
        assert len(set(indices)) == len(indices) == 48
        size = check_log(server)
        assert set(indices) <= set(range(size))
    finally:
        server.stop()


def test_one_worker_on_sqlite(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data")
    try:
        indices = run_concurrent_grants(server, residents=4, grants_each=5)
        assert len(set(indices)) == len(indices) == 20
        assert set(indices) <= set(range(check_log(server)))
    finally:
        server.stop()


def test_several_workers_are_refused_on_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from consent_api.cli import main

    assert main(["init", "--data-dir", str(tmp_path)]) == 0
    code = main(["serve", "--workers", "2", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "needs PostgreSQL" in capsys.readouterr().err
