"""``consent-ledger issue-token`` for a resident, named the way the platform knows them: by the
identifier they were registered with, or by their subject id or a unique start of it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.identity import PSEUDONYM_KEY_FILE, PseudonymKey
from consent_api.settings import ApiSettings
from ledger.settings import LedgerSettings
from tests.api_helpers import bearer, register_resident
from tests.cli_process import Ran, consent_ledger


@dataclass
class Platform:
    data: Path
    client: TestClient

    def issue(self, *args: str) -> Ran:
        return consent_ledger("issue-token", "--role", "resident", *args, "--data-dir", self.data)

    def whoami(self, token: str) -> int:
        return self.client.get("/v1/me/access-history", headers=bearer(token)).status_code


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("tokens") / "data"
    assert consent_ledger("init", "--data-dir", data).code == 0
    settings = ApiSettings(
        ledger=LedgerSettings(data_dir=data),
        anchor_in_background=False,
        public_url="http://testserver",
    )
    with TestClient(create_app(settings)) as client:
        yield Platform(data, client)


def test_a_resident_by_the_identifier_they_were_registered_with(platform: Platform) -> None:
    subject = register_resident(platform.client, "NID-1001", birth_date=date(1980, 1, 2))
    ran = platform.issue("--identifier", "  NID-1001 ")  # as typed, spaces and all
    assert ran.code == 0, ran.err
    assert platform.whoami(ran.out.strip()) == 200
    assert subject not in ran.out  # the token names them by pseudonym, not on the screen


def test_an_identifier_nobody_was_registered_with(platform: Platform) -> None:
    register_resident(platform.client, "NID-1002", birth_date=date(1980, 1, 2))
    ran = platform.issue("--identifier", "NID-9999")
    assert ran.code == 2
    assert "no resident is registered with the identifier given" in ran.err, ran.err
    assert "POST /v1/admin/residents" in ran.err
    assert "NID-9999" not in ran.err  # an identifier is personal data: not echoed


def test_a_resident_by_the_start_of_their_subject_id(platform: Platform) -> None:
    subject = register_resident(platform.client, "NID-1003", birth_date=date(1975, 5, 5))
    ran = platform.issue("--subject", subject[:10])
    assert ran.code == 0, ran.err
    assert f"resident {subject}" in ran.err
    assert platform.whoami(ran.out.strip()) == 200


def test_a_start_that_no_subject_id_has(platform: Platform) -> None:
    ran = platform.issue("--subject", "09b6ed150e")
    assert ran.code == 2
    assert "no registered resident's subject id starts with 09b6ed150e" in ran.err, ran.err


def test_a_start_that_several_subject_ids_have(platform: Platform) -> None:
    pseudonyms = PseudonymKey((platform.data / PSEUDONYM_KEY_FILE).read_bytes())
    seen: dict[str, str] = {}
    for n in itertools.count():
        identifier = f"TWIN-{n}"
        start = pseudonyms.subject_of(identifier)[:6]
        if start in seen:
            break
        seen[start] = identifier
    for twin in (seen[start], identifier):
        register_resident(platform.client, twin, birth_date=date(1990, 3, 3))
    ran = platform.issue("--subject", start)
    assert ran.code == 2
    assert f"{start} is the start of several residents' subject ids" in ran.err, ran.err
    assert "give more digits" in ran.err


def test_a_name_where_a_subject_id_belongs(platform: Platform) -> None:
    ran = platform.issue("--subject", "Ada Amsel")
    assert ran.code == 2
    assert "is not a resident's subject id" in ran.err, ran.err
    assert "--identifier" in ran.err


def test_a_full_subject_id_nobody_has(platform: Platform) -> None:
    ran = platform.issue("--subject", "ab" * 32)
    assert ran.code == 2
    assert "no resident is registered with subject" in ran.err, ran.err


def test_staff_are_named_by_account_id(platform: Platform) -> None:
    ran = consent_ledger(
        "issue-token", "--role", "regulator", "--identifier", "x", "--data-dir", platform.data
    )
    assert ran.code == 2
    assert "--identifier names a resident" in ran.err
    ran = consent_ledger(
        "issue-token", "--role", "regulator", "--subject", "reg-1", "--data-dir", platform.data
    )
    assert ran.code == 0, ran.err
