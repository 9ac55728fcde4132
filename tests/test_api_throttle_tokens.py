"""A caller over its limits costs no token check, and fresh tokens do not push out used ones.

Replays a review through the real app: one peer sending 30 requests, each with a fresh junk
token, got 28 answers of 429 yet had every token verified in full on the shared four-thread
auth pool, since the caller was looked up (by verifying its token) before any bucket was.
Now the peer pays before an unseen token is verified, so verifications are bounded by its
burst; and the remembered tokens are kept least-recently-used first, so a legitimate caller's
token survives an institution minting thousands of fresh ones.

Verifications are counted on the app's own Authenticator, by a pass-through around its full
check (``_verify_token``); nothing of its behaviour is replaced.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import VERIFIED_TOKENS, Authenticator, sign_institution_token
from tests.api_helpers import Institution, api_settings, bearer, state

BURST = 2


class Counted:
    """The tokens the app's Authenticator verified in full, in order."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.tokens: list[str] = []
        real = authenticator._verify_token

        def counted(token: str) -> object:
            self.tokens.append(token)
            return real(token)

        authenticator._verify_token = counted  # type: ignore[method-assign,assignment]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = api_settings(tmp_path).model_copy(
        update={"caller_rate": 0.01, "caller_burst": BURST}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def junk_tokens(audience: str, count: int) -> list[str]:
    """Well-formed institution tokens under a key no institution holds: they never verify."""
    key = Ed25519PrivateKey.generate()
    return [
        sign_institution_token(key, "h1", 60 + number, audience=audience) for number in range(count)
    ]


@pytest.mark.parametrize("path", ["/v1/log/checkpoint", "/v1/consents"], ids=["public", "own"])
def test_a_peer_flooding_fresh_junk_tokens_costs_at_most_its_burst_in_checks(
    client: TestClient, path: str
) -> None:
    h1 = Institution(client, "h1")
    counted = Counted(state(client, "authenticator"))
    flooder = TestClient(client.app, client=("203.0.113.7", 40000), raise_server_exceptions=False)
    tokens = junk_tokens(state(client, "platform_keys").audience, 30)
    codes = [flooder.get(path, headers=bearer(token)).status_code for token in tokens]
    assert codes.count(429) == 30 - BURST, codes
    assert len(counted.tokens) <= BURST, codes
    if path == "/v1/consents":  # each admitted one says why, from the one check it had
        assert codes[:BURST] == [401] * BURST
        assert len(counted.tokens) == BURST
    # Another peer, and a caller with a valid token, are not held up by the flood.
    calm = TestClient(client.app, client=("198.51.100.9", 40000), raise_server_exceptions=False)
    assert calm.get("/v1/audience").status_code == 200
    assert calm.get("/v1/access-requests", headers=h1.headers()).status_code == 200


def test_a_valid_token_from_a_flooded_peer_is_refused_before_its_check(
    client: TestClient,
) -> None:
    h1 = Institution(client, "h1")
    counted = Counted(state(client, "authenticator"))
    flooder = TestClient(client.app, client=("203.0.113.8", 40000), raise_server_exceptions=False)
    for token in junk_tokens(h1.audience, BURST):
        flooder.get("/v1/log/checkpoint", headers=bearer(token))
    before = len(counted.tokens)
    assert flooder.get("/v1/access-requests", headers=h1.headers()).status_code == 429
    assert len(counted.tokens) == before


def test_a_used_token_survives_a_flood_of_fresh_valid_tokens(tmp_path: Path) -> None:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        h1, h2 = Institution(client, "h1"), Institution(client, "h2")
        authenticator: Authenticator = state(client, "authenticator")
        counted = Counted(authenticator)
        kept = sign_institution_token(h1.key, "h1", 300, audience=h1.audience)
        assert client.get("/v1/access-requests", headers=bearer(kept)).status_code == 200
        now = time.time()
        fresh = [
            sign_institution_token(h2.key, "h2", ttl, audience=h2.audience, now=now - back)
            for back in range(0, 200)
            for ttl in range(250, 300)
        ][: VERIFIED_TOKENS + 500]
        for number, token in enumerate(fresh):
            authenticator.authenticate(token)
            if number % 1000 == 999:  # the legitimate caller keeps using its token
                response = client.get("/v1/access-requests", headers=bearer(kept))
                assert response.status_code == 200
        assert len(set(fresh)) == len(fresh) == len(counted.tokens) - 1
        checks = len(counted.tokens)
        assert client.get("/v1/access-requests", headers=bearer(kept)).status_code == 200
        assert len(counted.tokens) == checks  # still remembered: not verified again
        assert authenticator.remembered(fresh[0]) is None  # the least recently used went


def test_an_expired_remembered_token_is_forgotten(client: TestClient) -> None:
    h1 = Institution(client, "h1")
    authenticator: Authenticator = state(client, "authenticator")
    leeway = authenticator.leeway
    token = sign_institution_token(
        h1.key, "h1", 300, audience=h1.audience, now=time.time() - 300 - leeway + 1
    )
    assert authenticator.authenticate(token).id == "h1"
    assert authenticator.remembered(token) is not None
    time.sleep(1.5)
    assert authenticator.remembered(token) is None
    assert hashlib.sha256(token.encode()).digest() not in authenticator._verified
