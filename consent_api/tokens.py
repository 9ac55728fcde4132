"""Issuing tokens: the platform's signing key and the tokens it issues, and the token an
institution signs on its side. Checking them is ``auth``.

Platform tokens (residents, regulators, admins) are JWTs signed with EdDSA by the key in
``<data_dir>/platform-token.key``, header ``kid`` = its RFC 7638 thumbprint. Every token carries
``aud`` = the deployment's audience: ``token_audience`` if set, else ``deployment_audience`` of
the platform key, so that no two deployments share one and a token made for one is refused by
all others. Institutions learn it from ``GET /v1/audience`` (and the hospital console from its
page).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from ledger.errors import KeyFileError
from ledger.store import LedgerStore

from .identity import is_subject
from .institutions import thumbprint
from .keyfiles import hold_to_pin, pinned_secret
from .settings import AUDIENCE_PREFIX, ApiSettings

PLATFORM_KEY_FILE: Final = "platform-token.key"
PLATFORM_KEY_LOSES: Final = "invalidate every token issued and change the deployment's audience"
ALGORITHM: Final = "EdDSA"
INSTITUTION_TOKEN_MAX_TTL: Final = 300
"""An institution's token may live (``exp`` - ``iat``) at most this many seconds."""
STAFF_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
"""The ``sub`` of a regulator or admin token, matched against the whole string."""


class Role(StrEnum):
    RESIDENT = "resident"
    INSTITUTION = "institution"
    REGULATOR = "regulator"
    ADMIN = "admin"


PLATFORM_ROLES: Final = frozenset({Role.RESIDENT, Role.REGULATOR, Role.ADMIN})
"""The roles whose tokens the platform issues; institutions sign their own."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    token_id: str
    expires_at: int


@dataclass(frozen=True, slots=True, repr=False)
class PlatformKeys:
    """The platform's token-signing key and the rules its tokens follow."""

    private_key: Ed25519PrivateKey
    issuer: str
    audience: str
    default_ttl: int
    max_ttl: int

    @classmethod
    def load(cls, settings: ApiSettings, store: LedgerStore) -> PlatformKeys:
        """Load ``<data_dir>/platform-token.key`` (PKCS#8 PEM), held to the key thumbprint
        ``store`` pinned; on a deployment's first start create it (0600) and pin it."""
        path = settings.ledger.data_dir / PLATFORM_KEY_FILE
        pem = pinned_secret(
            path,
            store,
            _new_private_pem,
            loses=PLATFORM_KEY_LOSES,
        )
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path} does not hold an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} does not hold an Ed25519 key")
        hold_to_pin(store, path, thumbprint(key.public_key()))
        return cls(
            private_key=key,
            issuer=settings.token_issuer,
            audience=settings.token_audience or deployment_audience(key.public_key()),
            default_ttl=settings.token_ttl,
            max_ttl=settings.token_max_ttl,
        )

    @classmethod
    def of_deployment(cls, settings: ApiSettings) -> PlatformKeys:
        """``load`` on the deployment's own database, opened for it (whoever holds the data dir
        is the platform's identity provider: ``issue-token``, tools beside a served one)."""
        store = LedgerStore.open(settings.ledger.resolved_database_url())
        try:
            return cls.load(settings, store)
        finally:
            store.close()

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return thumbprint(self.public_key)

    def issue(
        self, role: Role | str, subject: str, ttl: int | None = None, *, now: float | None = None
    ) -> IssuedToken:
        """A signed platform token for ``subject`` in ``role``; ValueError for a bad request."""
        role = platform_role(role)
        check_platform_subject(role, subject)
        ttl = self.default_ttl if ttl is None else ttl
        if not 0 < ttl <= self.max_ttl:
            raise ValueError(f"ttl must be between 1 and {self.max_ttl} seconds")
        issued_at = int(time.time() if now is None else now)
        token_id = uuid.uuid4().hex
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "role": role.value,
            "aud": self.audience,
            "iat": issued_at,
            "exp": issued_at + ttl,
            "jti": token_id,
        }
        token = jwt.encode(claims, self.private_key, ALGORITHM, headers={"kid": self.key_id})
        return IssuedToken(token, token_id, issued_at + ttl)

    def __repr__(self) -> str:
        return f"PlatformKeys(issuer={self.issuer!r}, key_id={self.key_id!r})"


def deployment_audience(platform_public_key: Ed25519PublicKey) -> str:
    """The ``aud`` of a deployment that sets no ``token_audience``: named after its own platform
    key, so a token made for one deployment is refused by every other."""
    return f"{AUDIENCE_PREFIX}{thumbprint(platform_public_key)}"


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )


def platform_role(role: Role | str) -> Role:
    try:
        parsed = Role(role)
    except ValueError:
        parsed = None
    if parsed is None or parsed not in PLATFORM_ROLES:
        raise ValueError(f"the platform issues tokens only for {names(PLATFORM_ROLES)}")
    return parsed


def check_platform_subject(role: Role, subject: str) -> None:
    if role is Role.RESIDENT:
        # A resident is named by pseudonym only: an identifier in a token would be personal data.
        if not is_subject(subject):
            raise ValueError("a resident's subject must be their pseudonymous subject id")
    elif re.fullmatch(STAFF_ID_PATTERN, subject) is None:
        raise ValueError(f"{subject!r} is not an account id ({STAFF_ID_PATTERN})")


def issue_token(
    keys: ApiSettings | PlatformKeys,
    role: Role | str,
    subject: str,
    ttl: int | None = None,
    *,
    now: float | None = None,
) -> str:
    """A platform token (for tests, the demo and the CLI); settings load the key file."""
    platform = PlatformKeys.of_deployment(keys) if isinstance(keys, ApiSettings) else keys
    return platform.issue(role, subject, ttl, now=now).token


def sign_institution_token(
    private_key: Ed25519PrivateKey,
    institution_id: str,
    ttl: int = 60,
    *,
    audience: str,
    now: float | None = None,
) -> str:
    """What an institution does on its side: sign its own short-lived token with its key, for
    the deployment's ``audience`` (``PlatformKeys.audience``, served as ``/v1/audience``)."""
    if not 0 < ttl <= INSTITUTION_TOKEN_MAX_TTL:
        raise ValueError(f"ttl must be between 1 and {INSTITUTION_TOKEN_MAX_TTL} seconds")
    issued_at = int(time.time() if now is None else now)
    claims = {
        "iss": institution_id,
        "sub": institution_id,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, private_key, ALGORITHM, headers={"kid": institution_id})


def names(roles: frozenset[Role]) -> str:
    return ", ".join(sorted(role.value for role in roles))
