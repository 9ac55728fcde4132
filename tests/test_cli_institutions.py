"""An admin registers a hospital and hands it its key, and rotates that key, with
``consent-ledger institution`` (and ``PUT /v1/admin/institutions/{id}/key``): the hospital then
signs in with the file it was given, and a rotated-out key signs nobody in."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import sign_institution_token
from consent_api.institutions import jwk_of
from consent_api.settings import ApiSettings
from ledger.settings import LedgerSettings
from tests.api_helpers import admin, bearer
from tests.cli_process import Ran, consent_ledger


@contextmanager
def service(data: Path) -> Iterator[TestClient]:
    """The service on ``data``, started afresh (so nothing it read before is remembered)."""
    settings = ApiSettings(
        ledger=LedgerSettings(data_dir=data),
        anchor_in_background=False,
        public_url="http://testserver",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def key_in(path: Path) -> Ed25519PrivateKey:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def signs_in(client: TestClient, institution_id: str, key: Ed25519PrivateKey) -> int:
    audience = client.get("/v1/audience").json()["audience"]
    token = sign_institution_token(key, institution_id, audience=audience)
    return client.get("/v1/institutions", headers=bearer(token)).status_code


def institution(data: Path, *args: str) -> Ran:
    return consent_ledger("institution", *args, "--data-dir", data)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    assert consent_ledger("init", "--data-dir", data).code == 0
    return data


def test_add_hands_over_a_key_the_hospital_signs_in_with(data: Path) -> None:
    ran = institution(
        data, "add", "--id", "h-north", "--name", "North Hospital", "--type", "hospital"
    )
    assert ran.code == 0, ran.err
    path = Path(ran.out.strip())
    assert path == data / "institutions" / "h-north.pem"
    assert "Hand that file to h-north" in ran.err
    assert "/console/hospital" in ran.err
    with service(data) as client:
        assert signs_in(client, "h-north", key_in(path)) == 200
        assert signs_in(client, "h-north", Ed25519PrivateKey.generate()) == 401
    listed = institution(data, "list")
    assert "h-north" in listed.out
    assert "active" in listed.out


def test_adding_it_again_says_how_to_give_it_a_new_key(data: Path) -> None:
    args = ("add", "--id", "h-north", "--name", "North", "--type", "hospital")
    assert institution(data, *args).code == 0
    again = institution(data, *args, "--key-file", str(data / "second.pem"))
    assert again.code == 2
    assert "already registered" in again.err, again.err
    assert "consent-ledger institution rotate-key --id h-north" in again.err
    assert not (data / "second.pem").exists()


def test_rotate_key_retires_the_old_key(data: Path) -> None:
    assert (
        institution(data, "add", "--id", "h-north", "--name", "N", "--type", "hospital").code == 0
    )
    old = key_in(data / "institutions" / "h-north.pem")
    ran = institution(data, "rotate-key", "--id", "h-north")
    assert ran.code == 0, ran.err
    new = key_in(Path(ran.out.strip()))
    with service(data) as client:
        assert signs_in(client, "h-north", old) == 401
        assert signs_in(client, "h-north", new) == 200
        leaves = client.get("/v1/log/leaves?start=0").json()["leaves"]
    kinds = [json.loads(base64.b64decode(leaf["leaf_data"]))["kind"] for leaf in leaves]
    assert kinds[-1] == "institution.key_rotated"


def test_rotate_key_of_an_institution_that_is_not_there(data: Path) -> None:
    ran = institution(data, "rotate-key", "--id", "h-nowhere")
    assert ran.code == 2
    assert "no institution has the id h-nowhere" in ran.err, ran.err
    assert not (data / "institutions" / "h-nowhere.pem").exists()


def test_the_admin_api_rotates_a_key(data: Path) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with service(data) as client:
        body = {
            "id": "h-east",
            "name": "East",
            "type": "hospital",
            "public_key": jwk_of(old.public_key()),
        }
        assert (
            client.post("/v1/admin/institutions", json=body, headers=admin(client)).status_code
            == 201
        )
        assert signs_in(client, "h-east", old) == 200
        url = "/v1/admin/institutions/h-east/key"
        rotated = client.put(
            url, json={"public_key": jwk_of(new.public_key())}, headers=admin(client)
        )
        assert rotated.status_code == 200, rotated.text
        assert signs_in(client, "h-east", old) == 401  # at once, in this process
        assert signs_in(client, "h-east", new) == 200
        same = client.put(url, json={"public_key": jwk_of(new.public_key())}, headers=admin(client))
        assert same.status_code == 409
        unknown = "/v1/admin/institutions/h-west/key"
        body = {"public_key": jwk_of(old.public_key())}
        assert client.put(unknown, json=body, headers=admin(client)).status_code == 404
        deactivate = "/v1/admin/institutions/h-east/deactivate"
        assert client.post(deactivate, headers=admin(client)).status_code == 200
        assert client.put(url, json=body, headers=admin(client)).status_code == 409
        again = {
            "id": "h-east",
            "name": "East",
            "type": "hospital",
            "public_key": jwk_of(old.public_key()),
        }
        refused = client.post("/v1/admin/institutions", json=again, headers=admin(client))
        assert refused.status_code == 409
        assert "PUT /v1/admin/institutions/h-east/key" in refused.json()["detail"]
