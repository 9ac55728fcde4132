"""Who is calling: bearer tokens, the principals they name, and the role checks routes depend on.

Two kinds of token (issued as ``tokens`` says), both JWTs signed with EdDSA (Ed25519), both with
``aud`` = the deployment's audience (``PlatformKeys.audience``: ``token_audience``, or one
derived from the platform key), both checked with 30 s of clock skew:

* Platform tokens, for residents, regulators and admins, signed with the platform key kept in
  ``<data_dir>/platform-token.key``. Header ``kid`` (required) = the RFC 7638 thumbprint of that
  key; claims ``iss`` (``token_issuer``), ``sub``, ``role``, ``aud``, ``iat``, ``exp``, ``jti``.
  A resident's ``sub`` is their pseudonymous subject id, never an identifier of the person; an
  erased resident's tokens are refused (at once in this process, within ``CACHE_SECONDS`` in
  other workers). A staff ``sub`` must match ``STAFF_ID_PATTERN`` as a whole string.
* Institution tokens, signed by an institution with its own key, registered by an admin.
  Header ``kid`` = the institution id; claims ``iss`` = ``sub`` = the institution id, ``aud``,
  ``iat``, ``exp``, with ``exp`` - ``iat`` at most 300 s and ``exp`` at most 300 s ahead (so a
  token issued long ago has expired). A deactivated institution's tokens are refused, and so are
  those of one whose registered key is of small order (an older registration; reported at
  start-up).

Signatures are verified strictly: before PyJWT (OpenSSL) verifies one, its R and S pass
``hashing.ed25519`` (no small-order R, S < L) and its base64url must be canonical; registered
keys were checked the same way. The issuer selects the key, and the key always comes from the
platform's own key file or the institution registry, never from the token.

A client sends the same token with every request until it expires, so a token that verified is
remembered (by its SHA-256, up to ``VERIFIED_TOKENS`` of them, the least recently used
forgotten first, an expired one at once) and not verified again: its
bytes, hence its signature and claims, cannot have changed. What can change is checked on every
use all the same: its expiry against the clock, and for an institution that it is still
registered, active, and under the key the token verified with (``InstitutionRegistry.get``, so
a deactivation counts at once in this process and within a second in other workers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

import anyio
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hashing import signature_problem

from .domain.vocab import InstitutionType, is_institution_id
from .errors import PROBLEM_JSON, ForbiddenError, InvalidTokenError, UnauthorizedError
from .identity import ResidentVault
from .institutions import (
    CACHE_SECONDS,
    Institution,
    InstitutionRegistry,
    key_problem,
)

# What is issued lives in ``tokens``; these names are imported from here by routes and tests.
from .tokens import ALGORITHM as ALGORITHM
from .tokens import INSTITUTION_TOKEN_MAX_TTL as INSTITUTION_TOKEN_MAX_TTL
from .tokens import PLATFORM_KEY_FILE as PLATFORM_KEY_FILE
from .tokens import PLATFORM_ROLES as PLATFORM_ROLES
from .tokens import STAFF_ID_PATTERN as STAFF_ID_PATTERN
from .tokens import IssuedToken as IssuedToken
from .tokens import PlatformKeys as PlatformKeys
from .tokens import Role as Role
from .tokens import check_platform_subject, names, platform_role
from .tokens import deployment_audience as deployment_audience
from .tokens import issue_token as issue_token
from .tokens import sign_institution_token as sign_institution_token

CLOCK_SKEW: Final = 30
"""Seconds of disagreement between clocks tolerated on ``iat``, ``nbf`` and ``exp``."""
MAX_TOKEN_CHARS: Final = 4096
VERIFIED_TOKENS: Final = 4096
"""How many verified tokens an Authenticator remembers (the least recently used is forgotten
first, so fresh tokens minted in bulk do not push out the ones callers keep using)."""

_PLATFORM_CLAIMS: Final = ["iss", "sub", "role", "aud", "iat", "exp", "jti"]
_INSTITUTION_CLAIMS: Final = ["iss", "sub", "aud", "iat", "exp"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``id`` is a resident's subject id, an institution id, or a
    regulator's or admin's account id; ``institution_type`` is set for institutions only."""

    role: Role
    id: str
    institution_type: InstitutionType | None = None


@dataclass(frozen=True, slots=True)
class _Verified:
    """What a token that verified established, and what must be checked again on each use."""

    principal: Principal
    expires_at: int
    key_thumbprint: str | None
    """For an institution's token, the key it verified with; None for platform tokens."""


# -- verification ----------------------------------------------------------------------------


class Authenticator:
    """Turns a bearer token into a Principal, or raises InvalidTokenError (401)."""

    def __init__(
        self,
        platform: PlatformKeys,
        institutions: InstitutionRegistry,
        residents: ResidentVault,
        *,
        leeway: int = CLOCK_SKEW,
    ) -> None:
        self.platform = platform
        self.institutions = institutions
        self.residents = residents
        self.leeway = leeway
        # Residents known not erased, until (monotonic) when: an erasure counts at once in this
        # process (``forget_resident``) and within ``CACHE_SECONDS`` in other workers.
        self._residents_present: dict[str, float] = {}
        self._platform_public = platform.public_key
        self._platform_kid = platform.key_id
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._verified_lock = threading.Lock()

    def remembered(self, token: str) -> Principal | None:
        """The caller, if ``token`` verified before and still holds, found without any I/O
        (None: ask ``authenticate``)."""
        if len(token) > MAX_TOKEN_CHARS:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._recall(digest)
        if remembered is None:
            return None
        principal = self._still_valid(remembered, self.institutions.cached, read=False)
        if principal is None and self._expired(remembered):
            self._forget(digest)
        return principal

    def authenticate(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidTokenError(f"the token is longer than {MAX_TOKEN_CHARS} characters")
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._recall(digest)
        if remembered is not None:
            principal = self._still_valid(remembered, self.institutions.get, read=True)
            if principal is not None:
                return principal
            self._forget(digest)
        # Not seen, or no longer valid: verify in full, which says why a token is refused.
        verified = self._verify_token(token)
        with self._verified_lock:
            self._verified[digest] = verified
            self._verified.move_to_end(digest)
            while len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        return verified.principal

    def _recall(self, digest: bytes) -> _Verified | None:
        """A remembered token, now the most recently used (so kept longest)."""
        with self._verified_lock:
            remembered = self._verified.get(digest)
            if remembered is not None:
                self._verified.move_to_end(digest)
            return remembered

    def _forget(self, digest: bytes) -> None:
        with self._verified_lock:
            self._verified.pop(digest, None)

    def _expired(self, verified: _Verified) -> bool:
        return verified.expires_at <= time.time() - self.leeway

    def forget_resident(self, subject: str) -> None:
        """``subject`` was just erased: their tokens stop working now."""
        self._residents_present.pop(subject, None)

    def _resident_present(self, subject: str, *, read: bool) -> bool | None:
        """Whether ``subject`` is not erased (None: unknown without a read, and ``read`` False)."""
        until = self._residents_present.get(subject)
        if until is not None and time.monotonic() < until:
            return True
        if not read:
            return None
        if self.residents.erasure(subject) is not None:
            self._residents_present.pop(subject, None)
            return False
        if len(self._residents_present) >= VERIFIED_TOKENS:
            self._residents_present.clear()
        self._residents_present[subject] = time.monotonic() + CACHE_SECONDS
        return True

    def _still_valid(
        self,
        verified: _Verified,
        institution_of: Callable[[str], Institution | None],
        *,
        read: bool,
    ) -> Principal | None:
        """The principal of a token verified before, if it still holds now (PyJWT's rules)."""
        if self._expired(verified):
            return None
        if verified.principal.role is Role.RESIDENT:
            present = self._resident_present(verified.principal.id, read=read)
            return verified.principal if present else None
        if verified.key_thumbprint is None:
            return verified.principal
        institution = institution_of(verified.principal.id)
        if (
            institution is None
            or not institution.active
            or institution.key_thumbprint != verified.key_thumbprint
        ):
            return None
        return Principal(Role.INSTITUTION, institution.id, institution.type)

    def _verify_token(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
            # Read unverified only to pick the key; every claim is checked once it verifies.
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("the token is not a well-formed JWT") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError(f"tokens must be signed with {ALGORITHM}")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str):
            raise InvalidTokenError('the token has no "iss" claim')
        if issuer == self.platform.issuer:
            return self._platform_principal(token, header)
        return self._institution_principal(token, header, issuer)

    def _platform_principal(self, token: str, header: dict[str, Any]) -> _Verified:
        if "kid" not in header:
            raise InvalidTokenError('a platform token needs "kid", the platform key\'s thumbprint')
        if header["kid"] != self._platform_kid:
            raise InvalidTokenError("the token names a platform key this service does not hold")
        claims = self._verify(token, self._platform_public, self.platform.issuer, _PLATFORM_CLAIMS)
        if _int_claim(claims, "exp") - _int_claim(claims, "iat") > self.platform.max_ttl:
            raise InvalidTokenError(f"the token lives longer than {self.platform.max_ttl} s")
        try:
            role = platform_role(claims["role"])
            check_platform_subject(role, claims["sub"])
        except (ValueError, TypeError) as exc:
            raise InvalidTokenError(f"the token's role or subject is not valid: {exc}") from exc
        if role is Role.RESIDENT and not self._resident_present(claims["sub"], read=True):
            raise InvalidTokenError("this resident was erased: their tokens no longer work")
        return _Verified(Principal(role, claims["sub"]), _int_claim(claims, "exp"), None)

    def _institution_principal(self, token: str, header: dict[str, Any], issuer: str) -> _Verified:
        if header.get("kid") != issuer:
            raise InvalidTokenError('an institution token needs "kid" = "iss" = its institution id')
        institution = self.institutions.get(issuer) if is_institution_id(issuer) else None
        if institution is None:
            raise InvalidTokenError(f"the issuer {issuer!r} is not a registered institution")
        weak = key_problem(institution.public_key)
        if weak is not None:  # registered before keys were checked; reported at start-up
            raise InvalidTokenError(f"institution {issuer}'s registered key is refused: {weak}")
        claims = self._verify(token, institution.public_key, issuer, _INSTITUTION_CLAIMS)
        if claims["sub"] != issuer:
            raise InvalidTokenError('an institution token needs "sub" = "iss"')
        if claims.get("role", Role.INSTITUTION.value) != Role.INSTITUTION.value:
            raise InvalidTokenError("an institution cannot claim another role")
        now = time.time()
        expires_at, issued_at = _int_claim(claims, "exp"), _int_claim(claims, "iat")
        if expires_at > now + INSTITUTION_TOKEN_MAX_TTL + self.leeway:
            raise InvalidTokenError(
                f"an institution token may expire at most {INSTITUTION_TOKEN_MAX_TTL} s ahead"
            )
        if expires_at - issued_at > INSTITUTION_TOKEN_MAX_TTL:
            raise InvalidTokenError(
                f"an institution token may live at most {INSTITUTION_TOKEN_MAX_TTL} s (exp - iat)"
            )
        # Checked after the signature, so only the institution learns it was deactivated.
        if not institution.active:
            raise InvalidTokenError(f"institution {issuer} is deactivated")
        principal = Principal(Role.INSTITUTION, issuer, institution.type)
        return _Verified(principal, expires_at, institution.key_thumbprint)

    def _verify(
        self, token: str, key: Ed25519PublicKey, issuer: str, required: list[str]
    ) -> dict[str, Any]:
        _check_signature_strictly(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.platform.audience,
                issuer=issuer,
                leeway=self.leeway,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidTokenError("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidTokenError("the token is meant for another audience") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidTokenError("the token's signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f'the token has no "{exc.claim}" claim') from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"the token is not valid: {exc}") from exc
        return claims


def _check_signature_strictly(token: str) -> None:
    """Refuse a signature OpenSSL would accept but strict Ed25519 does not (a small-order or
    non-canonical R, S >= L), and one not in canonical base64url (its twin texts)."""
    encoded = token.rpartition(".")[2]
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("the token's signature is not base64url") from exc
    if base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii") != encoded:
        raise InvalidTokenError("the token's signature is not canonical base64url")
    problem = signature_problem(signature)
    if problem is not None:
        raise InvalidTokenError(f"the token's signature is refused: {problem}")


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTokenError(f'the "{name}" claim must be an integer')
    return value


# -- FastAPI dependencies --------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="A platform token (residents, regulators, admins) or an institution's own token.",
)

AUTH_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {
        "description": "No bearer token, or one that is not valid",
        "content": {PROBLEM_JSON: {}},
    },
    403: {"description": "The caller's role may not do this", "content": {PROBLEM_JSON: {}}},
}
"""OpenAPI ``responses`` for routes behind ``require_roles``."""


# Dependencies that neither block nor compute much are coroutines: FastAPI runs a plain
# function dependency in its thread pool, a hop that costs more than the work itself.


async def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; 401 (with ``WWW-Authenticate: Bearer``) otherwise.

    A token seen before is accepted again on the event loop; any other is verified in the
    thread pool, since that may read the institution registry.
    """
    if credentials is None:
        raise UnauthorizedError("send a token as: Authorization: Bearer <JWT>")
    refused = getattr(request.state, "token_refused", None)  # by ``throttle.limit_caller``
    if refused is not None and refused[0] == credentials.credentials:
        raise refused[1]
    # Read here rather than as a dependency of its own: every request resolves this one, and
    # each dependency FastAPI resolves costs more than the lookup.
    authenticator = await get_authenticator(request)
    principal = authenticator.remembered(credentials.credentials)
    if principal is not None:
        return principal
    # On threads of its own (``throttle.Pools``): readers queueing for the default pool must
    # not hold up a redemption's or a decision's token check.
    return await anyio.to_thread.run_sync(
        authenticator.authenticate, credentials.credentials, limiter=request.app.state.pools.auth
    )


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that passes the caller on if their role is one of ``roles``; 403 otherwise."""
    allowed = frozenset(roles)
    if not allowed:
        raise ValueError("name at least one role")

    async def check_role(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(f"this needs the role {names(allowed)}, not {principal.role}")
        return principal

    return check_role
