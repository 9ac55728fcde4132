"""A grant row is held to the logged decision that issued it before it is redeemed: on SQLite
and PostgreSQL, a grant row edited by hand (widened to more categories, moved to another
holder, its expiry extended) or inserted from nothing (a break-glass grant on a denial, a grant
naming a leaf the log does not have) is refused as a storage-integrity problem (503), logged,
counted in ``GET /v1/health``, and nothing is logged: no release, no refusal under the forged
row's names."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.grants import new_grant_token, token_hash
from consent_api.settings import ApiSettings
from tests.api_helpers import api_settings, resident
from tests.test_api_access import World, make_world
from tests.test_api_access_breakglass import EMERGENCY
from tests.test_api_projection_integrity import refused, sql


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> ApiSettings:
    return api_settings(tmp_path, db_url)


@pytest.fixture
def world(settings: ApiSettings) -> Iterator[World]:
    with TestClient(create_app(settings)) as client:
        yield make_world(client)


def edit(settings: ApiSettings, permit: dict[str, Any], assignment: str, **params: Any) -> None:
    sql(
        settings,
        f'UPDATE "grant" SET {assignment} WHERE request_id = :request_id',
        request_id=permit["request_id"],
        **params,
    )


def refused_unlogged(
    world: World, response: Any, leaf_index: int, caplog: pytest.LogCaptureFixture
) -> None:
    before = world.size()
    refused(world, response, leaf_index, "grant")
    assert world.size() == before  # nothing was released, nor refused under forged names
    assert f"grant row at leaf {leaf_index}" in caplog.text


def test_a_grant_widened_to_more_categories_is_refused(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    permit = world.permit()
    edit(settings, permit, 'categories = \'["imaging", "lab-results"]\'')
    before = world.size()
    with caplog.at_level(logging.ERROR):
        answer = world.redeem(permit["grant"]["token"], categories=["imaging", "lab-results"])
    assert world.size() == before
    refused_unlogged(world, answer, permit["leaf_index"], caplog)


def test_a_grant_moved_to_another_holder_is_refused(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    permit = world.permit()
    edit(settings, permit, "holder = 'h-north'")
    before = world.size()
    with caplog.at_level(logging.ERROR):
        answer = world.redeem(permit["grant"]["token"], by=world.north)
    assert world.size() == before
    refused_unlogged(world, answer, permit["leaf_index"], caplog)


def test_a_grant_whose_expiry_was_extended_is_refused(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    permit = world.permit()
    edit(settings, permit, "expires_at = expires_at + 86400")
    world.clock.advance(hours=1)  # past the logged expiry, before the edited one
    before = world.size()
    with caplog.at_level(logging.ERROR):
        answer = world.redeem(permit["grant"]["token"])
    assert world.size() == before
    refused_unlogged(world, answer, permit["leaf_index"], caplog)


def insert_grant(settings: ApiSettings, world: World, leaf_index: int, request_id: str) -> str:
    """A break-glass grant written by hand, by someone who keeps its token."""
    token = new_grant_token()
    sql(
        settings,
        'INSERT INTO "grant" (request_id, token_hash, requester, requester_type, holder, subject,'
        " categories, purpose, breakglass, decision_leaf_index, issued_at, expires_at)"
        " VALUES (:r, :h, 'h-east', 'hospital', 'h-west', :s, '[\"lab-results\"]', 'treatment',"
        " :b, :i, :now, :now + 300)",
        r=request_id,
        h=token_hash(token),
        s=world.subject,
        b=True,
        i=leaf_index,
        now=world.clock().timestamp(),
    )
    return token


def test_a_break_glass_grant_on_a_denial_is_refused(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    denied = world.request(purpose="research").json()
    assert denied["decision"] == "deny"
    token = insert_grant(settings, world, denied["leaf_index"], denied["request_id"])
    before = world.size()
    with caplog.at_level(logging.ERROR):
        answer = world.redeem(token)
    assert world.size() == before
    refused_unlogged(world, answer, denied["leaf_index"], caplog)


def test_a_grant_naming_a_leaf_beyond_the_log_is_refused(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    token = insert_grant(settings, world, 900_000, "forged-request")
    with caplog.at_level(logging.ERROR):
        refused_unlogged(world, world.redeem(token), 900_000, caplog)


def test_a_grant_copied_onto_another_permit_is_refused(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """A break-glass permit's leaf lent to a grant for other data: its categories differ."""
    case = world.permit(**EMERGENCY)
    token = insert_grant(settings, world, case["leaf_index"], case["request_id"] + "-copy")
    with caplog.at_level(logging.ERROR):
        refused_unlogged(world, world.redeem(token), case["leaf_index"], caplog)


def test_an_unreadable_grant_row_is_refused_not_a_500(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    permit = world.permit()
    edit(settings, permit, "categories = '[\"everything\"]'")
    with caplog.at_level(logging.ERROR):
        refused_unlogged(
            world, world.redeem(permit["grant"]["token"]), permit["leaf_index"], caplog
        )


def test_an_intact_grant_is_still_redeemed(world: World) -> None:
    permit = world.permit()
    assert world.redeem(permit["grant"]["token"]).status_code == 200
    case = world.permit(**EMERGENCY)
    redeemed = world.redeem(
        case["grant"]["token"], categories=EMERGENCY["categories"], purpose="emergency"
    )
    assert redeemed.status_code == 200, redeemed.text


@pytest.mark.parametrize("settled", ["released", "withdrawn"])
def test_a_settled_grant_set_back_to_unredeemed_is_not_released_again(
    world: World, settings: ApiSettings, caplog: pytest.LogCaptureFixture, settled: str
) -> None:
    permit = world.permit()
    token = permit["grant"]["token"]
    if settled == "released":
        assert world.redeem(token).status_code == 200
    else:  # the consent revoked meanwhile: the redemption is refused and the grant settled
        revoked = world.client.delete(
            f"/v1/consents/{world.consent_id}", headers=resident(world.client, world.subject)
        )
        assert revoked.status_code == 200, revoked.text
        assert world.redeem(token).status_code == 422
    edit(settings, permit, "redeemed_at = NULL, outcome = NULL, outcome_leaf_index = NULL")
    with caplog.at_level(logging.ERROR):
        refused_unlogged(world, world.redeem(token), permit["leaf_index"], caplog)
