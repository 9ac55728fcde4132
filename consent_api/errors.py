"""Errors of the consent service and their RFC 9457 problem responses, mapped in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hashing import HashingError, VerificationError
from ledger.errors import IntegrityError, InvalidEventError, RollbackError, TreeSizeError

PROBLEM_BASE = "urn:consent-ledger:problem:"
PROBLEM_JSON = "application/problem+json"


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


def problem(status: int, slug: str, title: str, detail: str, **extensions: Any) -> JSONResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error leaves the service as a problem document with a stable type."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        response = problem(exc.status, exc.slug, exc.title, exc.detail, **exc.extensions)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(TreeSizeError)
    async def _tree_size(_: Request, exc: TreeSizeError) -> JSONResponse:
        return problem(404, NotInLogError.slug, NotInLogError.title, str(exc))

    @app.exception_handler(InvalidEventError)
    async def _invalid_event(_: Request, exc: InvalidEventError) -> JSONResponse:
        return problem(422, "invalid-event", "The event cannot be logged", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg"))}
            for error in exc.errors()
        ]
        return problem(422, "validation", "The request is not valid", "see errors", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, slug, str(exc.detail), str(exc.detail))

    @app.exception_handler(HashingError)
    async def _hashing(_: Request, exc: HashingError) -> JSONResponse:
        return problem(400, "bad-request", "Bad request", str(exc))

    @app.exception_handler(IntegrityError)
    async def _damaged(_: Request, exc: IntegrityError) -> JSONResponse:
        # Our storage, not the request, is at fault; nothing is served from it (no bad proof).
        if isinstance(exc, RollbackError):
            return problem(503, "log-rolled-back", "The log's database went back in time", str(exc))
        return problem(503, "log-storage-damaged", "The log's storage is damaged", str(exc))

    @app.exception_handler(VerificationError)
    async def _verification(_: Request, exc: VerificationError) -> JSONResponse:
        return problem(422, "verification-failed", "Verification failed", str(exc))
