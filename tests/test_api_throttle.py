"""One caller cannot stall the others (issue 12, item 4): per-caller limits answer 429 with
Retry-After, history pages of a client that has gone are dropped, and redemptions, decisions
and other residents' reads complete while one resident floods its access history.

The flood runs against a real ``consent-ledger serve``; nothing here asserts how fast anything
is (``bench/flood.py`` measures that), only that it completes and what it answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import PlatformKeys, Role, issue_token, sign_institution_token
from consent_api.institutions import jwk_of
from consent_api.settings import ApiSettings
from ledger.settings import LedgerSettings
from tests.api_helpers import api_settings, register_resident, resident
from tests.live_server import LiveServer
from tests.test_api_access import CONSENT_RULES, assert_problem, make_world
from tests.test_api_access_history import anchor


def limited(tmp_path: Path, **limits: Any) -> ApiSettings:
    return api_settings(tmp_path).model_copy(update=limits)


def test_a_caller_over_its_rate_gets_429_with_retry_after_and_others_do_not(
    tmp_path: Path,
) -> None:
    with TestClient(create_app(limited(tmp_path, caller_burst=3, caller_rate=0.01))) as client:
        flooder = register_resident(client, "NAT-FLOOD-1", birth_date=date(1990, 1, 1))
        other = register_resident(client, "NAT-CALM-1", birth_date=date(1990, 1, 1))
        headers = resident(client, flooder)
        answers = [client.get("/v1/consents", headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        problem = assert_problem(answers[-1], 429, "too-many-requests")
        assert int(answers[-1].headers["Retry-After"]) >= 1
        assert problem["retry_after"] == int(answers[-1].headers["Retry-After"])
        # From an address of its own: a token not seen before is paid for by its peer first.
        elsewhere = TestClient(client.app, client=("198.51.100.2", 40000))
        assert elsewhere.get("/v1/consents", headers=resident(client, other)).status_code == 200


def test_history_pages_are_paid_for_by_the_entries_they_ask_for(tmp_path: Path) -> None:
    settings = limited(tmp_path, history_burst=1500, history_rate=0.01, refusal_delay=0)
    with TestClient(create_app(settings)) as client:
        flooder = register_resident(client, "NAT-FLOOD-3", birth_date=date(1990, 1, 1))
        headers = resident(client, flooder)
        pages = [
            client.get("/v1/me/access-history", params={"limit": n}, headers=headers)
            for n in (1000, 1000, 100, 100)
        ]
        # 1,000 of the 1,500 entries, then not another 1,000, yet pages of 100 still fit.
        assert [page.status_code for page in pages] == [200, 429, 200, 200]
        assert_problem(pages[1], 429, "too-many-requests")
        assert int(pages[1].headers["Retry-After"]) >= 1
        assert client.get("/v1/consents", headers=headers).status_code == 200


def test_every_operation_documents_429_with_retry_after(tmp_path: Path) -> None:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            too_many = operation["responses"].get("429")
            assert too_many is not None, (method, path)
            assert "Retry-After" in too_many["headers"]


def test_a_history_page_for_a_client_that_has_gone_is_dropped(tmp_path: Path) -> None:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        world = make_world(client)
        world.permit()
        anchor(world)
        token = resident(client, world.subject)["Authorization"].encode()
        sent: list[dict[str, Any]] = []

        async def gone() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/me/access-history",
            "raw_path": b"/v1/me/access-history",
            "query_string": b"limit=1000",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"authorization", token)],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        assert client.portal is not None
        client.portal.call(client.app, scope, gone, send)
        assert sent[0]["status"] == 499
        assert b"".join(m.get("body", b"") for m in sent[1:]) == b""
        assert client.get("/v1/me/access-history", headers=resident(client, world.subject)).json()


# -- a real server, flooded ------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "data")
    yield live
    live.stop()


class Flood:
    """One resident's access history, asked ``width`` at a time until stopped."""

    def __init__(self, url: str, token: str, width: int) -> None:
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.retry_after: set[str] = set()
        self._pool = ThreadPoolExecutor(width)
        self._futures = [self._pool.submit(self._run, url, token) for _ in range(width)]

    def _run(self, url: str, token: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while not self.stop.is_set():
                answer = client.get(
                    "/v1/me/access-history",
                    params={"limit": 1000},
                    headers={"Authorization": f"Bearer {token}"},
                )
                self.statuses.append(answer.status_code)
                if answer.status_code == 429:
                    self.retry_after.add(answer.headers.get("Retry-After", ""))

    def end(self) -> None:
        self.stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()


class Parties:
    """A requester, a holder and residents consenting to them, set up through the server."""

    def __init__(self, server: LiveServer) -> None:
        self.client = httpx.Client(base_url=server.url, timeout=120)
        self.platform = PlatformKeys.of_deployment(
            ApiSettings(ledger=LedgerSettings(data_dir=server.data_dir))
        )
        self.keys = {"h-east": Ed25519PrivateKey.generate(), "h-west": Ed25519PrivateKey.generate()}
        for institution_id, key in self.keys.items():
            body = {
                "id": institution_id,
                "name": institution_id,
                "type": "hospital",
                "public_key": jwk_of(key.public_key()),
            }
            self.post("/v1/admin/institutions", body, self.platform_token(Role.ADMIN, "ops"))

    def platform_token(self, role: Role, subject: str) -> str:
        return issue_token(self.platform, role, subject)

    def post(self, path: str, body: Any, token: str) -> Any:
        answer = self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def resident(self, identifier: str) -> str:
        person = {"identifier": identifier, "name": identifier, "birth_date": "1980-01-01"}
        admin = self.platform_token(Role.ADMIN, "ops")
        subject: str = self.post("/v1/admin/residents", person, admin)["subject"]
        self.post("/v1/consents", CONSENT_RULES, self.platform_token(Role.RESIDENT, subject))
        return subject

    def decide(self, subject: str) -> Any:
        body = {
            "subject": subject,
            "holder": "h-west",
            "categories": ["lab-results"],
            "purpose": "treatment",
        }
        return self.post(
            "/v1/access-requests",
            body,
            sign_institution_token(self.keys["h-east"], "h-east", audience=self.platform.audience),
        )

    def redeem(self, subject: str, token: str) -> httpx.Response:
        body = {
            "grant_token": token,
            "requester": "h-east",
            "subject": subject,
            "categories": ["lab-results"],
            "purpose": "treatment",
        }
        holder = sign_institution_token(
            self.keys["h-west"], "h-west", audience=self.platform.audience
        )
        return self.client.post(
            "/v1/grants/redeem", json=body, headers={"Authorization": f"Bearer {holder}"}
        )


def test_redemptions_decisions_and_other_reads_complete_while_one_resident_floods(
    server: LiveServer,
) -> None:
    parties = Parties(server)
    flooder, calm = parties.resident("NAT-FLOOD-2"), parties.resident("NAT-CALM-2")
    for _ in range(300):
        parties.decide(flooder)  # a long history to flood with
    flood = Flood(server.url, parties.platform_token(Role.RESIDENT, flooder), width=40)
    calm_token = {"Authorization": f"Bearer {parties.platform_token(Role.RESIDENT, calm)}"}
    try:
        for _ in range(3):
            decided = parties.decide(calm)
            assert decided["decision"] == "permit", decided
            released = parties.redeem(calm, decided["grant"]["token"])
            assert released.status_code == 200, released.text
            consents = parties.client.get("/v1/consents", headers=calm_token)
            assert consents.status_code == 200, consents.text
    finally:
        flood.end()
        parties.client.close()
    assert 200 in flood.statuses
    assert 429 in flood.statuses
    assert set(flood.statuses) <= {200, 429}
    assert all(value.isdigit() for value in flood.retry_after)
