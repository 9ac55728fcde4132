"""Rows deleted from the projection by hand, in the real database (SQLite file or PostgreSQL
schema): a consent version missing (a revocation, say) is refused on the decision path and on
every page, logged and counted in ``GET /v1/health``, never read as the earlier consent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from auditor.findings import FindingCode
from auditor.replay import Replay
from auditor.replay_state import ReplayState
from consent_api.app import create_app
from consent_api.projection_check import verify_projection
from consent_api.settings import ApiSettings
from tests.api_helpers import admin, api_settings, register_resident, resident, state
from tests.test_api_access import CONSENT_RULES, World, assert_problem, make_world
from tests.test_api_access_breakglass import EMERGENCY, justify, regulator
from tests.test_api_projection_integrity import health, refused, sql


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> ApiSettings:
    return api_settings(tmp_path, db_url)


@pytest.fixture
def world(settings: ApiSettings) -> Iterator[World]:
    with TestClient(create_app(settings)) as client:
        yield make_world(client)


def revoke(world: World) -> int:
    response = world.client.delete(
        f"/v1/consents/{world.consent_id}", headers=resident(world.client, world.subject)
    )
    assert response.status_code == 200, response.text
    leaf_index: int = response.json()["leaf_index"]
    return leaf_index


def narrow(world: World, *categories: str) -> int:
    rules = {**CONSENT_RULES, "categories": list(categories or ["lab-results"])}
    response = world.client.put(
        f"/v1/consents/{world.consent_id}",
        json=rules,
        headers=resident(world.client, world.subject),
    )
    assert response.status_code == 200, response.text
    leaf_index: int = response.json()["leaf_index"]
    return leaf_index


def delete_consent_row(settings: ApiSettings, leaf_index: int) -> None:
    sql(settings, "DELETE FROM consent_record WHERE leaf_index = :i", i=leaf_index)


def head_of(settings: ApiSettings, subject: str) -> tuple[int, int]:
    [(leaf_index, versions)] = sql(
        settings, "SELECT leaf_index, versions FROM consent_head WHERE subject = :s", s=subject
    )
    return int(leaf_index), int(versions)


def refused_everywhere(world: World, leaf_index: int) -> None:
    """The decision, the resident's list and the consent's page all refuse: none shows the
    consent as it was before its missing version."""
    refused(world, world.request(), leaf_index, "consent_record")
    own = resident(world.client, world.subject)
    refused(world, world.client.get("/v1/consents", headers=own), leaf_index, "consent_record")
    page = world.client.get(f"/v1/consents/{world.consent_id}", headers=own)
    refused(world, page, leaf_index, "consent_record")


def test_a_deleted_revocation_does_not_bring_the_consent_back(
    world: World, settings: ApiSettings
) -> None:
    world.permit()
    revoked = revoke(world)
    assert world.request().json()["decision"] == "deny"
    before = health(world)["integrity"]["mismatches"]
    delete_consent_row(settings, revoked)
    refused_everywhere(world, revoked)
    assert health(world)["integrity"]["mismatches"] > before


def test_a_deleted_revocation_is_refused_by_a_fresh_process_from_the_head(
    world: World, settings: ApiSettings
) -> None:
    """Deleted while the service was down: the head row, not memory, says it is missing."""
    revoked = revoke(world)
    with TestClient(create_app(settings)) as client:
        delete_consent_row(settings, revoked)
        fresh = World(**{**world.__dict__, "client": client})
        fresh.client.app.dependency_overrides.update(  # type: ignore[attr-defined]
            world.client.app.dependency_overrides  # type: ignore[attr-defined]
        )
        refused_everywhere(fresh, revoked)
        assert "the head names leaf" in health(fresh)["integrity"]["last_mismatch"]["reason"]


def test_a_deleted_middle_version_is_refused(world: World, settings: ApiSettings) -> None:
    narrowed = narrow(world, "lab-results", "imaging")
    newest = narrow(world)
    delete_consent_row(settings, narrowed)
    refused(world, world.request(), newest, "consent_record")


def test_a_deleted_revocation_with_its_head_edited_to_match_is_refused_by_the_running_process(
    world: World, settings: ApiSettings
) -> None:
    revoked = revoke(world)
    world.request()  # the process reads (and remembers) the subject's head
    leaf_index, versions = head_of(settings, world.subject)
    assert leaf_index == revoked
    delete_consent_row(settings, revoked)
    sql(
        settings,
        "UPDATE consent_head SET leaf_index = :l, versions = :v WHERE subject = :s",
        l=world.consent_leaf,
        v=versions - 1,
        s=world.subject,
    )
    refused(world, world.request(), revoked, "consent_record")
    assert "this process saw" in health(world)["integrity"]["last_mismatch"]["reason"]


def test_a_deleted_head_is_refused(world: World, settings: ApiSettings) -> None:
    with TestClient(create_app(settings)) as client:  # a process that remembers nothing
        sql(settings, "DELETE FROM consent_head WHERE subject = :s", s=world.subject)
        fresh = World(**{**world.__dict__, "client": client})
        client.app.dependency_overrides.update(  # type: ignore[attr-defined]
            world.client.app.dependency_overrides  # type: ignore[attr-defined]
        )
        refused(fresh, fresh.request(), world.consent_leaf, "consent_record")


def test_heads_missing_from_an_older_projection_are_built_from_the_log_at_start(
    world: World, settings: ApiSettings
) -> None:
    """A database projected before heads existed (version 2): the start-up replay builds them
    from the log, after which a deleted revocation is caught as on a new database."""
    narrow(world)
    revoked = revoke(world)
    sql(settings, "DELETE FROM consent_head")
    sql(settings, "UPDATE log_meta SET value = '2' WHERE name = 'projection:version'")
    with TestClient(create_app(settings)) as client:
        assert head_of(settings, world.subject) == (revoked, 3)
        fresh = World(**{**world.__dict__, "client": client})
        client.app.dependency_overrides.update(  # type: ignore[attr-defined]
            world.client.app.dependency_overrides  # type: ignore[attr-defined]
        )
        assert fresh.request().json()["decision"] == "deny"
        assert health(fresh)["integrity"]["mismatches"] == 0
        delete_consent_row(settings, revoked)
        refused(fresh, fresh.request(), revoked, "consent_record")


def test_untouched_heads_let_every_read_through(world: World, settings: ApiSettings) -> None:
    narrow(world)
    world.permit(purpose="treatment")
    revoke(world)
    own = resident(world.client, world.subject)
    assert world.request().json()["decision"] == "deny"
    listed = world.client.get("/v1/consents", headers=own)
    assert listed.status_code == 200, listed.text
    assert [item["consent"]["status"] for item in listed.json()] == ["revoked"]
    assert head_of(settings, world.subject)[1] == 3
    assert health(world)["ok"] is True


def test_the_problem_is_a_storage_integrity_one(world: World, settings: ApiSettings) -> None:
    revoked = revoke(world)
    delete_consent_row(settings, revoked)
    problem = assert_problem(world.request(), 503, "storage-integrity")
    assert "missing" in problem["detail"]


def test_rows_and_head_both_edited_before_a_restart_get_past_the_service_not_the_auditor(
    settings: ApiSettings,
) -> None:
    """The limit, stated: a revocation row deleted and the head edited to match while the
    service is down (after a clean shutdown, so the start-up replay does not put the row back)
    leave a true projection of an earlier log, and a new process has nothing to hold it to. The
    permit it then logs relies on the superseded version, and the auditor's replay of the log
    (which has the revocation) flags it as uncovered."""
    with TestClient(create_app(settings)) as client:
        world = make_world(client)
        revoked = revoke(world)
        overrides = dict(client.app.dependency_overrides)  # type: ignore[attr-defined]
    _, versions = head_of(settings, world.subject)
    delete_consent_row(settings, revoked)
    sql(
        settings,
        "UPDATE consent_head SET leaf_index = :l, versions = :v WHERE subject = :s",
        l=world.consent_leaf,
        v=versions - 1,
        s=world.subject,
    )
    with TestClient(create_app(settings)) as client:
        client.app.dependency_overrides.update(overrides)  # type: ignore[attr-defined]
        fresh = World(**{**world.__dict__, "client": client})
        permit = fresh.permit()
        assert health(fresh)["ok"] is True  # the service cannot tell
    assert permit["relied_on"] == [
        {"consent_id": world.consent_id, "leaf_index": world.consent_leaf}
    ]
    replay = Replay(ReplayState(), None)
    for index, (data,) in enumerate(
        sql(settings, "SELECT leaf_data FROM leaf ORDER BY leaf_index")
    ):
        replay.apply(index, bytes(data))
    flagged = [(code, leaves) for code, _, leaves in replay.state.findings]
    assert flagged == [(FindingCode.UNCOVERED_PERMIT, (permit["leaf_index"],))]


# -- access rows ----------------------------------------------------------------------------------


def test_a_deleted_decision_is_not_silently_left_out_of_any_list(
    world: World, settings: ApiSettings
) -> None:
    """A decision deleted from the projection: the resident's history, the institution's own
    list and the regulator's lists by subject or institution refuse rather than show less (a
    shorter page looks complete to its reader: a refusal is the only honest answer)."""
    first = world.permit()
    second = world.request(purpose="research").json()
    sql(settings, "DELETE FROM access_record WHERE leaf_index = :i", i=first["leaf_index"])
    newest = second["leaf_index"]
    mine = world.client.get("/v1/me/access-history", headers=resident(world.client, world.subject))
    refused(world, mine, newest, "access_record")
    theirs = world.client.get("/v1/access-requests", headers=world.east.headers())
    refused(world, theirs, newest, "access_record")
    by_subject = world.client.get(
        "/v1/access-requests", params={"subject": world.subject}, headers=regulator(world)
    )
    refused(world, by_subject, newest, "access_record")
    by_party = world.client.get(
        "/v1/access-requests", params={"institution": "h-west"}, headers=regulator(world)
    )
    refused(world, by_party, newest, "access_record")
    audit = world.client.get(f"/fhir/AuditEvent?patient={world.subject}", headers=regulator(world))
    assert audit.status_code == 503, audit.text
    assert (
        "a row is missing: the subject head"
        in health(world)["integrity"]["last_mismatch"]["reason"]
    )


def test_untouched_access_heads_let_every_list_through(world: World, settings: ApiSettings) -> None:
    world.permit()
    world.request(purpose="research")
    mine = world.client.get("/v1/me/access-history", headers=resident(world.client, world.subject))
    assert mine.status_code == 200, mine.text
    theirs = world.client.get("/v1/access-requests", headers=world.east.headers())
    assert theirs.status_code == 200, theirs.text
    assert len(theirs.json()) == 2
    [(events,)] = sql(
        settings, "SELECT events FROM access_head WHERE scope = :s", s=f"subject:{world.subject}"
    )
    assert events >= 2
    assert health(world)["ok"] is True


def test_an_erased_childs_consents_removed_by_the_service_move_the_head_with_them(
    world: World,
) -> None:
    """Erasing a child removes their guardian consent rows (their lapse date would tell the
    birth date): the service's own removal moves the head too, so neither this process, a
    later read nor the scrub takes it for a deletion."""
    client = world.client
    parent = register_resident(client, "NAT-PARENT-H", birth_date=date(1980, 1, 1))
    child = register_resident(
        client, "NAT-CHILD-H", birth_date=date(2016, 7, 19), guardians=(parent,)
    )
    rules = {**CONSENT_RULES, "subject": child}
    granted = client.post("/v1/consents", json=rules, headers=resident(client, parent))
    assert granted.status_code == 201, granted.text
    assert world.request(subject=child).json()["decision"] == "permit"  # remembered
    assert client.delete(f"/v1/admin/residents/{child}", headers=admin(client)).status_code == 200
    assert world.request().json()["decision"] == "permit"
    records, ledger = state(client, "records"), state(client, "ledger")
    assert records.consent_history(child) == []
    assert verify_projection(records, ledger) == []
    assert health(world)["ok"] is True


def test_a_deleted_break_glass_case_is_not_left_out_of_the_review(
    world: World, settings: ApiSettings
) -> None:
    first = world.permit(**EMERGENCY)
    second = world.permit(**EMERGENCY)
    sql(
        settings,
        "DELETE FROM breakglass_case WHERE decision_leaf_index = :i",
        i=first["leaf_index"],
    )
    review = world.client.get("/v1/break-glass", headers=regulator(world))
    refused(world, review, second["leaf_index"], "breakglass_case")


def test_a_deleted_justification_row_is_not_left_out_of_the_residents_history(
    world: World, settings: ApiSettings
) -> None:
    case = world.permit(**EMERGENCY)
    justified = justify(world, case["request_id"])
    assert justified.status_code == 201, justified.text
    leaf_index = justified.json()["leaf_index"]
    sql(settings, "DELETE FROM access_record WHERE leaf_index = :i", i=leaf_index)
    mine = world.client.get("/v1/me/access-history", headers=resident(world.client, world.subject))
    refused(world, mine, leaf_index, "access_record")
