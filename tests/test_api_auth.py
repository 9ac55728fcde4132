"""Authentication and roles through the real app: every way a token fails, and who may do what."""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import (
    Authenticator,
    PlatformKeys,
    Principal,
    Role,
    current_principal,
    issue_token,
    require_roles,
    sign_institution_token,
)
from consent_api.cli import register_issue_token
from consent_api.institutions import jwk_of, thumbprint
from consent_api.settings import ApiSettings
from ledger.errors import KeyFileError
from ledger.events import decode_leaf
from ledger.log import Ledger
from ledger.settings import LedgerSettings

PROBLEM = "urn:consent-ledger:problem:"
RESIDENT = "ab" * 32  # a well-formed subject id

probe = APIRouter()


@probe.get("/test/whoami")
def whoami(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, Any]:
    return {
        "role": principal.role,
        "id": principal.id,
        "institution_type": principal.institution_type,
    }


@probe.get("/test/regulators-and-residents")
def regulators_and_residents(
    principal: Annotated[Principal, Depends(require_roles(Role.REGULATOR, Role.RESIDENT))],
) -> str:
    return principal.id


@pytest.fixture
def api_settings(tmp_path: Path) -> ApiSettings:
    return ApiSettings(
        ledger=LedgerSettings(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
            origin="test.example/log",
        ),
        anchor_in_background=False,
    )


@pytest.fixture
def client(api_settings: ApiSettings) -> Iterator[TestClient]:
    app = create_app(api_settings)
    app.include_router(probe)
    with TestClient(app) as test_client:
        yield test_client


def platform_of(client: TestClient) -> PlatformKeys:
    keys: PlatformKeys = client.app.state.platform_keys  # type: ignore[attr-defined]
    return keys


def ledger_of(client: TestClient) -> Ledger:
    ledger: Ledger = client.app.state.ledger  # type: ignore[attr-defined]
    return ledger


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin(client: TestClient) -> dict[str, str]:
    return bearer(issue_token(platform_of(client), Role.ADMIN, "ops"))


def register_institution(
    client: TestClient,
    institution_id: str,
    key: Ed25519PrivateKey,
    institution_type: str = "hospital",
    *,
    pem: bool = False,
) -> Any:
    public_key: Any = jwk_of(key.public_key())
    if pem:
        public_key = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        public_key = public_key.decode()
    return client.post(
        "/v1/admin/institutions",
        json={
            "id": institution_id,
            "name": f"{institution_id} General",
            "type": institution_type,
            "public_key": public_key,
        },
        headers=admin(client),
    )


def assert_problem(response: Any, status: int, *slugs: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].removeprefix(PROBLEM) in slugs
    return body


# -- every way a token fails ---------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    platform: PlatformKeys
    hospital: Ed25519PrivateKey  # registered as "hosp-1"
    stranger: Ed25519PrivateKey  # registered nowhere


def platform_claims(keys: Keys, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": keys.platform.issuer,
        "sub": "ops",
        "role": "admin",
        "aud": keys.platform.audience,
        "iat": now,
        "exp": now + 600,
        "jti": "t-1",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def institution_claims(audience: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "hosp-1", "sub": "hosp-1", "aud": audience, "iat": now}
    claims["exp"] = now + 120
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def signed_platform(keys: Keys, key: Ed25519PrivateKey | None = None, **changes: Any) -> str:
    return jwt.encode(
        platform_claims(keys, **changes),
        key or keys.platform.private_key,
        "EdDSA",
        headers={"kid": keys.platform.key_id},
    )


def signed_institution(
    keys: Keys, key: Ed25519PrivateKey, kid: str = "hosp-1", **changes: Any
) -> str:
    claims = institution_claims(keys.platform.audience, **changes)
    return jwt.encode(claims, key, "EdDSA", headers={"kid": kid})


def tampered(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def hs256_with_public_key(keys: Keys) -> str:
    # The algorithm-confusion attack: an HMAC "signed" with the public key as the secret.
    secret = keys.platform.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return jwt.encode(platform_claims(keys), secret, "HS256")


# name: (the Authorization header, a fragment of the 401 detail that says why)
HEADER_FAILURES: dict[str, tuple[str | None, str]] = {
    "missing": (None, "send a token"),
    "basic-scheme": ("Basic b3BzOnNlY3JldA==", "send a token"),
    "bearer-without-token": ("Bearer", "send a token"),
    "bearer-with-blank": ("Bearer   ", "send a token"),
}

# name: (the bearer token, a fragment of the 401 detail that says why)
TOKEN_FAILURES: dict[str, tuple[Callable[[Keys], str], str]] = {
    "garbage": (lambda k: "not-a-jwt", "well-formed"),
    "two-segments": (lambda k: "eyJhbGciOiJFZERTQSJ9.e30", "well-formed"),
    "bad-base64": (lambda k: "!!!.???.***", "well-formed"),
    "payload-not-an-object": (
        lambda k: jwt.api_jws.encode(b"[1,2]", k.platform.private_key, "EdDSA"),
        "well-formed",
    ),
    "too-long": (lambda k: "a" * 5000, "longer than"),
    "alg-none": (lambda k: jwt.encode(platform_claims(k), "", "none"), "EdDSA"),
    "alg-hs256-with-public-key": (lambda k: hs256_with_public_key(k), "EdDSA"),
    "signed-by-another-key": (lambda k: signed_platform(k, k.stranger), "signature"),
    "payload-tampered": (
        lambda k: tampered(
            issue_token(k.platform, Role.RESIDENT, RESIDENT), role="admin", sub="ops"
        ),
        "signature",
    ),
    "signature-stripped": (
        lambda k: issue_token(k.platform, Role.ADMIN, "ops").rsplit(".", 1)[0] + ".",
        "signature",
    ),
    "expired": (
        lambda k: issue_token(k.platform, Role.ADMIN, "ops", 600, now=time.time() - 700),
        "expired",
    ),
    "expired-beyond-skew": (
        lambda k: signed_platform(k, exp=int(time.time()) - 45, iat=int(time.time()) - 600),
        "expired",
    ),
    "not-yet-valid-nbf": (
        lambda k: signed_platform(k, nbf=int(time.time()) + 600),
        "not valid yet",
    ),
    "issued-in-the-future": (
        lambda k: issue_token(k.platform, Role.ADMIN, "ops", 600, now=time.time() + 300),
        "not valid yet",
    ),
    "wrong-audience": (
        lambda k: signed_platform(k, aud="another-service"),
        "another audience",
    ),
    "no-audience": (lambda k: signed_platform(k, aud=None), '"aud"'),
    "no-expiry": (lambda k: signed_platform(k, exp=None), '"exp"'),
    "expiry-not-a-number": (lambda k: signed_platform(k, exp="tomorrow"), "exp"),
    "no-jti": (lambda k: signed_platform(k, jti=None), '"jti"'),
    "no-role": (lambda k: signed_platform(k, role=None), '"role"'),
    "unknown-role": (lambda k: signed_platform(k, role="superuser"), "only for"),
    "platform-token-for-an-institution": (
        lambda k: signed_platform(k, role="institution", sub="hosp-1"),
        "only for",
    ),
    "resident-named-by-identifier": (
        lambda k: signed_platform(k, role="resident", sub="19800101-1234"),
        "pseudonymous",
    ),
    "platform-token-lives-too-long": (
        lambda k: signed_platform(k, exp=int(time.time()) + 7 * 86_400),
        "lives longer",
    ),
    "platform-key-id-unknown": (
        lambda k: jwt.encode(
            platform_claims(k), k.platform.private_key, "EdDSA", headers={"kid": "old"}
        ),
        "platform key",
    ),
    "no-issuer": (lambda k: signed_platform(k, iss=None), '"iss"'),
    "unknown-issuer": (
        lambda k: signed_institution(k, k.stranger, kid="mallory", iss="mallory", sub="mallory"),
        "not a registered institution",
    ),
    "institution-key-not-registered": (
        lambda k: signed_institution(k, k.stranger, kid="hosp-2", iss="hosp-2", sub="hosp-2"),
        "not a registered institution",
    ),
    "institution-token-signed-by-another-key": (
        lambda k: signed_institution(k, k.stranger),
        "signature",
    ),
    "institution-kid-differs-from-iss": (
        lambda k: signed_institution(k, k.hospital, kid="hosp-2"),
        '"kid"',
    ),
    "institution-without-kid": (
        lambda k: jwt.encode(institution_claims(k.platform.audience), k.hospital, "EdDSA"),
        '"kid"',
    ),
    "institution-sub-differs": (
        lambda k: signed_institution(k, k.hospital, sub="hosp-2"),
        '"sub"',
    ),
    "institution-claims-admin": (
        lambda k: signed_institution(k, k.hospital, role="admin"),
        "another role",
    ),
    "institution-expires-too-far-ahead": (
        lambda k: signed_institution(k, k.hospital, exp=int(time.time()) + 3600),
        "at most 300 s",
    ),
    "institution-expired": (
        lambda k: sign_institution_token(
            k.hospital, "hosp-1", 60, audience=k.platform.audience, now=time.time() - 600
        ),
        "expired",
    ),
    "institution-wrong-audience": (
        lambda k: sign_institution_token(k.hospital, "hosp-1", audience="another-service"),
        "another audience",
    ),
    "institution-no-expiry": (
        lambda k: signed_institution(k, k.hospital, exp=None),
        '"exp"',
    ),
    "institution-signs-as-platform-issuer": (
        lambda k: signed_platform(k, k.hospital),
        "signature",
    ),
}


@pytest.fixture
def keys(client: TestClient) -> Keys:
    hospital = Ed25519PrivateKey.generate()
    assert register_institution(client, "hosp-1", hospital).status_code == 201
    return Keys(platform_of(client), hospital, Ed25519PrivateKey.generate())


def test_valid_tokens_of_every_kind_pass(client: TestClient, keys: Keys) -> None:
    cases = [
        (issue_token(keys.platform, Role.ADMIN, "ops"), "admin", "ops", None),
        (issue_token(keys.platform, Role.REGULATOR, "reg-7"), "regulator", "reg-7", None),
        (issue_token(keys.platform, Role.RESIDENT, RESIDENT), "resident", RESIDENT, None),
        (
            sign_institution_token(keys.hospital, "hosp-1", audience=keys.platform.audience),
            "institution",
            "hosp-1",
            "hospital",
        ),
    ]
    for token, role, principal_id, institution_type in cases:
        response = client.get("/test/whoami", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "role": role,
            "id": principal_id,
            "institution_type": institution_type,
        }


def test_clock_skew_within_30_seconds_is_tolerated(client: TestClient, keys: Keys) -> None:
    now = int(time.time())
    for token in [
        signed_platform(keys, exp=now - 10, iat=now - 600),
        signed_platform(keys, iat=now + 10),
        signed_platform(keys, nbf=now + 10),
        sign_institution_token(
            keys.hospital, "hosp-1", 300, audience=keys.platform.audience, now=now + 20
        ),
    ]:
        assert client.get("/test/whoami", headers=bearer(token)).status_code == 200


def assert_refused(client: TestClient, headers: dict[str, str], reason: str) -> None:
    for url in ("/test/whoami", "/v1/admin/institutions"):
        response = client.get(url, headers=headers)
        body = assert_problem(response, 401, "unauthorized", "invalid-token")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert reason in body["detail"]


@pytest.mark.parametrize("case", list(HEADER_FAILURES))
def test_no_bearer_token_is_a_401_problem(client: TestClient, case: str) -> None:
    value, reason = HEADER_FAILURES[case]
    assert_refused(client, {} if value is None else {"Authorization": value}, reason)


@pytest.mark.parametrize("case", list(TOKEN_FAILURES))
def test_every_bad_token_is_a_401_problem(client: TestClient, keys: Keys, case: str) -> None:
    token, reason = TOKEN_FAILURES[case]
    assert_refused(client, bearer(token(keys)), reason)


def test_a_deactivated_institution_is_refused(client: TestClient, keys: Keys) -> None:
    token = sign_institution_token(keys.hospital, "hosp-1", audience=keys.platform.audience)
    assert client.get("/test/whoami", headers=bearer(token)).status_code == 200
    response = client.post("/v1/admin/institutions/hosp-1/deactivate", headers=admin(client))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active"] is False
    assert body["deactivated_at"] is not None
    kind, data = decode_leaf(
        ledger_of(client).leaves(body["leaf_index"], body["leaf_index"] + 1)[0].leaf_data
    )
    assert (kind, data["institution_id"]) == ("institution.revoked", "hosp-1")

    for fresh in (
        token,
        sign_institution_token(keys.hospital, "hosp-1", audience=keys.platform.audience),
    ):
        response = client.get("/test/whoami", headers=bearer(fresh))
        assert_problem(response, 401, "invalid-token")
        assert "deactivated" in response.json()["detail"]
    again = client.post("/v1/admin/institutions/hosp-1/deactivate", headers=admin(client))
    assert_problem(again, 409, "conflict")
    unknown = client.post("/v1/admin/institutions/nowhere/deactivate", headers=admin(client))
    assert_problem(unknown, 404, "not-found")


# -- roles -----------------------------------------------------------------------------------

ADMIN_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/admin/institutions", None),
    (
        "POST",
        "/v1/admin/institutions",
        {"id": "x", "name": "x", "type": "clinic", "public_key": "-"},
    ),
    ("POST", "/v1/admin/institutions/hosp-1/deactivate", None),
    ("POST", "/v1/admin/residents", {"identifier": "i", "name": "n", "birth_date": "2000-01-01"}),
    ("POST", "/v1/admin/tokens", {"role": "regulator", "subject": "reg-1"}),
    ("DELETE", f"/v1/admin/residents/{RESIDENT}", None),
]


def test_only_admins_reach_the_admin_endpoints(client: TestClient, keys: Keys) -> None:
    others = {
        "resident": issue_token(keys.platform, Role.RESIDENT, RESIDENT),
        "regulator": issue_token(keys.platform, Role.REGULATOR, "reg-1"),
        "institution": sign_institution_token(
            keys.hospital, "hosp-1", audience=keys.platform.audience
        ),
    }
    before = ledger_of(client).tree_size()
    for method, url, body in ADMIN_ENDPOINTS:
        for role, token in others.items():
            response = client.request(method, url, json=body, headers=bearer(token))
            problem = assert_problem(response, 403, "forbidden")
            assert role in problem["detail"]
        assert_problem(client.request(method, url, json=body), 401, "unauthorized")
    assert ledger_of(client).tree_size() == before  # nothing was logged by a refused call
    assert client.get("/v1/admin/institutions", headers=admin(client)).status_code == 200


def test_require_roles_admits_any_of_its_roles(client: TestClient, keys: Keys) -> None:
    url = "/test/regulators-and-residents"
    regulator = issue_token(keys.platform, Role.REGULATOR, "reg-1")
    assert client.get(url, headers=bearer(regulator)).json() == "reg-1"
    resident = issue_token(keys.platform, Role.RESIDENT, RESIDENT)
    assert client.get(url, headers=bearer(resident)).json() == RESIDENT
    institution = sign_institution_token(keys.hospital, "hosp-1", audience=keys.platform.audience)
    assert_problem(client.get(url, headers=bearer(institution)), 403, "forbidden")
    with pytest.raises(ValueError, match="at least one role"):
        require_roles()


def test_public_log_stays_public(client: TestClient) -> None:
    assert client.get("/v1/log/key").status_code == 200
    assert client.get("/v1/log/leaves").status_code == 200


# -- institutions ----------------------------------------------------------------------------


def test_register_institution_logs_id_type_and_thumbprint_only(client: TestClient) -> None:
    key = Ed25519PrivateKey.generate()
    response = register_institution(client, "clinic.north", key, "clinic", pem=True)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["public_key"] == jwk_of(key.public_key())
    assert body["key_thumbprint"] == thumbprint(key.public_key())
    assert (body["type"], body["active"]) == ("clinic", True)
    leaf = ledger_of(client).leaves(body["leaf_index"], body["leaf_index"] + 1)[0]
    assert decode_leaf(leaf.leaf_data) == (
        "institution.registered",
        {
            "institution_id": "clinic.north",
            "institution_type": "clinic",
            "key_thumbprint": thumbprint(key.public_key()),
        },
    )
    listed = client.get("/v1/admin/institutions", headers=admin(client)).json()
    assert [(i["id"], i["name"], i["active"]) for i in listed] == [
        ("clinic.north", "clinic.north General", True)
    ]
    token = sign_institution_token(key, "clinic.north", audience=platform_of(client).audience)
    assert client.get("/test/whoami", headers=bearer(token)).json()["institution_type"] == "clinic"


def test_registration_refuses_bad_keys_and_duplicates(client: TestClient) -> None:
    key = Ed25519PrivateKey.generate()
    jwk = jwk_of(key.public_key())
    private_jwk = {**jwk, "d": "A" * 43}
    bad = [
        {**jwk, "crv": "X25519"},
        {**jwk, "x": "short"},
        private_jwk,
        "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n",
        "hello",
    ]
    for public_key in bad:
        response = client.post(
            "/v1/admin/institutions",
            json={"id": "hosp-9", "name": "Nine", "type": "hospital", "public_key": public_key},
            headers=admin(client),
        )
        assert_problem(response, 422, "validation", "unprocessable")
        assert "A" * 43 not in response.text  # a private key sent by mistake is not echoed
    for bad_id in ("has/slash", "", "x" * 65, "spa ce"):
        response = client.post(
            "/v1/admin/institutions",
            json={"id": bad_id, "name": "N", "type": "hospital", "public_key": jwk},
            headers=admin(client),
        )
        assert_problem(response, 422, "validation")
    assert register_institution(client, "hosp-9", key).status_code == 201
    assert_problem(
        register_institution(client, "hosp-9", Ed25519PrivateKey.generate()), 409, "conflict"
    )
    assert_problem(register_institution(client, "hosp-10", key), 409, "conflict")
    assert ledger_of(client).tree_size() == 1


# -- platform tokens -------------------------------------------------------------------------


def test_admin_issues_tokens_to_registered_residents_and_regulators(client: TestClient) -> None:
    resident = client.post(
        "/v1/admin/residents",
        json={"identifier": "NAT-1", "name": "Ada Example", "birth_date": "1990-05-01"},
        headers=admin(client),
    ).json()["subject"]
    for role, subject in (("resident", resident), ("regulator", "reg-1")):
        response = client.post(
            "/v1/admin/tokens",
            json={"role": role, "subject": subject, "ttl": 120},
            headers=admin(client),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert 100 <= body["expires_in"] <= 120
        whoami = client.get("/test/whoami", headers=bearer(body["access_token"])).json()
        assert (whoami["role"], whoami["id"]) == (role, subject)
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert set(claims) == {"iss", "sub", "role", "aud", "iat", "exp", "jti"}
        assert claims["exp"] - claims["iat"] == 120

    refusals = [
        ({"role": "resident", "subject": "cd" * 32}, 404, "unknown-subject"),
        ({"role": "resident", "subject": "NAT-1"}, 422, "unprocessable"),
        ({"role": "admin", "subject": "ops2"}, 422, "validation"),
        ({"role": "institution", "subject": "hosp-1"}, 422, "validation"),
        ({"role": "regulator", "subject": "reg-1", "ttl": 10_000}, 422, "unprocessable"),
        ({"role": "regulator", "subject": "reg 1"}, 422, "unprocessable"),
    ]
    for body, status, slug in refusals:
        assert_problem(
            client.post("/v1/admin/tokens", json=body, headers=admin(client)), status, slug
        )


def test_issue_token_checks_its_arguments(api_settings: ApiSettings) -> None:
    with pytest.raises(ValueError, match="pseudonymous"):
        issue_token(api_settings, Role.RESIDENT, "19800101-1234")
    with pytest.raises(ValueError, match="only for"):
        issue_token(api_settings, "institution", "hosp-1")
    with pytest.raises(ValueError, match="ttl"):
        issue_token(api_settings, Role.ADMIN, "ops", api_settings.token_max_ttl + 1)
    with pytest.raises(ValueError, match="ttl"):
        sign_institution_token(Ed25519PrivateKey.generate(), "hosp-1", 301, audience="a")
    token = issue_token(api_settings, Role.ADMIN, "ops")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900  # the default lifetime: 15 minutes
    with pytest.raises(ValueError, match="token_ttl"):
        ApiSettings(token_ttl=7200, token_max_ttl=3600)


# -- key file and command line ---------------------------------------------------------------


def test_platform_key_file_is_private_and_stable(api_settings: ApiSettings) -> None:
    first = PlatformKeys.of_deployment(api_settings)
    path = api_settings.ledger.data_dir / "platform-token.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PlatformKeys.of_deployment(api_settings).key_id == first.key_id
    assert "PRIVATE" not in repr(first)
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        PlatformKeys.of_deployment(api_settings)
    app = create_app(api_settings)
    with pytest.raises(KeyFileError), TestClient(app):
        pass


def test_cli_issues_a_token_the_service_accepts(
    client: TestClient, api_settings: ApiSettings
) -> None:
    parser = argparse.ArgumentParser(prog="consent-ledger")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path)
    common.add_argument("--database-url")
    common.add_argument("--origin")
    register_issue_token(parser.add_subparsers(dest="command", required=True), common)
    args = parser.parse_args(
        [
            "issue-token",
            "--data-dir",
            str(api_settings.ledger.data_dir),
            "--role",
            "regulator",
            "--subject",
            "reg-42",
            "--ttl",
            "60",
        ]
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert args.handler(args) == 0
    token = out.getvalue().strip()
    assert client.get("/test/whoami", headers=bearer(token)).json()["id"] == "reg-42"
    with pytest.raises(SystemExit):
        parser.parse_args(["issue-token", "--role", "institution", "--subject", "x"])


def test_openapi_documents_bearer_auth(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operation = spec["paths"]["/v1/admin/institutions"]["post"]
    assert operation["security"] == [{"bearer": []}]
    assert {"401", "403", "409"} <= set(operation["responses"])
    assert "security" not in spec["paths"]["/v1/log/leaves"]["get"]


def test_authenticator_is_overridable_in_tests(api_settings: ApiSettings) -> None:
    app = create_app(api_settings)
    app.include_router(probe)
    app.dependency_overrides[current_principal] = lambda: Principal(Role.REGULATOR, "reg-x")
    with TestClient(app) as test_client:
        assert test_client.get("/test/whoami").json()["id"] == "reg-x"
        authenticator: Authenticator = app.state.authenticator
        assert authenticator.leeway == 30
