"""Per-caller limits and the separate thread pools, so that no caller can stall the others.

Every request is counted against its caller: the principal its bearer token names (a resident,
an institution, a regulator or an admin), or for a request without a valid token the peer
address. A token the service has not verified before is paid for by the peer (a token of its
bucket and a request slot) before it is verified, so that a flood of fresh junk tokens costs
at most the peer's burst in verifications; one that verifies then counts against its principal.
A caller may have ``caller_concurrency`` requests in flight and spends one token of a
bucket of ``caller_burst`` refilled at ``caller_rate`` per second; past either the answer is 429
with ``Retry-After`` and a problem body, before any work. Heavy reads (a page of access
history with its receipts) are admitted ``history_per_caller`` at a time per caller on top.

Work runs on pools of its own (``Pools``): history pages on ``history_threads`` threads,
redemptions and token checks on theirs, so readers queueing for threads cannot hold up a
redemption, and decisions never wait for a thread (``access``). All of this is per process.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

import anyio
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError, TooManyRequestsError, answer
from .paging import DEFAULT_LIMIT, MAX_LIMIT
from .settings import ApiSettings

if TYPE_CHECKING:
    from .auth import Principal

REMEMBERED_CALLERS: Final = 10_000
"""Idle callers with full buckets are forgotten past this many."""

HELD_BACK_AT_MOST: Final = 1_000
"""Refusals held back at once, for all callers; past this many a refusal is sent at once."""


@dataclass(slots=True)
class _Caller:
    tokens: float
    refilled_at: float
    in_flight: int = 0
    heavy: int = 0
    heavy_tokens: float = -1.0  # a bucket of its own for heavy reads; full when first used


@dataclass(slots=True)
class CallerLimiter:
    """Token buckets and in-flight counts by caller key; used on the event loop only."""

    concurrency: int
    rate: float
    burst: int
    heavy_at_once: int
    heavy_rate: float = 1.0
    heavy_burst: int = 4
    refusal_delay: float = 1.0
    _callers: dict[str, _Caller] = field(default_factory=dict)
    _held_back: int = 0

    @classmethod
    def of(cls, settings: ApiSettings) -> CallerLimiter:
        return cls(
            concurrency=settings.caller_concurrency,
            rate=settings.caller_rate,
            burst=settings.caller_burst,
            heavy_at_once=settings.history_per_caller,
            heavy_rate=settings.history_rate,
            heavy_burst=settings.history_burst,
            refusal_delay=settings.refusal_delay,
        )

    def _caller(self, key: str, now: float) -> _Caller:
        caller = self._callers.get(key)
        if caller is None:
            if len(self._callers) >= REMEMBERED_CALLERS:
                self._forget_idle(now)
            caller = self._callers[key] = _Caller(float(self.burst), now)
            caller.heavy_tokens = float(self.heavy_burst)
        else:
            elapsed = now - caller.refilled_at
            caller.tokens = min(float(self.burst), caller.tokens + elapsed * self.rate)
            caller.heavy_tokens = min(
                float(self.heavy_burst), caller.heavy_tokens + elapsed * self.heavy_rate
            )
            caller.refilled_at = now
        return caller

    def _forget_idle(self, now: float) -> None:
        for key, caller in list(self._callers.items()):
            elapsed = now - caller.refilled_at
            full = caller.tokens + elapsed * self.rate >= self.burst
            heavy_full = caller.heavy_tokens + elapsed * self.heavy_rate >= self.heavy_burst
            if caller.in_flight == 0 and full and heavy_full:
                del self._callers[key]

    @contextmanager
    def admit(self, key: str) -> Iterator[None]:
        """Hold one of ``key``'s request slots and spend a token; 429 if it has none."""
        caller = self._caller(key, time.monotonic())
        if caller.in_flight >= self.concurrency:
            raise TooManyRequestsError(
                f"at most {self.concurrency} requests of one caller at once", retry_after=1
            )
        if caller.tokens < 1:
            wait = math.ceil((1 - caller.tokens) / self.rate)
            raise TooManyRequestsError(
                f"at most {self.rate:g} requests a second from one caller", retry_after=wait
            )
        caller.tokens -= 1
        caller.in_flight += 1
        try:
            yield
        finally:
            caller.in_flight -= 1

    async def hold_back(self, refused: TooManyRequestsError) -> None:
        """Wait a little before a refusal is sent. A caller that ignores ``Retry-After`` and asks
        again at once would otherwise cost the service a request per round trip; held back, each
        of its connections asks at most once per ``refusal_delay``. Idle waits cost no CPU, and
        at most ``HELD_BACK_AT_MOST`` are held at once."""
        if self.refusal_delay <= 0 or self._held_back >= HELD_BACK_AT_MOST:
            return
        self._held_back += 1
        try:
            await anyio.sleep(min(self.refusal_delay, refused.retry_after))
        finally:
            self._held_back -= 1

    @contextmanager
    def admit_heavy(self, key: str, entries: int) -> Iterator[None]:
        """Hold one of ``key``'s heavy-read slots for a page of ``entries``, paid for from its
        entries-per-second bucket; 429 if all slots are taken or the bucket is short."""
        caller = self._caller(key, time.monotonic())
        if caller.heavy >= self.heavy_at_once:
            raise TooManyRequestsError(
                f"at most {self.heavy_at_once} history pages of one caller at once", retry_after=1
            )
        cost = float(min(entries, self.heavy_burst))
        if caller.heavy_tokens < cost:
            wait = math.ceil((cost - caller.heavy_tokens) / self.heavy_rate)
            raise TooManyRequestsError(
                f"at most {self.heavy_rate:g} history entries a second from one caller",
                retry_after=wait,
            )
        caller.heavy_tokens -= cost
        caller.heavy += 1
        caller.in_flight += 1  # kept remembered while it runs
        try:
            yield
        finally:
            caller.heavy -= 1
            caller.in_flight -= 1


@dataclass(frozen=True, slots=True)
class Pools:
    """Thread capacity by kind of work, apart from the default pool plain routes run on."""

    history: anyio.CapacityLimiter
    redemption: anyio.CapacityLimiter
    auth: anyio.CapacityLimiter

    @classmethod
    def of(cls, settings: ApiSettings) -> Pools:
        return cls(
            history=anyio.CapacityLimiter(settings.history_threads),
            redemption=anyio.CapacityLimiter(settings.redemption_threads),
            auth=anyio.CapacityLimiter(settings.auth_threads),
        )


def get_pools(request: Request) -> Pools:
    pools: Pools = request.app.state.pools
    return pools


def _peer_key(request: Request) -> str:
    return f"peer:{request.client.host if request.client else '-'}"


def _principal_key(principal: Principal) -> str:
    return f"{principal.role}:{principal.id}"


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


async def caller_key(request: Request) -> str:
    """Who the request counts against: the principal of a valid bearer token, else the peer.

    Set by ``limit_caller`` (or ``CallerGate``) before any route runs; this never verifies a
    token itself.
    """
    known: str | None = getattr(request.state, "caller", None)
    if known is not None:
        return known
    token = _bearer_token(request)
    principal = None if token is None else request.app.state.authenticator.remembered(token)
    return _peer_key(request) if principal is None else _principal_key(principal)


async def _checked(request: Request, token: str) -> Principal | None:
    """The principal of a token not seen before, verified on the auth threads (None if it is
    refused: the route's own check answers 401 with the reason kept here, not verified twice)."""
    authenticator = request.app.state.authenticator
    try:
        principal: Principal = await anyio.to_thread.run_sync(
            authenticator.authenticate, token, limiter=get_pools(request).auth
        )
    except ApiError as refused:
        request.state.token_refused = (token, refused)
        return None
    return principal


async def _admit(limiter: CallerLimiter, key: str, held: ExitStack) -> None:
    """``key``'s slot and token, held by ``held``; a refusal is held back before it is raised."""
    try:
        held.enter_context(limiter.admit(key))
    except TooManyRequestsError as refused:
        await limiter.hold_back(refused)
        raise


async def limit_caller(request: Request) -> AsyncIterator[None]:
    """The app-wide dependency: admit the request against its caller's limits, or 429.

    A token verified before counts against its principal at once. A token not seen before
    counts against the peer first, its bucket and a request slot, so that a flood of fresh
    tokens is refused before it costs a verification each; only a token that verifies moves
    the request on to its principal's limits.
    """
    if getattr(request.state, "caller_admitted", False):  # by ``CallerGate``, already
        yield
        return
    limiter: CallerLimiter = request.app.state.caller_limiter
    token = _bearer_token(request)
    principal = None if token is None else request.app.state.authenticator.remembered(token)
    if principal is None:
        peer = _peer_key(request)
        with ExitStack() as at_peer:
            await _admit(limiter, peer, at_peer)
            if token is not None:
                principal = await _checked(request, token)
            if principal is None:
                request.state.caller = peer
                yield
                return
    request.state.caller = _principal_key(principal)
    with ExitStack() as held:
        await _admit(limiter, request.state.caller, held)
        yield


HEAVY_PATHS: Final = frozenset({"/v1/me/access-history"})


def page_entries(scope: Scope) -> int:
    """The entries a page request asks for (its ``limit``, within the paging bounds)."""
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if name == "limit" and value.isascii() and value.isdigit():
            return max(1, min(int(value), MAX_LIMIT))
    return DEFAULT_LIMIT


class CallerGate:
    """ASGI middleware: the cheap way out for a caller already over its limits.

    A request whose bearer token was verified before (``Authenticator.remembered``, no I/O) is
    admitted here, before any routing, so that a flood of refused requests costs little; any
    other request is admitted by ``limit_caller`` once its token is checked.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = getattr(scope.get("app"), "state", None)
        limiter: CallerLimiter | None = getattr(state, "caller_limiter", None)
        key = None if limiter is None else _remembered_caller(scope, state)
        if limiter is None or key is None:
            await self.app(scope, receive, send)
            return
        try:
            with ExitStack() as held:
                held.enter_context(limiter.admit(key))
                if scope["path"] in HEAVY_PATHS:
                    held.enter_context(limiter.admit_heavy(key, page_entries(scope)))
                scope.setdefault("state", {}).update(caller=key, caller_admitted=True)
                await self.app(scope, receive, send)
        except TooManyRequestsError as refused:
            await limiter.hold_back(refused)
            response = answer(
                Request(scope),
                refused.status,
                refused.slug,
                refused.title,
                refused.detail,
                **refused.extensions,
            )
            response.headers.update(refused.response_headers())
            await response(scope, receive, send)


def _remembered_caller(scope: Scope, state: Any) -> str | None:
    if scope["type"] != "http":
        return None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return None
            principal = state.authenticator.remembered(token)
            return None if principal is None else f"{principal.role}:{principal.id}"
    return None
