"""The apps in a real browser: Debian's chromium driven by playwright-core (tests/e2e/*.mjs)
against a real ``consent-ledger serve``. Each script exits non-zero on the first thing that
does not hold and writes its screenshots to docs/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from hashing import CosignatureSigner, parse_policy
from hashing.errors import PolicyFormatError
from tests.e2e import world as world_module
from tests.e2e.world import World, require_browser, run_script, start_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_browser()
    world = start_world(Path(tmp_path_factory.mktemp("web-e2e")))
    try:
        yield world
    finally:
        world.client.close()
        world.server.stop()


def test_resident_grants_hospital_requests_resident_revokes_and_sees_both(world: World) -> None:
    run_script(world, "resident_story.mjs")


def test_a_reload_of_the_consent_list_keeps_the_form_the_resident_has_open(world: World) -> None:
    world.register_resident("ren", date(1988, 11, 2))
    grant = {
        "grantee": {"institution": "h-east"},
        "categories": ["lab-results", "imaging"],
        "purposes": ["treatment"],
    }
    response = world.client.post("/v1/consents", json=grant, headers=world.as_resident("ren"))
    assert response.status_code == 201, response.text
    run_script(world, "resident_rerender.mjs")


def test_a_tampered_proof_shows_as_not_verified(world: World) -> None:
    tao = world.residents["tao"]
    grant = {
        "grantee": {"institution": "h-east"},
        "categories": ["imaging"],
        "purposes": ["referral"],
    }
    response = world.client.post("/v1/consents", json=grant, headers=world.as_resident("tao"))
    assert response.status_code == 201, response.text
    east = world.institutions["h-east"]
    decided = []
    for purpose in ("referral", "research", "referral"):  # permits and a denial
        body = {
            "subject": tao["subject"],
            "holder": "h-west",
            "categories": ["imaging"],
            "purpose": purpose,
        }
        answer = world.client.post("/v1/access-requests", json=body, headers=east.headers())
        assert answer.status_code == 201, answer.text
        decided.append(answer.json())
    # A release, which the script serves relabelled as a refused redemption.
    redeem = {
        "grant_token": decided[0]["grant"]["token"],
        "requester": "h-east",
        "subject": tao["subject"],
        "categories": ["imaging"],
        "purpose": "referral",
    }
    released = world.client.post(
        "/v1/grants/redeem", json=redeem, headers=world.institutions["h-west"].headers()
    )
    assert released.is_success, released.text
    # Another resident's logged decision, which the script serves in tao's history.
    world.register_resident("ana", date(1993, 5, 6))
    body = {**body, "subject": world.residents["ana"]["subject"], "purpose": "research"}
    answer = world.client.post("/v1/access-requests", json=body, headers=east.headers())
    assert answer.status_code == 201, answer.text
    entries = world.wait_until_anchored("tao")
    assert any(entry["receipt"]["proof"] for entry in entries)
    assert any(entry["kind"] == "access.released" for entry in entries)
    world.wait_until_anchored("ana")
    run_script(world, "resident_tamper.mjs")


def test_a_pinned_witness_policy_that_does_not_parse_marks_every_entry_not_verified(
    world: World,
) -> None:
    world.register_resident("pia", date(1979, 3, 14))
    grant = {
        "grantee": {"institution": "h-east"},
        "categories": ["imaging"],
        "purposes": ["referral"],
    }
    response = world.client.post("/v1/consents", json=grant, headers=world.as_resident("pia"))
    assert response.status_code == 201, response.text
    body = {
        "subject": world.residents["pia"]["subject"],
        "holder": "h-west",
        "categories": ["imaging"],
        "purpose": "referral",
    }
    east = world.institutions["h-east"].headers()
    answer = world.client.post("/v1/access-requests", json=body, headers=east)
    assert answer.status_code == 201, answer.text
    world.wait_until_anchored("pia")
    keys = [CosignatureSigner.generate(f"w{n}.example").verifier().to_vkey() for n in (1, 2)]
    # Python refuses it too; before, it split on the no-break space and the browser threw.
    policy = f"witness A {keys[0]}\nwitness B {keys[1]}\ngroup both all A B\nquorum\u00a0both\n"
    with pytest.raises(PolicyFormatError):
        parse_policy(policy)
    run_script(world, "resident_policy_pin.mjs", "pia", policy)


def test_hospital_opens_break_glass_and_files_its_justification(world: World) -> None:
    north = world.institutions["c-north"]
    run_script(world, "hospital_breakglass.mjs", north.token(300))


def test_regulator_sees_an_unjustified_break_glass_as_overdue(world: World) -> None:
    body = {
        "subject": world.residents["jun"]["subject"],
        "holder": "h-west",
        "categories": ["emergency-stroke"],
        "purpose": "emergency",
        "emergency": True,
    }
    east = world.institutions["h-east"]
    answer = world.client.post("/v1/access-requests", json=body, headers=east.headers())
    assert answer.status_code == 201, answer.text
    assert answer.json()["breakglass"] is True
    denial = {**body, "categories": ["imaging"], "purpose": "research", "emergency": False}
    assert world.client.post("/v1/access-requests", json=denial, headers=east.headers()).is_success
    run_script(world, "regulator_console.mjs", answer.json()["request_id"])


def test_without_chromium_the_browser_tests_fail_in_ci_and_skip_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(world_module, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="make browser"):
        require_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="make browser"):
        require_browser()
