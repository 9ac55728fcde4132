"""The projected break-glass cases, on SQLite and PostgreSQL: listed and paged from their own
table, still overdue after a restart, rebuilt from the log for a database projected before the
table existed, and unchanged by catching up again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consent_api.access import get_clock
from consent_api.app import create_app
from consent_api.records import PROJECTION_VERSION_MARK, Records
from consent_api.settings import ApiSettings
from ledger.engine import make_engine
from ledger.log import Ledger
from tests.api_helpers import api_settings
from tests.test_api_access import World, make_world
from tests.test_api_access_breakglass import EMERGENCY, justify, overdue, regulator
from tests.test_api_paging import walk

CASE_COLUMNS = (
    "decision_leaf_index, request_id, subject, requester, holder, categories, at, justify_by,"
    " justified_at, justified_late, justification_leaf_index"
)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> ApiSettings:
    return api_settings(tmp_path, db_url)


@pytest.fixture
def world(settings: ApiSettings) -> Iterator[World]:
    with TestClient(create_app(settings)) as client:
        yield make_world(client)


@contextmanager
def first_run(settings: ApiSettings) -> Iterator[World]:
    """The app on ``settings`` with the access world set up, shut down on leaving."""
    with TestClient(create_app(settings)) as client:
        yield make_world(client)


@contextmanager
def second_run(world: World, settings: ApiSettings) -> Iterator[World]:
    """A new app on the same data (the first one shut down), its clock where the first was."""
    with TestClient(create_app(settings)) as client:
        client.app.dependency_overrides[get_clock] = lambda: world.clock  # type: ignore[attr-defined]
        yield replace(world, client=client)


def database_url(settings: ApiSettings) -> str:
    url = settings.ledger.database_url
    assert url is not None
    return url


def cases_table(settings: ApiSettings) -> list[tuple[Any, ...]]:
    engine = make_engine(database_url(settings))
    try:
        with engine.connect() as conn:
            query = f"SELECT {CASE_COLUMNS} FROM breakglass_case ORDER BY decision_leaf_index"
            return [tuple(row) for row in conn.execute(text(query))]
    finally:
        engine.dispose()


def three_cases(world: World) -> dict[str, str]:
    """One justified in time, one justified late, one never; by what they become."""
    cases = {name: world.permit(**EMERGENCY)["request_id"] for name in ("in-time", "late", "never")}
    assert justify(world, cases["in-time"]).status_code == 201
    world.clock.advance(hours=24, minutes=1)
    assert justify(world, cases["late"]).json()["late"] is True
    return cases


def test_overdue_cases_are_listed_after_a_restart(settings: ApiSettings) -> None:
    with first_run(settings) as world:
        cases = three_cases(world)
        before = overdue(world)
    assert {case["request_id"]: case["status"] for case in before} == {
        cases["late"]: "justified-late",
        cases["never"]: "overdue",
    }
    with second_run(world, settings) as again:
        assert overdue(again) == before
        everything = again.client.get("/v1/break-glass", headers=regulator(again)).json()
        assert [case["status"] for case in everything] == ["justified", "justified-late", "overdue"]


def test_cases_page_by_decision_leaf_with_the_overdue_filter(world: World) -> None:
    cases = three_cases(world)
    for _ in range(3):
        world.permit(**EMERGENCY)  # pending: not yet due
    late, sizes = walk(world, "/v1/break-glass?overdue=true&limit=1", regulator(world))
    assert [case["request_id"] for case in late] == [cases["late"], cases["never"]]
    assert sizes == [1, 1]
    every, sizes = walk(world, "/v1/break-glass?limit=4", regulator(world))
    assert [case["status"] for case in every] == [
        "justified",
        "justified-late",
        "overdue",
        "pending",
        "pending",
        "pending",
    ]
    assert sizes == [4, 2]


def test_a_database_projected_before_the_cases_table_is_rebuilt_from_the_log(
    settings: ApiSettings,
) -> None:
    with first_run(settings) as world:
        three_cases(world)
    projected = cases_table(settings)
    assert len(projected) == 3
    engine = make_engine(database_url(settings))
    with engine.begin() as conn:  # what a data dir of the previous version holds
        conn.execute(text("DROP TABLE breakglass_case"))
        for name in ("kind_leaf", "subject_leaf", "subject_kind_leaf", "requester_kind_leaf"):
            conn.execute(text(f"DROP INDEX ix_access_record_{name}"))
        conn.execute(
            text("DELETE FROM log_meta WHERE name = :name"), {"name": PROJECTION_VERSION_MARK}
        )
    engine.dispose()
    with second_run(world, settings) as again:
        listed = again.client.get("/v1/break-glass", headers=regulator(again)).json()
    assert cases_table(settings) == projected
    assert [case["status"] for case in listed] == ["justified", "justified-late", "overdue"]


def test_catching_up_again_changes_nothing(settings: ApiSettings) -> None:
    with first_run(settings) as world:
        three_cases(world)
    projected = cases_table(settings)
    ledger = Ledger.open(settings.ledger)
    try:
        records = Records.open(ledger.store)
        ledger.store.set_meta(PROJECTION_VERSION_MARK, "replay everything")
        assert records.catch_up(ledger) == ledger.tree_size()
        assert records.catch_up(ledger) == 0
    finally:
        ledger.close()
    assert cases_table(settings) == projected
