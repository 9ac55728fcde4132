"""A deployment for the auditor to audit, and the ways the tests attack it.

The deployment is real: a ledger on SQLite whose checkpoints the ``Anchorer`` anchors on the
embedded chain, served by the real app (``TestClient``). It is built once per session and copied
into each test's directory; attacks then change the copy's database file, its key, or the API's
responses (through ``proxy``), never the auditor's view of the chain.

Pristine shape: 32 leaves; checkpoints at 10, 20, 27 (each anchored) and 32 (sealed, not yet
anchored); ``early`` is a copy of the database when only size 10 was sealed and anchored.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from auditor.findings import Report
from auditor.integrity import audit_integrity
from consent_api.app import create_app
from consent_api.settings import ApiSettings
from contracts.chain import Chain, connect
from contracts.client import AnchorRegistryClient
from hashing import NoteSigner, open_checkpoint
from ledger.anchoring import Anchorer, log_id_for
from ledger.log import Ledger
from ledger.settings import LedgerSettings

ORIGIN = "audit.test/log"
API = "http://testserver"
LAG_S = 3600.0
PAGE_SIZE = 7
ANCHORED = (10, 20, 27)
LATEST = 32

Event = tuple[str, dict[str, Any]]
Edit = Callable[[httpx.Request, httpx.Response], httpx.Response]


def event(n: int, tag: str = "") -> Event:
    """A denial, as the service logs one (so the auditor's lawfulness replay has no finding)."""
    return ("access.decided", {**DENIAL, "request_id": f"r-{n}{tag}"})


DENIAL: dict[str, Any] = {
    "subject": "s-audit",
    "requester": "h-requester",
    "requester_type": "hospital",
    "holder": "h-holder",
    "categories": ["lab-results"],
    "purpose": "treatment",
    "at": "2026-01-01T00:00:00.000000Z",
    "decision": "deny",
    "reason": "no-consent",
    "relied_on": [],
    "breakglass": False,
}


@dataclass
class Deployment:
    root: Path
    contract: str = ""

    @property
    def settings(self) -> LedgerSettings:
        return LedgerSettings(
            data_dir=self.root / "data",
            origin=ORIGIN,
            checkpoint_every=1000,
            checkpoint_interval=3600,
        )

    @property
    def db_path(self) -> Path:
        return self.root / "data" / "ledger.db"

    @property
    def chain_dir(self) -> Path:
        return self.settings.chain_dir

    def copy_to(self, dest: Path) -> Deployment:
        shutil.copytree(self.root, dest)
        return Deployment(dest, self.contract)

    @contextmanager
    def ledger(self) -> Iterator[Ledger]:
        ledger = Ledger.open(self.settings)
        try:
            yield ledger
        finally:
            ledger.close()

    def grow(self, count: int, *, anchor: bool, tag: str = "") -> int:
        """Append ``count`` events, seal a checkpoint, and anchor it when ``anchor``."""
        with self.ledger() as ledger:
            start = ledger.tree_size()
            ledger.append_many(event(n, tag) for n in range(start, start + count))
            if not anchor:
                return ledger.checkpoint().tree_size
            anchorer = Anchorer(ledger)
            try:
                report = anchorer.run_once(force_seal=True)
                assert report.error is None, report.error
                registry = anchorer.connect()
                self.contract = registry.address
            finally:
                anchorer.close()
            return ledger.tree_size()

    @contextmanager
    def serve(self) -> Iterator[TestClient]:
        settings = ApiSettings(
            ledger=self.settings, anchor_in_background=False, page_size=PAGE_SIZE
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client

    @contextmanager
    def chain(self) -> Iterator[Chain]:
        with connect(data_dir=self.chain_dir, create=False) as chain:
            yield chain

    def audit(
        self,
        state_dir: Path,
        *,
        edit: Edit | None = None,
        seen: list[httpx.Request] | None = None,
        **options: Any,
    ) -> Report:
        """Serve the deployment and audit it (through ``edit`` on every response, if given;
        each request recorded in ``seen``, if given)."""
        options.setdefault("max_anchor_lag_s", LAG_S)
        with self.serve() as client, self.chain() as chain, proxy(client, edit, seen) as http:
            return audit_integrity(API, chain, self.contract, state_dir, http=http, **options)

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def leaf_data(self, index: int) -> bytes:
        with self.db() as conn:
            row = conn.execute("SELECT leaf_data FROM leaf WHERE leaf_index = ?", (index,))
            return bytes(row.fetchone()[0])

    def signer(self) -> NoteSigner:
        text = (self.root / "data" / "log.key").read_text(encoding="ascii").strip()
        return NoteSigner.from_skey(text)


@contextmanager
def proxy(
    client: TestClient, edit: Edit | None = None, seen: list[httpx.Request] | None = None
) -> Iterator[httpx.Client]:
    """An HTTP client for the app that records each request and may rewrite each response."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        answer = client.request(request.method, str(request.url))
        response = httpx.Response(
            answer.status_code, headers=answer.headers, content=answer.content, request=request
        )
        return response if edit is None else edit(request, response)

    with httpx.Client(transport=httpx.MockTransport(handle)) as http:
        yield http


def json_response(request: httpx.Request, body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body, request=request)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Deployment, Path]:
    """The pristine deployment, and the database as it was when only size 10 was anchored."""
    root = tmp_path_factory.mktemp("pristine")
    deployment = Deployment(root / "deployment")
    deployment.grow(10, anchor=True)
    early = root / "early.db"
    shutil.copyfile(deployment.db_path, early)
    deployment.grow(10, anchor=True)
    deployment.grow(7, anchor=True)
    deployment.grow(5, anchor=False)
    with deployment.serve():
        pass  # the app's own tables and projection marks, as in a running deployment
    return deployment, early


@pytest.fixture
def deployment(pristine: tuple[Deployment, Path], tmp_path: Path) -> Deployment:
    return pristine[0].copy_to(tmp_path / "deployment")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "auditor-state"


def test_the_pristine_deployment_has_the_shape_the_attacks_assume(deployment: Deployment) -> None:
    with deployment.ledger() as ledger:
        assert ledger.tree_size() == LATEST
        sizes = [c.tree_size for c in ledger.store.checkpoints()]
        assert sizes == [0, *ANCHORED, LATEST]  # a new log signs its empty tree at once
    with deployment.chain() as chain:
        registry = AnchorRegistryClient.at(chain, deployment.contract)
        anchored = registry.anchors(log_id_for(ORIGIN), 0)
        assert tuple(a.tree_size for a in anchored) == ANCHORED
    with deployment.serve() as client:
        vkey = client.get("/v1/log/key").text.strip()
        note = client.get("/v1/log/checkpoint").text
        assert open_checkpoint(note, deployment.signer().verifier()).tree_size == LATEST
        assert vkey == deployment.signer().verifier().to_vkey()
        listed = client.get("/v1/log/anchors").json()
        assert [entry["tree_size"] for entry in listed] == list(ANCHORED)
    assert json.loads(deployment.leaf_data(3))["data"]["request_id"] == "r-3"
