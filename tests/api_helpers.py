"""Helpers for tests through the real app: tokens, registered parties, log reads."""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from consent_api.auth import PlatformKeys, Role, issue_token, sign_institution_token
from consent_api.institutions import jwk_of
from consent_api.settings import ApiSettings
from ledger.settings import LedgerSettings


def api_settings(tmp_path: Path, database_url: str | None = None) -> ApiSettings:
    ledger = LedgerSettings(
        data_dir=tmp_path / "data",
        database_url=database_url or f"sqlite:///{tmp_path / 'ledger.db'}",
        origin="api.test/log",
    )
    # The test client's own base URL: links the service writes resolve through it.
    return ApiSettings(ledger=ledger, anchor_in_background=False, public_url="http://testserver")


def state(client: TestClient, name: str) -> Any:
    return getattr(client.app.state, name)  # type: ignore[attr-defined]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def platform_headers(client: TestClient, role: Role, subject: str) -> dict[str, str]:
    platform: PlatformKeys = state(client, "platform_keys")
    return bearer(issue_token(platform, role, subject))


def admin(client: TestClient) -> dict[str, str]:
    return platform_headers(client, Role.ADMIN, "ops")


def register_resident(
    client: TestClient, identifier: str, *, birth_date: date, guardians: tuple[str, ...] = ()
) -> str:
    body = {
        "identifier": identifier,
        "name": f"Name of {identifier}",
        "birth_date": birth_date.isoformat(),
        "guardians": list(guardians),
    }
    response = client.post("/v1/admin/residents", json=body, headers=admin(client))
    assert response.status_code in (200, 201), response.text
    subject: str = response.json()["subject"]
    return subject


def resident(client: TestClient, subject: str) -> dict[str, str]:
    return platform_headers(client, Role.RESIDENT, subject)


class Institution:
    """A hospital with its own key pair, registered by the admin."""

    def __init__(self, client: TestClient, institution_id: str, kind: str = "hospital") -> None:
        self.id = institution_id
        self.key = Ed25519PrivateKey.generate()
        self.audience: str = state(client, "platform_keys").audience
        body = {
            "id": institution_id,
            "name": f"Hospital {institution_id}",
            "type": kind,
            "public_key": jwk_of(self.key.public_key()),
        }
        response = client.post("/v1/admin/institutions", json=body, headers=admin(client))
        assert response.status_code == 201, response.text

    def headers(self) -> dict[str, str]:
        return bearer(sign_institution_token(self.key, self.id, audience=self.audience))


def leaves(client: TestClient) -> list[dict[str, Any]]:
    """Every leaf as its decoded event, read through the public log API."""
    events: list[dict[str, Any]] = []
    url: str | None = "/v1/log/leaves?start=0"
    while url:
        page = client.get(url).json()
        events += [json.loads(base64.b64decode(leaf["leaf_data"])) for leaf in page["leaves"]]
        url = page["next"]
    return events
