"""A platform for the browser tests: a real ``consent-ledger serve``, parties set up through its
API, and what the node scripts in ``tests/e2e`` need to drive the pages (``world.json``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from auditor.findings import Finding, FindingCode, Report
from consent_api.auth import sign_institution_token
from consent_api.institutions import jwk_of
from tests.live_server import LiveServer
from tests.paths import REPO

CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT = REPO / "node_modules" / "playwright-core"
SCREENSHOTS = REPO / "docs" / "screenshots"
JUSTIFY_WITHIN = 2
"""Seconds a break-glass may stay unjustified on the test platform: soon overdue, no sleeping."""
EXPLORER = "https://explorer.example/tx/{tx}"


def require_browser() -> None:
    """Skip without Debian's chromium or playwright-core, except in CI, where that fails."""
    missing = [
        what
        for what, present in (
            (f"{CHROMIUM} (make browser)", CHROMIUM.exists()),
            ("node_modules/playwright-core (make setup)", PLAYWRIGHT.is_dir()),
            ("node", shutil.which("node") is not None),
        )
        if not present
    ]
    if not missing:
        return
    reason = "browser tests need " + ", ".join(missing)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Party:
    id: str
    key: Ed25519PrivateKey
    pem_path: Path
    audience: str

    def token(self, ttl: int = 60) -> str:
        return sign_institution_token(self.key, self.id, ttl, audience=self.audience)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


@dataclass
class World:
    server: LiveServer
    client: httpx.Client
    admin: dict[str, str]
    path: Path
    institutions: dict[str, Party] = field(default_factory=dict)
    residents: dict[str, dict[str, str]] = field(default_factory=dict)
    regulator_token: str = ""

    def register_institution(self, institution_id: str, name: str, kind: str) -> Party:
        key = Ed25519PrivateKey.generate()
        pem_path = self.path.parent / f"{institution_id}.pem"
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        pem_path.write_bytes(pem)
        pem_path.chmod(0o600)
        body = {
            "id": institution_id,
            "name": name,
            "type": kind,
            "public_key": jwk_of(key.public_key()),
        }
        response = self.client.post("/v1/admin/institutions", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        audience = self.client.get("/v1/audience").json()["audience"]
        party = Party(institution_id, key, pem_path, audience)
        self.institutions[institution_id] = party
        return party

    def register_resident(self, name: str, born: date, guardians: tuple[str, ...] = ()) -> str:
        body = {
            "identifier": f"NAT-{name.upper()}",
            "name": name,
            "birth_date": born.isoformat(),
            "guardians": list(guardians),
        }
        response = self.client.post("/v1/admin/residents", json=body, headers=self.admin)
        assert response.status_code in (200, 201), response.text
        subject: str = response.json()["subject"]
        self.residents[name] = {"subject": subject, "token": self.token("resident", subject)}
        return subject

    def token(self, role: str, subject: str) -> str:
        body = {"role": role, "subject": subject, "ttl": 3600}
        response = self.client.post("/v1/admin/tokens", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        token: str = response.json()["access_token"]
        return token

    def as_resident(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.residents[name]['token']}"}

    def wait_until_anchored(self, name: str) -> list[dict[str, Any]]:
        """The resident's history once every entry has its receipt (the anchorer seals each
        second on this platform)."""
        deadline = time.monotonic() + 90
        while True:
            response = self.client.get("/v1/me/access-history", headers=self.as_resident(name))
            assert response.status_code == 200, response.text
            entries: list[dict[str, Any]] = response.json()
            if entries and all(entry["receipt"] for entry in entries):
                return entries
            assert time.monotonic() < deadline, "the history was not anchored"
            time.sleep(0.5)

    def write(self) -> Path:
        doc = {
            "url": self.server.url,
            "screenshots": str(SCREENSHOTS),
            "chromium": str(CHROMIUM),
            "explorer": EXPLORER,
            "residents": self.residents,
            "institutions": {
                key: {"id": party.id, "pem": str(party.pem_path)}
                for key, party in self.institutions.items()
            },
            "regulator": self.regulator_token,
        }
        self.path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return self.path


def write_audit_report(path: Path, api_url: str) -> None:
    """A report as the auditor writes it (``auditor --json``), with one timeliness finding."""
    report = Report(api_url=api_url, chain_id=1337, contract="0x" + "ab" * 20)
    report.verified_size = report.anchored_size = 12
    report.findings = [
        Finding(
            FindingCode.ANCHOR_LAG,
            "the checkpoint of size 3 was anchored 900 s after it was first seen; "
            "the limit is 600 s",
            tree_size=3,
        )
    ]
    path.write_text(report.to_json(), encoding="utf-8")


def start_world(tmp: Path) -> World:
    report = tmp / "audit-report.json"
    env = {
        "CONSENT_LEDGER_CHECKPOINT_INTERVAL": "1",
        "CONSENT_API_BREAKGLASS_JUSTIFY_WITHIN": str(JUSTIFY_WITHIN),
        "CONSENT_API_AUDIT_REPORT": str(report),
        "CONSENT_API_EXPLORER_TX_URL": EXPLORER,
    }
    data_dir = tmp / "data"
    data_dir.mkdir()
    server = LiveServer(data_dir, env=env)
    write_audit_report(report, server.url)
    admin = server.cli("issue-token", "--role", "admin", "--subject", "ops").strip()
    client = httpx.Client(base_url=server.url, timeout=30)
    world = World(server, client, {"Authorization": f"Bearer {admin}"}, tmp / "world.json")
    world.register_institution("h-east", "East River Hospital", "hospital")
    world.register_institution("h-west", "West Lake Hospital", "hospital")
    world.register_institution("c-north", "North Gate Clinic", "clinic")
    parent = world.register_resident("mei", date(1985, 3, 14))
    world.register_resident("lin", date(2018, 6, 1), guardians=(parent,))
    world.register_resident("tao", date(1979, 9, 30))
    world.register_resident("jun", date(1990, 1, 2))
    world.regulator_token = world.token("regulator", "reg-audit")
    return world


def run_script(world: World, script: str, *args: str) -> None:
    """Run ``tests/e2e/<script>`` against the world; fail with its output unless it exits 0."""
    command = ["node", str(REPO / "tests" / "e2e" / script), str(world.write()), *args]
    env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=280, check=False
    )
    output = f"--- {script} stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    print(output)
    assert done.returncode == 0, output
