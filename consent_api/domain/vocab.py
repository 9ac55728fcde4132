"""The closed vocabularies of the consent domain and the FHIR codes each value is written as.

Values are kebab-case strings, stable on the wire and in ledger leaves. Where HL7 has an exact
code (v3-ActReason TREAT, ETREAT, HRESCH) it is used; everything else lives in this project's
own code systems under ``FHIR_BASE``, so nothing is mapped onto a near-miss standard code.
"""

import re
from enum import StrEnum
from typing import Final


class Category(StrEnum):
    """A category of health data a consent can cover."""

    LAB_RESULTS = "lab-results"
    IMAGING = "imaging"
    PRESCRIPTIONS = "prescriptions"
    DISCHARGE_SUMMARIES = "discharge-summaries"
    EMERGENCY_CHEST_PAIN = "emergency-chest-pain"
    EMERGENCY_STROKE = "emergency-stroke"
    EMERGENCY_TRAUMA = "emergency-trauma"
    EMERGENCY_NEONATAL = "emergency-neonatal"
    EMERGENCY_MATERNAL = "emergency-maternal"


class Purpose(StrEnum):
    """Why a requester wants the data; ``emergency`` is the break-glass purpose."""

    TREATMENT = "treatment"
    REFERRAL = "referral"
    REMOTE_CONSULTATION = "remote-consultation"
    FAMILY_DOCTOR = "family-doctor"
    RESEARCH = "research"
    EMERGENCY = "emergency"


class InstitutionType(StrEnum):
    """The kinds of institution on the platform; a consent may name a whole kind as grantee."""

    HOSPITAL = "hospital"
    CLINIC = "clinic"
    FAMILY_DOCTOR_TEAM = "family-doctor-team"


EMERGENCY_CATEGORIES: Final = frozenset(
    {
        Category.EMERGENCY_CHEST_PAIN,
        Category.EMERGENCY_STROKE,
        Category.EMERGENCY_TRAUMA,
        Category.EMERGENCY_NEONATAL,
        Category.EMERGENCY_MATERNAL,
    }
)
EMERGENCY_PURPOSES: Final = frozenset({Purpose.EMERGENCY})

# --- FHIR systems -------------------------------------------------------------------------

FHIR_BASE: Final = "https://fhir.consent-ledger.example"
CATEGORY_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/data-category"
PURPOSE_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/purpose"
INSTITUTION_TYPE_SYSTEM: Final = f"{FHIR_BASE}/CodeSystem/institution-type"
INSTITUTION_ID_SYSTEM: Final = f"{FHIR_BASE}/sid/institution"
PSEUDONYM_SYSTEM: Final = f"{FHIR_BASE}/sid/pseudonym"
LEAF_INDEX_SYSTEM: Final = f"{FHIR_BASE}/sid/log-leaf"
EXT_INSTITUTION_TYPE: Final = f"{FHIR_BASE}/StructureDefinition/institution-type"
EXT_GUARDIAN_AUTHORITY_ENDS: Final = f"{FHIR_BASE}/StructureDefinition/guardian-authority-ends"
EXT_REVOKED_AT: Final = f"{FHIR_BASE}/StructureDefinition/revoked-at"

V3_ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONSENT_SCOPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentaction"
LOINC: Final = "http://loinc.org"

PURPOSE_CODINGS: Final[dict[Purpose, tuple[str, str]]] = {
    Purpose.TREATMENT: (V3_ACT_REASON, "TREAT"),
    Purpose.REFERRAL: (PURPOSE_SYSTEM, "referral"),
    Purpose.REMOTE_CONSULTATION: (PURPOSE_SYSTEM, "remote-consultation"),
    Purpose.FAMILY_DOCTOR: (PURPOSE_SYSTEM, "family-doctor"),
    Purpose.RESEARCH: (V3_ACT_REASON, "HRESCH"),
    Purpose.EMERGENCY: (V3_ACT_REASON, "ETREAT"),
}
"""How each purpose is written in ``provision.purpose`` and ``AuditEvent.purposeOfEvent``."""

_PURPOSE_VALUES: Final = frozenset(p.value for p in Purpose)
_CATEGORY_VALUES: Final = frozenset(c.value for c in Category)
_INSTITUTION_TYPE_VALUES: Final = frozenset(t.value for t in InstitutionType)


def purpose_from_coding(system: str | None, code: str | None) -> Purpose | None:
    """The purpose a coding stands for, or None; our own system is accepted for every purpose."""
    if system == PURPOSE_SYSTEM and code in _PURPOSE_VALUES:
        return Purpose(code)
    for purpose, coding in PURPOSE_CODINGS.items():
        if coding == (system, code):
            return purpose
    return None


def category_from_coding(system: str | None, code: str | None) -> Category | None:
    """The data category a ``provision.class`` coding stands for, or None."""
    if system == CATEGORY_SYSTEM and code in _CATEGORY_VALUES:
        return Category(code)
    return None


def institution_type_from_code(code: str | None) -> InstitutionType | None:
    """The institution type a code of ``INSTITUTION_TYPE_SYSTEM`` stands for, or None."""
    if code in _INSTITUTION_TYPE_VALUES:
        return InstitutionType(code)
    return None


INSTITUTION_ID_PATTERN: Final = r"^[A-Za-z0-9\-.]{1,64}$"
"""The FHIR ``id`` syntax: an institution id can name an Organization resource as it is."""


def is_institution_id(value: str) -> bool:
    """Whether ``value`` is an institution id, the whole string (``re.match`` and ``$`` would
    let a trailing newline through)."""
    return re.fullmatch(INSTITUTION_ID_PATTERN, value) is not None
