"""``consent-ledger demo`` leaves parties behind who can sign in: each institution's private key
file in the day's data dir, and one line per role that works when copied."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import sign_institution_token
from consent_api.settings import ApiSettings
from ledger.settings import LedgerSettings
from tests.api_helpers import bearer
from tests.cli_process import consent_ledger


def copied(line: str) -> list[str]:
    """The command after 'consent-ledger' on a sign-in line, as a person would paste it."""
    command = line.split("consent-ledger ", 1)[1].split(";")[0]
    return shlex.split(command)


def test_the_day_leaves_signed_in_able_parties(tmp_path: Path) -> None:
    ran = consent_ledger("demo", "--residents", "20", "--data-dir", tmp_path)
    assert ran.code == 0, ran.err
    day = tmp_path / "demo" / "day-001"
    by_role = {
        role: next(line for line in ran.out.splitlines() if line.startswith(f"  as {role}"))
        for role in ("a resident", "a hospital", "a regulator", "the admin")
    }
    key_files = sorted((day / "institutions").glob("*.pem"))
    assert len(key_files) == 6
    for path in key_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    hospital_line = by_role["a hospital"]
    institution_id = hospital_line.split("with the id ")[1].split()[0]
    key_file = Path(hospital_line.split("the key file ")[1].split()[0])
    assert key_file == day / "institutions" / f"{institution_id}.pem"

    tokens = {}
    for role in ("a resident", "a regulator", "the admin"):
        issued = consent_ledger(*copied(by_role[role]))
        assert issued.code == 0, (role, issued.err)
        tokens[role] = issued.out.strip()

    settings = ApiSettings(
        ledger=LedgerSettings(data_dir=day),
        anchor_in_background=False,
        public_url="http://testserver",
    )
    with TestClient(create_app(settings)) as client:
        me = client.get("/v1/me/access-history", headers=bearer(tokens["a resident"]))
        assert me.status_code == 200
        cases = client.get("/v1/break-glass", headers=bearer(tokens["a regulator"]))
        assert cases.status_code == 200
        listed = client.get("/v1/admin/institutions", headers=bearer(tokens["the admin"]))
        assert listed.status_code == 200
        key = load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        audience = client.get("/v1/audience").json()["audience"]
        token = sign_institution_token(key, institution_id, audience=audience)
        assert client.get("/v1/institutions", headers=bearer(token)).status_code == 200
