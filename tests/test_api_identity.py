"""Pseudonyms and the resident vault through the real app: nothing personal in the log or in clear
in the database, and erasure by deleting the key leaves a log that still verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from consent_api.app import create_app
from consent_api.auth import PlatformKeys, Role, issue_token
from consent_api.errors import ErasedError, UnknownSubjectError
from consent_api.identity import (
    PersonalRecord,
    PseudonymKey,
    ResidentRecordRow,
    ResidentVault,
    pseudonym,
    subject_erased_event,
)
from consent_api.institutions import jwk_of
from consent_api.settings import ApiSettings
from hashing import NoteVerifier, leaf_hash, merkle_root, open_checkpoint
from ledger.errors import IntegrityError, KeyFileError
from ledger.events import decode_leaf
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from ledger.store import LedgerStore
from tests.api_helpers import Institution, platform_headers, register_resident, resident

NAME = "Zbigniewa Quaresma-Lindqvist"
IDENTIFIER = "NAT-4711-0815-XQ"
CONTACT = "zq.lindqvist@mail.example"
CHILD_NAME = "Ottilie Quaresma-Lindqvist"
CHILD_IDENTIFIER = "NAT-2020-0001-XQ"


def settings_for(tmp_path: Path, database_url: str | None = None) -> ApiSettings:
    return ApiSettings(
        ledger=LedgerSettings(
            data_dir=tmp_path / "data",
            database_url=database_url or f"sqlite:///{tmp_path / 'ledger.db'}",
            origin="test.example/log",
        ),
        anchor_in_background=False,
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path))) as test_client:
        yield test_client


def state(client: TestClient, name: str) -> Any:
    return getattr(client.app.state, name)  # type: ignore[attr-defined]


def admin(client: TestClient) -> dict[str, str]:
    platform: PlatformKeys = state(client, "platform_keys")
    return {"Authorization": f"Bearer {issue_token(platform, Role.ADMIN, 'ops')}"}


def register(client: TestClient, **fields: Any) -> Any:
    body = {"identifier": IDENTIFIER, "name": NAME, "birth_date": "1984-02-29", **fields}
    return client.post("/v1/admin/residents", json=body, headers=admin(client))


def all_leaves(client: TestClient) -> list[bytes]:
    pages: list[bytes] = []
    url: str | None = "/v1/log/leaves?start=0"
    while url:
        page = client.get(url).json()
        pages += [base64.b64decode(leaf["leaf_data"]) for leaf in page["leaves"]]
        url = page["next"]
    return pages


def database_bytes(tmp_path: Path) -> bytes:
    """The SQLite file with its WAL and shared memory: everything the database wrote."""
    return b"".join(path.read_bytes() for path in sorted(tmp_path.glob("ledger.db*")))


# -- pseudonyms ------------------------------------------------------------------------------


def test_pseudonym_is_a_keyed_hmac_of_the_identifier() -> None:
    secret = bytes(range(32))
    expected = hmac.new(secret, IDENTIFIER.encode(), hashlib.sha256).hexdigest()
    assert pseudonym(secret, IDENTIFIER) == expected
    assert pseudonym(secret, f"  {IDENTIFIER}\n") == expected
    assert pseudonym(secret, "Jose\u0301") == pseudonym(secret, "Jos\u00e9")  # NFD == NFC
    assert pseudonym(bytes(32), IDENTIFIER) != expected  # another platform, another subject
    assert pseudonym(secret, IDENTIFIER + "1") != expected
    with pytest.raises(ValueError, match="32 bytes"):
        pseudonym(b"short", IDENTIFIER)
    with pytest.raises(ValueError, match="empty"):
        pseudonym(secret, "   ")


def test_pseudonym_key_file_is_private_and_refused_when_open(tmp_path: Path) -> None:
    store = LedgerStore.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    key = PseudonymKey.load(tmp_path, store)
    path = tmp_path / "platform-pseudonym.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    assert PseudonymKey.load(tmp_path, store).secret == key.secret
    assert key.secret.hex() not in repr(key)
    path.chmod(0o604)
    with pytest.raises(KeyFileError, match="chmod 600"):
        PseudonymKey.load(tmp_path, store)
    path.chmod(0o600)
    path.write_bytes(b"x" * 31)
    with pytest.raises(KeyFileError, match="32 bytes"):
        PseudonymKey.load(tmp_path, store)
    store.close()


def test_same_identifier_same_subject_across_restarts(tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(tmp_path))) as client:
        first = register(client)
        assert first.status_code == 201, first.text
        subject = first.json()["subject"]
        again = register(client, identifier=f" {IDENTIFIER} ", name="Renamed")
        assert again.status_code == 200
        assert again.json() == {"subject": subject, "created": False}
        other = register(client, identifier="NAT-0000")
        assert other.json()["subject"] != subject
    with TestClient(create_app(settings_for(tmp_path))) as client:
        assert register(client).json() == {"subject": subject, "created": False}
        vault: ResidentVault = state(client, "vault")
        assert vault.read(subject).name == NAME
    for name in ("platform-pseudonym.key", "platform-token.key"):
        mode = (tmp_path / "data" / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600


# -- the vault -------------------------------------------------------------------------------


def test_vault_keeps_personal_fields_and_guardian_links(client: TestClient) -> None:
    parent = register(client, contact=CONTACT).json()["subject"]
    child = register(
        client,
        identifier=CHILD_IDENTIFIER,
        name=CHILD_NAME,
        birth_date="2020-03-01",
        guardians=[parent],
    ).json()["subject"]
    vault: ResidentVault = state(client, "vault")
    assert vault.read(parent) == PersonalRecord(
        identifier=IDENTIFIER, name=NAME, birth_date=date(1984, 2, 29), contact=CONTACT
    )
    assert vault.birth_date(child) == date(2020, 3, 1)
    assert vault.read(child).guardians == (parent,)

    refused: list[tuple[dict[str, Any], int, str]] = [
        ({"guardians": ["ef" * 32]}, 422, "unprocessable"),  # not a registered resident
        ({"guardians": ["not-a-subject"]}, 422, "validation"),
        ({"birth_date": "2999-01-01"}, 422, "unprocessable"),
        ({"identifier": "   "}, 422, "unprocessable"),
        ({"name": ""}, 422, "validation"),
        ({"national_id_copy": "x"}, 422, "validation"),
    ]
    for fields, status, slug in refused:
        response = register(client, **{"identifier": "NAT-NEW", **fields})
        assert response.status_code == status, (fields, response.text)
        assert response.json()["type"].endswith(slug)
    own = register(client, guardians=[parent])
    assert own.status_code == 422
    with pytest.raises(UnknownSubjectError):
        vault.read("ab" * 32)


def test_a_record_moved_to_another_subject_does_not_open(client: TestClient) -> None:
    a = register(client).json()["subject"]
    b = register(client, identifier=CHILD_IDENTIFIER, name=CHILD_NAME).json()["subject"]
    ledger: Ledger = state(client, "ledger")
    table = ResidentRecordRow.__table__  # type: ignore[attr-defined]
    with ledger.store.write() as conn:
        row = conn.execute(select(table).where(table.c.subject == a)).one()
        conn.execute(
            table.update()
            .where(table.c.subject == b)
            .values(nonce=row.nonce, ciphertext=row.ciphertext)
        )
    with pytest.raises(IntegrityError):
        state(client, "vault").read(b)  # sealed with a's key and bound to a


# -- no personal data anywhere in clear; erasure ---------------------------------------------


def test_nothing_personal_in_leaves_or_database_and_erasure_keeps_the_log_verifiable(
    tmp_path: Path, client: TestClient
) -> None:
    hospital = Ed25519PrivateKey.generate()
    response = client.post(
        "/v1/admin/institutions",
        json={
            "id": "hosp-1",
            "name": "St. Example",
            "type": "hospital",
            "public_key": jwk_of(hospital.public_key()),
        },
        headers=admin(client),
    )
    assert response.status_code == 201
    parent = register(client, contact=CONTACT).json()["subject"]
    child = register(
        client,
        identifier=CHILD_IDENTIFIER,
        name=CHILD_NAME,
        birth_date="2020-03-01",
        guardians=[parent],
    ).json()["subject"]
    ledger: Ledger = state(client, "ledger")
    ledger.append("consent.granted", {"consent_id": "c-1", "subject": parent})
    vault: ResidentVault = state(client, "vault")
    with ledger.store.read() as conn:
        parent_key = conn.exec_driver_sql(
            "SELECT key FROM resident_key WHERE subject = ?", (parent,)
        ).scalar_one()

    erased = client.delete(f"/v1/admin/residents/{parent}", headers=admin(client))
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["subject"] == parent
    kind, data = decode_leaf(ledger.leaves(body["leaf_index"], body["leaf_index"] + 1)[0].leaf_data)
    assert kind == "subject.erased"
    assert set(data) == {"subject", "erased_at"}
    assert data["subject"] == parent

    # Unreadable for good: the vault, a token, a re-registration, a second erasure.
    with pytest.raises(ErasedError):
        vault.read(parent)
    with pytest.raises(ErasedError):
        vault.birth_date(parent)
    assert vault.read(child).guardians == (parent,)  # the child's record is the child's
    token = client.post(
        "/v1/admin/tokens", json={"role": "resident", "subject": parent}, headers=admin(client)
    )
    assert token.status_code == 410
    assert register(client).status_code == 410
    again = client.delete(f"/v1/admin/residents/{parent}", headers=admin(client))
    assert again.status_code == 410
    assert again.json()["leaf_index"] == body["leaf_index"]

    # No identifier, name or contact in any leaf, nor in clear anywhere in the database.
    leaves = all_leaves(client)
    secrets = [NAME, IDENTIFIER, CONTACT, CHILD_NAME, CHILD_IDENTIFIER, "St. Example"]
    stored = database_bytes(tmp_path)
    assert b"resident_record" in stored  # the scan reads the real file
    for text in secrets:
        for leaf in leaves:
            assert text.encode() not in leaf
        if text != "St. Example":  # an institution's name is not personal data
            assert text.encode() not in stored, text
    assert parent_key not in stored  # the erased key is gone from the file and its WAL

    # The log still verifies: the checkpoint's root is the root of the leaves served.
    ledger.checkpoint()
    verifier = NoteVerifier.from_vkey(client.get("/v1/log/key").text.strip())
    checkpoint = open_checkpoint(client.get("/v1/log/checkpoint").text, verifier)
    assert checkpoint.tree_size == len(leaves)
    assert merkle_root([leaf_hash(leaf) for leaf in leaves]) == checkpoint.root_hash


def test_erasure_logged_once_and_retried_when_logging_failed(client: TestClient) -> None:
    subject = register(client).json()["subject"]
    vault: ResidentVault = state(client, "vault")
    erasure, erased_now = vault.erase(subject)  # as if the append had failed afterwards
    assert erased_now
    assert erasure.leaf_index is None
    assert subject_erased_event(erasure)["erased_at"].endswith("Z")
    ledger: Ledger = state(client, "ledger")
    size = ledger.tree_size()
    retried = client.delete(f"/v1/admin/residents/{subject}", headers=admin(client))
    assert retried.status_code == 200
    assert retried.json()["leaf_index"] == size
    assert client.delete(f"/v1/admin/residents/{subject}", headers=admin(client)).status_code == 410
    assert ledger.tree_size() == size + 1
    erased = vault.erasure(subject)
    assert erased is not None
    assert erased.leaf_index == size


def test_an_erased_childs_lapse_date_is_no_longer_kept_or_opened(client: TestClient) -> None:
    """The projection keeps a guardian consent's lapse date (the 14th birthday) in clear, to
    judge by; erasing the child removes those rows, so neither the database nor the
    regulator's lapse openings still tell the birth date."""
    Institution(client, "h-east")
    parent = register_resident(client, "NAT-PARENT-E", birth_date=date(1980, 1, 1))
    child = register_resident(
        client, "NAT-CHILD-E", birth_date=date(2016, 7, 19), guardians=(parent,)
    )
    rules = {"grantee": {"institution": "h-east"}, "categories": ["lab-results"]}
    rules["purposes"] = ["treatment"]
    granted = client.post(
        "/v1/consents", json={**rules, "subject": child}, headers=resident(client, parent)
    )
    assert granted.status_code == 201, granted.text
    regulator = platform_headers(client, Role.REGULATOR, "reg-1")
    openings = client.get("/v1/regulator/lapse-openings", headers=regulator).json()["openings"]
    assert [o["guardian_authority_ends"] for o in openings] == ["2030-07-19"]

    assert client.delete(f"/v1/admin/residents/{child}", headers=admin(client)).status_code == 200
    assert client.get("/v1/regulator/lapse-openings", headers=regulator).json()["openings"] == []
    with state(client, "records").store.read() as conn:
        bodies = [row[0] for row in conn.exec_driver_sql("SELECT body FROM consent_record")]
    assert not any("2030-07-19" in body for body in bodies)


@pytest.mark.parametrize(
    ("subject", "status", "slug"),
    [("ab" * 32, 404, "unknown-subject"), ("AB" * 32, 422, "validation"), ("x", 422, "validation")],
)
def test_erasing_no_one_is_refused(
    client: TestClient, subject: str, status: int, slug: str
) -> None:
    response = client.delete(f"/v1/admin/residents/{subject}", headers=admin(client))
    assert response.status_code == status
    assert response.json()["type"].endswith(slug)


def test_vault_on_postgresql_too(db_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(tmp_path, db_url))) as client:
        subject = register(client).json()["subject"]
        assert register(client).json() == {"subject": subject, "created": False}
        vault: ResidentVault = state(client, "vault")
        assert vault.read(subject).identifier == IDENTIFIER
        response = client.delete(f"/v1/admin/residents/{subject}", headers=admin(client))
        assert response.status_code == 200
        with pytest.raises(ErasedError):
            vault.read(subject)
