"""The OpenAPI document, completed: every operation documents its problem responses.

FastAPI describes validation failures as its own JSON; this service answers every error with an
RFC 9457 problem document (under ``/fhir``, a FHIR OperationOutcome), so the spec says exactly
that, and clients (and schemathesis) can hold the service to it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .routes.fhir_docs import fhir_schemas, outcome_response

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A stable URN naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}

_PROBLEM_RESPONSE = {
    "description": "A problem (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
_TOO_MANY_TEXT = "The caller is over its limits (consent_api.throttle)"
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
_TOO_MANY = {**_PROBLEM_RESPONSE, "description": _TOO_MANY_TEXT, "headers": _RETRY_AFTER}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        components.update(fhir_schemas())
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for path, operations in document.get("paths", {}).items():
            fhir = path.startswith("/fhir/")
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status in list(responses):
                    if status.startswith(("4", "5")):
                        description = responses[status].get("description", "A problem")
                        responses[status] = (
                            outcome_response(description)
                            if fhir
                            else {**_PROBLEM_RESPONSE, "description": description}
                        )
                failure = outcome_response("An OperationOutcome") if fhir else _PROBLEM_RESPONSE
                responses["422"] = failure
                responses["429"] = (
                    {**outcome_response(_TOO_MANY_TEXT), "headers": _RETRY_AFTER}
                    if fhir
                    else _TOO_MANY
                )
                responses.setdefault("default", failure)
                if fhir:
                    responses.setdefault("400", outcome_response("A search it cannot run"))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
