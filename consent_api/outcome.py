"""Errors under ``/fhir`` as FHIR R4 OperationOutcome resources (the JSON API keeps RFC 9457).

``errors.py`` maps every failure once; for a path under ``/fhir`` it hands the same status,
type slug, title and detail here. Each issue carries the problem type as a coding in our own
code system (so a client can branch on it as on a problem ``type``), the detail as
``diagnostics`` and, where the error names elements (a Consent refused for what it says, a
query parameter), one issue per element with its ``expression``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse

from .domain.vocab import FHIR_BASE

FHIR_JSON: Final = "application/fhir+json"
PROBLEM_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/problem-type"
ISSUE_CODES: Final = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}
"""HTTP status -> R4 IssueType (hl7.org/fhir/R4/valueset-issue-type.html)."""


def is_fhir(request: Request) -> bool:
    path = request.url.path
    return path == "/fhir" or path.startswith("/fhir/")


def operation_outcome(
    status: int, slug: str, title: str, detail: str, extensions: Mapping[str, Any]
) -> JSONResponse:
    """The OperationOutcome answering a failure under ``/fhir``."""
    code = ISSUE_CODES.get(status, "exception")
    details = {"coding": [{"system": PROBLEM_SYSTEM, "code": slug, "display": title}]}
    issues: list[dict[str, Any]] = []
    for blocker in extensions.get("blockers", ()):
        issues.append(
            {
                "severity": "error",
                "code": "not-supported",
                "details": details,
                "diagnostics": blocker["reason"],
                "expression": [blocker["path"]],
            }
        )
    for error in extensions.get("errors", ()):
        issues.append(
            {
                "severity": "error",
                "code": code,
                "details": details,
                "diagnostics": error["msg"],
                "expression": [".".join(error["loc"])],
            }
        )
    if not issues:
        issue: dict[str, Any] = {
            "severity": "error",
            "code": code,
            "details": details,
            "diagnostics": detail,
        }
        if isinstance(extensions.get("path"), str):
            issue["expression"] = [extensions["path"]]
        issues.append(issue)
    body = {"resourceType": "OperationOutcome", "issue": issues}
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)
