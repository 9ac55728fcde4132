"""The OpenAPI of the FHIR routes: ``application/fhir+json`` bodies with schemas and examples.

The schemas are the R4 resources' own elements (read from the ``fhir.resources`` models, R4B's
being R4's for these resources), each typed, with ``resourceType`` fixed and nothing else
allowed; the OperationOutcome schema documents every error under ``/fhir``. They are built
when the OpenAPI document is, never at import.
"""

from __future__ import annotations

from typing import Any, Final

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import BaseModel

FHIR_JSON: Final = "application/fhir+json"
MODELS: Final[dict[str, type[BaseModel]]] = {
    "Consent": Consent,
    "AuditEvent": AuditEvent,
    "Bundle": Bundle,
    "CapabilityStatement": CapabilityStatement,
    "OperationOutcome": OperationOutcome,
}
_KEPT: Final = {
    "type",
    "description",
    "pattern",
    "items",
    "anyOf",
    "minLength",
    "maxLength",
    "enum",
}
"""JSON Schema keywords kept from the models' schemas (pydantic's ``format: date-time`` would
refuse FHIR's partial dates, and its own markers are no JSON Schema)."""

_OUTCOME_EXAMPLE: Final = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "not-supported",
            "details": {
                "coding": [
                    {
                        "system": "https://fhir.consent-ledger.example/CodeSystem/problem-type",
                        "code": "unprocessable",
                    }
                ]
            },
            "diagnostics": "the root rule does not say whether it permits or denies: add "
            '"type": "permit" or "type": "deny"',
            "expression": ["Consent.provision.type"],
        }
    ],
}
_CONSENT_EXAMPLE: Final = {
    "resourceType": "Consent",
    "id": "c-1",
    "meta": {"versionId": "1", "lastUpdated": "2025-03-01T09:00:00+00:00"},
    "status": "active",
    "scope": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                "code": "patient-privacy",
            }
        ]
    },
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
    "patient": {"reference": "Patient/NAT-1"},
    "dateTime": "2025-03-01T09:00:00+00:00",
    "provision": {
        "type": "deny",
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "PRCP",
                        }
                    ]
                },
                "reference": {"reference": "Organization/hosp-b"},
            }
        ],
    },
}
_BUNDLE_EXAMPLE: Final = {
    "resourceType": "Bundle",
    "type": "searchset",
    "total": 1,
    "link": [{"relation": "self", "url": "https://platform.example/fhir/Consent?patient=p1"}],
    "entry": [
        {
            "fullUrl": "https://platform.example/fhir/Consent/c-1",
            "resource": _CONSENT_EXAMPLE,
            "search": {"mode": "match"},
        }
    ],
}
_AUDIT_EXAMPLE: Final = {
    "resourceType": "AuditEvent",
    "id": "leaf-7",
    "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113"},
    "recorded": "2025-03-01T09:00:00+00:00",
    "agent": [{"who": {"display": "consent-ledger"}, "requestor": False}],
    "source": {"observer": {"display": "consent-ledger"}},
}
_OPERATIONS: Final[dict[str, tuple[int, str, str, Any]]] = {
    "create": (201, "Consent", "The consent as stored, with its version", _CONSENT_EXAMPLE),
    "read": (200, "Consent", "The current version (ETag: its versionId)", _CONSENT_EXAMPLE),
    "vread": (200, "Consent", "That version of the consent", _CONSENT_EXAMPLE),
    "search-consent": (200, "Bundle", "A searchset Bundle of Consents", _BUNDLE_EXAMPLE),
    "search-audit": (200, "Bundle", "A searchset Bundle of AuditEvents", _BUNDLE_EXAMPLE),
    "read-audit": (200, "AuditEvent", "One AuditEvent (IHE BALP)", _AUDIT_EXAMPLE),
    "metadata": (200, "CapabilityStatement", "What this server supports", None),
}


def fhir_responses(operation: str) -> dict[str, Any]:
    """The decorator arguments documenting one FHIR operation's success body (and request)."""
    status, resource, description, example = _OPERATIONS[operation]
    content: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/Fhir{resource}"}}
    if example is not None:
        content["example"] = example
    extra: dict[str, Any] = {}
    if operation == "create":
        extra["openapi_extra"] = {
            "requestBody": {
                "required": True,
                "content": {
                    FHIR_JSON: {
                        "schema": {"$ref": "#/components/schemas/FhirConsent"},
                        "example": _CONSENT_EXAMPLE,
                    },
                    "application/json": {"schema": {"$ref": "#/components/schemas/FhirConsent"}},
                },
            }
        }
    return {
        "responses": {status: {"description": description, "content": {FHIR_JSON: content}}},
        **extra,
    }


def outcome_response(description: str) -> dict[str, Any]:
    """An error response under ``/fhir``: an OperationOutcome."""
    return {
        "description": description,
        "content": {
            FHIR_JSON: {
                "schema": {"$ref": "#/components/schemas/FhirOperationOutcome"},
                "example": _OUTCOME_EXAMPLE,
            }
        },
    }


def fhir_schemas() -> dict[str, Any]:
    """``components.schemas`` for the FHIR resources these routes take and give."""
    return {f"Fhir{name}": _resource_schema(name, model) for name, model in MODELS.items()}


def _resource_schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    full = model.model_json_schema(by_alias=True)
    properties: dict[str, Any] = {"resourceType": {"const": name}}
    for key, spec in full["properties"].items():
        if key != "fhir_comments":
            properties[key] = _clean(spec)
    return {
        "type": "object",
        "description": f"FHIR R4 {name} ({full.get('description', '')})".strip(),
        "required": ["resourceType", *full.get("required", [])],
        "properties": properties,
        "additionalProperties": False,
    }


def _clean(spec: dict[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in spec.items() if k in _KEPT}
    if isinstance(cleaned.get("items"), dict):
        cleaned["items"] = _clean(cleaned["items"])
    if "anyOf" in cleaned:
        options = [_clean(o) for o in cleaned.pop("anyOf") if o != {"type": "null"}]
        if len(options) == 1:
            cleaned.update(options[0])
        else:
            cleaned["anyOf"] = options
    return cleaned
