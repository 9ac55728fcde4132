"""Attacks on tokens, replayed through the real app (issue 12, items 1 and 6).

Forged institution tokens under a small-order key, a key registered before keys were checked,
malleated signatures, one deployment's token used on another, long-lived or stale institution
tokens, platform tokens without ``kid``, ids with a trailing newline, an erased resident's token.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import PlatformKeys, Role, issue_token, sign_institution_token
from consent_api.institutions import _INSTITUTION, CACHE_SECONDS, jwk_of, thumbprint
from consent_api.settings import AUDIENCE_PREFIX
from hashing.ed25519 import L
from tests.api_helpers import (
    Institution,
    admin,
    api_settings,
    bearer,
    leaves,
    register_resident,
    resident,
    state,
)
from tests.test_hashing_ed25519 import SMALL_ORDER_CANONICAL, SMALL_ORDER_NON_CANONICAL

PROBLEM = "urn:consent-ledger:problem:"
WEAK_KEYS = {**SMALL_ORDER_CANONICAL, **SMALL_ORDER_NON_CANONICAL}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(tmp_path))) as test_client:
        yield test_client


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(institution_id: str, audience: str, signature: bytes) -> str:
    """A token with a signature nobody computed: what a small-order key lets through."""
    now = int(time.time())
    header = {"alg": "EdDSA", "typ": "JWT", "kid": institution_id}
    claims = {"iss": institution_id, "sub": institution_id, "aud": audience}
    claims |= {"iat": now, "exp": now + 60}
    segments = [_b64url(json.dumps(part).encode()) for part in (header, claims)]
    return ".".join([*segments, _b64url(signature)])


def _whoami(client: TestClient, token: str) -> Any:
    return client.get("/v1/access-requests", headers=bearer(token))


def _register(client: TestClient, institution_id: str, public_key: Any) -> Any:
    body = {"id": institution_id, "name": "Mallory", "type": "hospital", "public_key": public_key}
    return client.post("/v1/admin/institutions", json=body, headers=admin(client))


# -- item 1: small-order and non-canonical keys ----------------------------------------------


@pytest.mark.parametrize("raw", WEAK_KEYS.values(), ids=list(WEAK_KEYS))
def test_a_small_order_key_is_refused_at_registration(client: TestClient, raw: bytes) -> None:
    before = len(leaves(client))
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    response = _register(client, "mallory", jwk)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == PROBLEM + "unprocessable"
    # Had it been registered, this token, signed by nobody, would have verified.
    forged = _forged("mallory", state(client, "platform_keys").audience, _b64url_identity_sig())
    assert _whoami(client, forged).status_code == 401
    assert len(leaves(client)) == before  # nothing logged


def _b64url_identity_sig() -> bytes:
    return (1).to_bytes(32, "little") + bytes(32)


def test_a_small_order_pem_key_is_refused(client: TestClient) -> None:
    identity = Ed25519PublicKey.from_public_bytes((1).to_bytes(32, "little"))
    pem = identity.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    response = _register(client, "mallory", pem)
    assert response.status_code == 422, response.text
    assert "small order" in response.json()["detail"]


def test_a_jwk_x_in_non_canonical_base64url_is_refused(client: TestClient) -> None:
    x = jwk_of(Ed25519PrivateKey.generate().public_key())["x"]
    # The last character carries two unused bits: set them, for the same 32 bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = x[:-1] + alphabet[alphabet.index(x[-1]) | 1]
    if twin == x:
        twin = x[:-1] + alphabet[alphabet.index(x[-1]) | 2]
    response = _register(client, "twin", {"kty": "OKP", "crv": "Ed25519", "x": twin})
    assert response.status_code == 422, response.text


def test_a_weak_key_registered_before_is_reported_and_its_tokens_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = api_settings(tmp_path)
    identity = (1).to_bytes(32, "little")
    # As an older version, which checked no key, left it in the table.
    with TestClient(create_app(settings)) as client, state(client, "ledger").store.write() as conn:
        conn.execute(
            _INSTITUTION.insert().values(
                id="mallory",
                name="Mallory",
                type="hospital",
                public_key=identity,
                key_thumbprint=thumbprint(Ed25519PublicKey.from_public_bytes(identity)),
                active=True,
                registered_at=time.time(),
            )
        )
    with caplog.at_level(logging.ERROR), TestClient(create_app(settings)) as client:
        assert "mallory" in state(client, "refused_institutions")
        assert any("mallory" in record.getMessage() for record in caplog.records)
        forged = _forged("mallory", state(client, "platform_keys").audience, _b64url_identity_sig())
        response = _whoami(client, forged)
        assert response.status_code == 401, response.text
        assert "key is refused" in response.json()["detail"]
        listed = client.get("/v1/admin/institutions", headers=admin(client)).json()
        assert [(i["id"], i["key_refused"] is not None) for i in listed] == [("mallory", True)]


def test_malleated_and_small_order_r_signatures_are_refused(client: TestClient) -> None:
    east = Institution(client, "h-east")
    token = sign_institution_token(east.key, "h-east", audience=east.audience)
    head, payload, encoded = token.split(".")
    signature = base64.urlsafe_b64decode(encoded + "==")
    s_plus_l = signature[:32] + (int.from_bytes(signature[32:], "little") + L).to_bytes(
        32, "little"
    )
    small_r = (1).to_bytes(32, "little") + signature[32:]
    for bad, reason in ((s_plus_l, "S"), (small_r, "R")):
        response = _whoami(client, f"{head}.{payload}.{_b64url(bad)}")
        assert response.status_code == 401, response.text
        assert "signature is refused" in response.json()["detail"], reason
    # The same 64 bytes in another text: the last character's 4 unused bits set.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = encoded[:-1] + alphabet[alphabet.index(encoded[-1]) | 1]
    assert base64.urlsafe_b64decode(twin + "==") == signature
    for other_text in (twin, encoded + "=="):  # PyJWT refuses the first, we the padded one
        response = _whoami(client, f"{head}.{payload}.{other_text}")
        assert response.status_code == 401, response.text
    assert _whoami(client, token).status_code == 200


# -- item 6: audience, lifetimes, kid, whole-string ids, erasure ------------------------------


def test_a_token_for_one_deployment_is_refused_by_another(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    audiences = []
    with (
        TestClient(create_app(api_settings(tmp_path / "a"))) as one,
        TestClient(create_app(api_settings(tmp_path / "b"))) as other,
    ):
        for client in (one, other):
            assert _register(client, "h-both", jwk_of(key.public_key())).status_code == 201
            audience = client.get("/v1/audience").json()["audience"]
            assert audience == state(client, "platform_keys").audience
            assert audience.startswith(AUDIENCE_PREFIX)
            assert f'content="{audience}"' in client.get("/console/hospital").text
            audiences.append(audience)
        assert audiences[0] != audiences[1]
        token = sign_institution_token(key, "h-both", audience=audiences[0])
        assert _whoami(one, token).status_code == 200
        refused = _whoami(other, token)
        assert refused.status_code == 401
        assert "another audience" in refused.json()["detail"]


def test_a_configured_audience_still_wins(tmp_path: Path) -> None:
    settings = api_settings(tmp_path).model_copy(update={"token_audience": "hospitals.example"})
    assert PlatformKeys.of_deployment(settings).audience == "hospitals.example"


def _institution_token(east: Institution, issued_at: int, expires_at: int) -> str:
    claims = {"iss": east.id, "sub": east.id, "aud": east.audience}
    claims |= {"iat": issued_at, "exp": expires_at}
    return jwt.encode(claims, east.key, "EdDSA", headers={"kid": east.id})


def test_institution_tokens_live_at_most_300_seconds_from_iat(client: TestClient) -> None:
    east = Institution(client, "h-east")
    now = int(time.time())
    cases = {
        "exp - iat = 450": (_institution_token(east, now - 200, now + 250), "at most 300 s"),
        "iat long ago": (_institution_token(east, now - 86_400, now + 60), "at most 300 s"),
    }
    for name, (token, reason) in cases.items():
        response = _whoami(client, token)
        assert response.status_code == 401, name
        assert reason in response.json()["detail"], name
    assert _whoami(client, _institution_token(east, now - 10, now + 290)).status_code == 200


def test_a_platform_token_without_kid_is_refused(client: TestClient) -> None:
    platform: PlatformKeys = state(client, "platform_keys")
    now = int(time.time())
    claims = {"iss": platform.issuer, "sub": "ops", "role": "admin", "aud": platform.audience}
    claims |= {"iat": now, "exp": now + 60, "jti": "j"}
    token = jwt.encode(claims, platform.private_key, "EdDSA")
    response = client.get("/v1/admin/institutions", headers=bearer(token))
    assert response.status_code == 401
    assert '"kid"' in response.json()["detail"]


@pytest.mark.parametrize("subject", ["reg-1\n", "ops\n", "a\u200bb", "ops\x00"])
def test_staff_ids_must_match_the_whole_string(client: TestClient, subject: str) -> None:
    body = {"role": "regulator", "subject": subject}
    response = client.post("/v1/admin/tokens", json=body, headers=admin(client))
    assert response.status_code == 422, response.text
    platform: PlatformKeys = state(client, "platform_keys")
    with pytest.raises(ValueError, match="account id"):
        platform.issue(Role.ADMIN, subject)


def test_an_erased_residents_token_stops_working(client: TestClient) -> None:
    from datetime import date

    subject = register_resident(client, "NAT-ERASE", birth_date=date(1980, 1, 1))
    headers = resident(client, subject)
    assert client.get("/v1/consents", headers=headers).status_code == 200
    assert client.get("/v1/consents", headers=headers).status_code == 200  # remembered
    erased = client.delete(f"/v1/admin/residents/{subject}", headers=admin(client))
    assert erased.status_code == 200, erased.text
    response = client.get("/v1/consents", headers=headers)
    assert response.status_code == 401, response.text
    assert "erased" in response.json()["detail"]
    fresh = bearer(issue_token(state(client, "platform_keys"), Role.RESIDENT, subject))
    assert client.get("/v1/consents", headers=fresh).status_code == 401


def test_another_workers_erasure_counts_within_the_cache_time(client: TestClient) -> None:
    from datetime import date

    subject = register_resident(client, "NAT-ERASE-2", birth_date=date(1980, 1, 1))
    headers = resident(client, subject)
    assert client.get("/v1/consents", headers=headers).status_code == 200
    state(client, "vault").erase(subject)  # as another worker would, on the same database
    time.sleep(CACHE_SECONDS + 0.1)
    assert client.get("/v1/consents", headers=headers).status_code == 401
