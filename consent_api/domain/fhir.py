"""FHIR R4 renderings: Consent in and out (access events as AuditEvents: ``fhir_audit``).

The models of ``fhir.resources`` (its ``R4B`` package: HL7 made no change to Consent or
AuditEvent between R4 4.0.1 and R4B 4.3.0, and the library ships no R4 proper) validate every
resource read or written here. ``consent_to_fhir`` and ``consent_from_fhir`` are inverses on
every ``Consent``: ``consent_from_fhir(consent_to_fhir(c)) == c``.

What is written carries no personal data: the subject and a guardian appear as pseudonym
identifiers, institutions by their platform ids, never a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.consent import Consent as FhirConsent
from pydantic import ValidationError

from consent_api.domain.consent import (
    Consent,
    Grantee,
    Period,
    Provision,
    ProvisionType,
    check_nesting,
)
from consent_api.domain.errors import InvalidConsentError, UnsupportedConsentError
from consent_api.domain.fhir_actors import (
    InstitutionCheck,
    OrgResolver,
    Pseudonymiser,
    organization_id,
)
from consent_api.domain.fhir_audit import decision_event as audit_event_to_fhir
from consent_api.domain.fhir_reader import Reader
from consent_api.domain.vocab import (
    CATEGORY_SYSTEM,
    CONSENT_ACTION_SYSTEM,
    CONSENT_SCOPE_SYSTEM,
    EXT_GUARDIAN_AUTHORITY_ENDS,
    EXT_INSTITUTION_TYPE,
    EXT_REVOKED_AT,
    INSTITUTION_ID_SYSTEM,
    INSTITUTION_TYPE_SYSTEM,
    LOINC,
    PSEUDONYM_SYSTEM,
    PURPOSE_CODINGS,
    V3_ACT_CODE,
    V3_PARTICIPATION_TYPE,
    Category,
    Purpose,
)

__all__ = [
    "OrgResolver",
    "Pseudonymiser",
    "audit_event_to_fhir",
    "consent_from_fhir",
    "consent_to_fhir",
    "organization_id",
]


Json = dict[str, Any]


def consent_from_fhir(
    resource: Mapping[str, object],
    *,
    pseudonymise: Pseudonymiser | None = None,
    resolve_org: OrgResolver = organization_id,
    is_institution: InstitutionCheck | None = None,
    date_zone: tzinfo = UTC,
) -> Consent:
    """The ``Consent`` an R4 Consent resource (parsed JSON) expresses, or an error.

    ``pseudonymise`` maps a literal ``Patient/...`` or ``RelatedPerson/...`` reference to a
    pseudonym (needed unless the resource already names people by our pseudonym identifier);
    ``resolve_org`` maps ``Organization/...`` to a platform institution id (None: unknown);
    ``is_institution`` says whether an institution id is registered (None: not checked);
    date-only values are days in ``date_zone``, a period's end covering its whole last day.

    Raises ``InvalidConsentError`` when the resource is not valid R4 or lacks what a consent
    needs, and ``UnsupportedConsentError`` naming every element it cannot express.
    """
    root = resource.get("provision")
    if isinstance(root, Mapping):  # before the recursive R4 validation below
        try:
            check_nesting(root.get("provision"), key="provision")
        except InvalidConsentError as error:
            raise UnsupportedConsentError(str(error), "Consent.provision.provision") from error
    try:
        FhirConsent.model_validate(resource)
    except ValidationError as error:
        raise InvalidConsentError(f"not a valid FHIR R4 Consent: {error}") from error
    reader = Reader(
        pseudonymise=pseudonymise,
        resolve_org=resolve_org,
        is_institution=is_institution,
        date_zone=date_zone,
    )
    return reader.consent(resource)


def consent_to_fhir(consent: Consent) -> Json:
    """``consent`` as R4 Consent JSON, validated by the FHIR library."""
    extensions: list[Json] = []
    if consent.guardian_authority_ends is not None:
        extensions.append(
            {
                "url": EXT_GUARDIAN_AUTHORITY_ENDS,
                "valueDate": consent.guardian_authority_ends.isoformat(),
            }
        )
    if consent.revoked_at is not None:
        extensions.append({"url": EXT_REVOKED_AT, "valueDateTime": _instant(consent.revoked_at)})
    performer = (
        _pseudonym("Patient", consent.subject)
        if consent.grantor.guardian is None
        else _pseudonym("RelatedPerson", consent.grantor.guardian)
    )
    resource: Json = {
        "resourceType": "Consent",
        "id": consent.consent_id,
        "meta": {
            "versionId": str(consent.version),
            "lastUpdated": _instant(consent.revoked_at or consent.granted_at),
        },
        "status": "active" if consent.status == "active" else "inactive",
        "scope": _concept(CONSENT_SCOPE_SYSTEM, "patient-privacy", "Privacy Consent"),
        "category": [_concept(LOINC, "59284-0", "Patient Consent")],
        "patient": _pseudonym("Patient", consent.subject),
        "dateTime": _instant(consent.granted_at),
        "performer": [performer],
        "policyRule": _concept(V3_ACT_CODE, "OPTIN" if consent.type == "permit" else "OPTOUT"),
        "provision": _rule(
            written_type=consent.type,  # never left to policyRule: see fhir_reader
            effect=consent.type,
            grantees=() if consent.grantee is None else (consent.grantee,),
            holders=consent.holders,
            categories=consent.categories,
            purposes=consent.purposes,
            period=consent.period,
            exceptions=consent.provisions,
        ),
    }
    if extensions:
        resource["extension"] = extensions
    return _validated(FhirConsent, resource)


def _rule(
    *,
    written_type: ProvisionType | None,
    effect: ProvisionType,
    grantees: Iterable[Grantee],
    holders: Iterable[str],
    categories: Iterable[Category],
    purposes: Iterable[Purpose],
    period: Period,
    exceptions: Iterable[Provision],
) -> Json:
    rule: Json = {}
    if written_type is not None:
        rule["type"] = written_type
    if period.start is not None or period.end is not None:
        rule["period"] = {
            key: _instant(value)
            for key, value in (("start", period.start), ("end", period.end))
            if value is not None
        }
    actors = [
        {"role": _concept(V3_PARTICIPATION_TYPE, "PRCP"), "reference": _grantee(g)}
        for g in sorted(grantees, key=Grantee.sort_key)
    ] + [
        {"role": _concept(V3_PARTICIPATION_TYPE, "CST"), "reference": _institution(h)}
        for h in sorted(holders)
    ]
    if actors:
        rule["actor"] = actors
    if effect == "permit":  # a deny is written for every action: broader, never narrower
        rule["action"] = [_concept(CONSENT_ACTION_SYSTEM, "access")]
    if purposes:
        rule["purpose"] = [_coding(*PURPOSE_CODINGS[p]) for p in sorted(purposes)]
    if categories:
        rule["class"] = [_coding(CATEGORY_SYSTEM, c) for c in sorted(categories)]
    if exceptions:
        rule["provision"] = [
            _rule(
                written_type=p.type,
                effect=p.type,
                grantees=p.grantees,
                holders=p.holders,
                categories=p.categories,
                purposes=p.purposes,
                period=p.period,
                exceptions=p.provisions,
            )
            for p in exceptions
        ]
    return rule


def _grantee(grantee: Grantee) -> Json:
    if grantee.institution is not None:
        return _institution(grantee.institution)
    kind = grantee.institution_type
    return {
        "type": "Organization",
        "extension": [
            {"url": EXT_INSTITUTION_TYPE, "valueCoding": _coding(INSTITUTION_TYPE_SYSTEM, kind)}
        ],
        "display": f"every {kind}",
    }


def _institution(institution: str) -> Json:
    return {
        "type": "Organization",
        "identifier": {"system": INSTITUTION_ID_SYSTEM, "value": institution},
    }


def _pseudonym(kind: str, pseudonym: str) -> Json:
    return {"type": kind, "identifier": {"system": PSEUDONYM_SYSTEM, "value": pseudonym}}


def _coding(system: str, code: str | None, display: str | None = None) -> Json:
    coding: Json = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def _concept(system: str, code: str | None, display: str | None = None) -> Json:
    return {"coding": [_coding(system, code, display)]}


def _instant(value: datetime) -> str:
    return value.isoformat()


def _validated(model: type[FhirConsent] | type[FhirAuditEvent], resource: Json) -> Json:
    """The library's own JSON of ``resource``: what is returned is what it validated."""
    dumped: Json = model.model_validate(resource).model_dump(mode="json")
    return dumped
