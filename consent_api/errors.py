"""Errors of the consent service and their RFC 9457 problem responses, mapped in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from hashing import HashingError, VerificationError
from ledger.errors import (
    IntegrityError,
    InvalidEventError,
    RollbackError,
    StorageFullError,
    TreeSizeError,
    storage_full,
)

from .outcome import is_fhir, operation_outcome

PROBLEM_BASE = "urn:consent-ledger:problem:"
PROBLEM_JSON = "application/problem+json"
RETRY_FULL_AFTER = 5
"""Seconds a client is told to wait (``Retry-After``) when a write found the disk full."""


class ApiError(Exception):
    """A failure the client can act on: a status, a stable type slug and a human detail."""

    status = 400
    slug = "bad-request"
    title = "Bad request"
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def response_headers(self) -> Mapping[str, str]:
        """The headers its problem response carries."""
        return self.headers


class NotFoundError(ApiError):
    status, slug, title = 404, "not-found", "Not found"


class NotInLogError(ApiError):
    status, slug, title = 404, "not-in-log", "No such leaf or tree size in the log"


class UnauthorizedError(ApiError):
    status, slug, title = 401, "unauthorized", "Authentication required"
    headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": 'Bearer realm="consent-ledger"'}


class InvalidTokenError(UnauthorizedError):
    """A bearer token was sent but is malformed, badly signed, expired or from no known issuer."""

    slug, title = "invalid-token", "The bearer token is not valid"
    headers: ClassVar[Mapping[str, str]] = {
        "WWW-Authenticate": 'Bearer realm="consent-ledger", error="invalid_token"'
    }


class ForbiddenError(ApiError):
    status, slug, title = 403, "forbidden", "Not allowed for this role"


class UnknownSubjectError(NotFoundError):
    slug, title = "unknown-subject", "No resident has this subject id"


class ErasedError(ApiError):
    """The resident was erased: their personal data is gone for good (its key was deleted)."""

    status, slug, title = 410, "subject-erased", "The resident's personal data was erased"


class ConflictError(ApiError):
    status, slug, title = 409, "conflict", "Conflicts with the current state"


class UnprocessableError(ApiError):
    status, slug, title = 422, "unprocessable", "The request cannot be applied"


class PayloadTooLargeError(ApiError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class TooManyRequestsError(ApiError):
    """The caller is over its limits (``throttle``); ``Retry-After`` says when to try again."""

    status, slug, title = 429, "too-many-requests", "Too many requests from this caller"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = max(1, retry_after)

    def response_headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


class StorageIntegrityError(ApiError):
    """A projected row does not match the leaf it claims to be the projection of (or names a
    leaf the log does not have): the database was changed behind the service's back. Nothing
    is decided or shown from it; an operator must restore the projection from the log."""

    status, slug, title = 503, "storage-integrity", "Stored data does not match the log"


def problem(status: int, slug: str, title: str, detail: str, **extensions: Any) -> JSONResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def answer(
    request: Request, status: int, slug: str, title: str, detail: str, **extensions: Any
) -> JSONResponse:
    """A problem document, or under ``/fhir`` the same failure as an OperationOutcome."""
    if is_fhir(request):
        return operation_outcome(status, slug, title, detail, extensions)
    return problem(status, slug, title, detail, **extensions)


async def send_answer(
    scope: Scope, receive: Receive, send: Send, status: int, slug: str, title: str, detail: str
) -> None:
    """``answer`` from ASGI middleware that runs before any route (limits, strict JSON)."""
    await answer(Request(scope), status, slug, title, detail)(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error leaves the service as a problem document with a stable type (under /fhir,
    an OperationOutcome carrying the same type)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = answer(request, exc.status, exc.slug, exc.title, exc.detail, **exc.extensions)
        response.headers.update(exc.response_headers())
        return response

    app.state.storage_full_answers = 0

    def _full(request: Request, exc: BaseException) -> JSONResponse:
        request.app.state.storage_full_answers += 1
        response = answer(
            request,
            503,
            "storage-full",
            "The service's storage is full",
            f"nothing was written; retry in a few seconds ({exc})",
        )
        response.headers["Retry-After"] = str(RETRY_FULL_AFTER)
        return response

    @app.exception_handler(StorageFullError)
    async def _storage_full(request: Request, exc: StorageFullError) -> JSONResponse:
        return _full(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A write that found the disk full, outside the group committer (a resident's vault
        # row, a grant's claim), reaches here as the driver's error.
        if storage_full(exc):
            return _full(request, exc)
        return answer(request, 500, "internal", "Internal error", "the service failed; see its log")

    @app.exception_handler(TreeSizeError)
    async def _tree_size(request: Request, exc: TreeSizeError) -> JSONResponse:
        return answer(request, 404, NotInLogError.slug, NotInLogError.title, str(exc))

    @app.exception_handler(InvalidEventError)
    async def _invalid_event(request: Request, exc: InvalidEventError) -> JSONResponse:
        return answer(request, 422, "invalid-event", "The event cannot be logged", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg"))}
            for error in exc.errors()
        ]
        title = "The request is not valid"
        return answer(request, 422, "validation", title, "see errors", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 413: PayloadTooLargeError.slug}.get(
            exc.status_code, "http-error"
        )
        return answer(request, exc.status_code, slug, str(exc.detail), str(exc.detail))

    @app.exception_handler(HashingError)
    async def _hashing(request: Request, exc: HashingError) -> JSONResponse:
        return answer(request, 400, "bad-request", "Bad request", str(exc))

    @app.exception_handler(IntegrityError)
    async def _damaged(_: Request, exc: IntegrityError) -> JSONResponse:
        # Our storage, not the request, is at fault; nothing is served from it (no bad proof).
        if isinstance(exc, RollbackError):
            return problem(503, "log-rolled-back", "The log's database went back in time", str(exc))
        return problem(503, "log-storage-damaged", "The log's storage is damaged", str(exc))

    @app.exception_handler(VerificationError)
    async def _verification(request: Request, exc: VerificationError) -> JSONResponse:
        return answer(request, 422, "verification-failed", "Verification failed", str(exc))
