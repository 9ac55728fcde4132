"""Who a FHIR Consent names: the patient and consenter as pseudonyms, actors as institutions.

People are never taken in by name: a literal ``Patient/...`` or ``RelatedPerson/...``
reference goes through the caller's ``pseudonymise``; this ledger's own output names them by
pseudonym identifier. Organizations become platform institution ids through ``resolve_org``
(literal references) or by our institution identifier, and must be registered
(``is_institution``); "every institution of a type" is a
Reference carrying our institution-type extension. Individual people as actors (a nurse, a
practitioner) are refused: consents here grant institutions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Final

from consent_api.domain.consent import RESIDENT, Grantee, Grantor
from consent_api.domain.fhir_json import Blockers, JsonNode, codes, coding_of
from consent_api.domain.vocab import (
    EXT_INSTITUTION_TYPE,
    INSTITUTION_ID_SYSTEM,
    INSTITUTION_TYPE_SYSTEM,
    PSEUDONYM_SYSTEM,
    V3_PARTICIPATION_TYPE,
    institution_type_from_code,
    is_institution_id,
)

OrgResolver = Callable[[str], str | None]
"""``Organization/<id>`` -> platform institution id, or None when it is not one of ours."""

Pseudonymiser = Callable[[str], str]
"""A literal Patient or RelatedPerson reference -> that person's pseudonym."""

InstitutionCheck = Callable[[str], bool]
"""Whether a platform institution id is registered (a grantee or holder must be)."""

_PEOPLE: Final = frozenset(
    {"Practitioner", "PractitionerRole", "RelatedPerson", "Patient", "CareTeam", "Group", "Device"}
)
_RECIPIENT: Final = {(V3_PARTICIPATION_TYPE, "PRCP")}
_CUSTODIAN: Final = {(V3_PARTICIPATION_TYPE, "CST")}


def organization_id(reference: str) -> str | None:
    """The default ``resolve_org``: ``Organization/<id>`` -> ``<id>``; anything else -> None."""
    kind, _, ident = reference.partition("/")
    if kind != "Organization" or not ident or "/" in ident:
        return None
    return ident


class Actors:
    """Resolves the references of one resource with the caller's functions."""

    def __init__(
        self,
        *,
        pseudonymise: Pseudonymiser | None,
        resolve_org: OrgResolver,
        is_institution: InstitutionCheck | None = None,
    ) -> None:
        self._pseudonymise = pseudonymise
        self._resolve_org = resolve_org
        self._is_institution = is_institution

    def person(self, ref: JsonNode, kind: str) -> str:
        """The pseudonym behind a ``kind`` (Patient or RelatedPerson) reference."""
        ref.ignore("display")
        identifier = ref.child("identifier")
        literal = ref.text("reference")
        declared = ref.text("type")
        ref.done()
        if identifier is not None and literal is None and declared in (None, kind):
            value = _identifier(identifier, PSEUDONYM_SYSTEM)
            if value is not None:
                return value
        literal_ok = literal is not None and literal.startswith(f"{kind}/")
        if literal is not None and literal_ok and identifier is None and declared in (None, kind):
            if self._pseudonymise is None:
                raise ref.unsupported("reference", "no pseudonymise function was given")
            return self._pseudonymise(literal)
        raise ref.unsupported("reference", f"expected a {kind} by reference or pseudonym")

    def grantor(self, performers: list[JsonNode], patient: JsonNode, subject: str) -> Grantor:
        """The resident (no performer, or the patient themself) or a guardian (RelatedPerson)."""
        if not performers:
            return RESIDENT  # R4 leaves it open; every HL7 example speaks for the patient
        if len(performers) > 1:
            raise performers[1].unsupported("reference", "one consenting person only")
        performer = performers[0]
        if performer.data == patient.data:
            return RESIDENT
        literal = performer.data.get("reference")
        kind = literal.split("/")[0] if isinstance(literal, str) else performer.data.get("type")
        if kind == "RelatedPerson":
            return Grantor(kind="guardian", guardian=self.person(performer, "RelatedPerson"))
        if kind == "Patient" and self.person(performer, "Patient") == subject:
            return RESIDENT
        raise performer.unsupported(
            "reference", "only the resident or a guardian (RelatedPerson) can give consent"
        )

    def actors(self, rule: JsonNode, found: Blockers) -> tuple[frozenset[Grantee], frozenset[str]]:
        """A provision's recipients (PRCP) as grantees and custodians (CST) as holders; each
        actor that cannot be read goes to ``found``."""
        grantees: set[Grantee] = set()
        holders: set[str] = set()
        for actor in rule.children("actor"):
            read = found.attempt(partial(self._actor, actor), None)
            if isinstance(read, Grantee):
                grantees.add(read)
            elif read is not None:
                holders.add(read)
        return frozenset(grantees), frozenset(holders)

    def _actor(self, actor: JsonNode) -> Grantee | str:
        """A recipient as its ``Grantee``, or a custodian as its institution id."""
        role = actor.child("role")
        roles = codes(role) if role is not None else set()
        ref = actor.child("reference")
        actor.done()
        if ref is None:
            raise actor.unsupported("reference", "an actor needs a reference")
        if roles == _RECIPIENT:
            return self._grantee(ref)
        if roles == _CUSTODIAN:
            holder = self._organization(ref)
            if holder is None:
                raise ref.unsupported("reference", "a custodian must be one Organization")
            return holder
        raise actor.unsupported("role", "only recipient (PRCP) and custodian (CST) roles")

    def _grantee(self, ref: JsonNode) -> Grantee:
        literal = ref.data.get("reference")
        if isinstance(literal, str) and literal.split("/")[0] in _PEOPLE:
            raise ref.unsupported(
                "reference", f"{literal}: people as actors are not supported, only institutions"
            )
        institution = self._organization(ref)
        if institution is not None:
            return Grantee(institution=institution)
        ref.ignore("display", "type")
        extensions = ref.children("extension")
        ref.done()
        if len(extensions) == 1 and extensions[0].text("url") == EXT_INSTITUTION_TYPE:
            coding = extensions[0].child("valueCoding")
            extensions[0].done()
            system, code = coding_of(coding) if coding is not None else (None, None)
            kind = institution_type_from_code(code)
            if kind is not None and system == INSTITUTION_TYPE_SYSTEM:
                return Grantee(institution_type=kind)
        raise ref.unsupported("reference", "a recipient is an Organization or an institution type")

    def _organization(self, ref: JsonNode) -> str | None:
        """The institution id of an Organization reference, or None if it is not one."""
        if "extension" in ref.data or ref.data.get("type") not in (None, "Organization"):
            return None
        ref.ignore("display", "type")
        literal = ref.text("reference")
        identifier = ref.child("identifier")
        ref.done()
        institution: str | None = None
        if literal is not None and identifier is None and literal.startswith("Organization/"):
            institution = self._resolve_org(literal)
            if institution is None:
                shown = literal if is_institution_id(literal.removeprefix("Organization/")) else ""
                raise ref.unsupported("reference", f"unknown organization {shown}".rstrip())
            key = "reference"
        elif identifier is not None and literal is None:
            institution = _identifier(identifier, INSTITUTION_ID_SYSTEM)
            key = "identifier"
        if institution is not None and not is_institution_id(institution):
            # Never echoed: it may hold markup, NUL or direction overrides.
            raise ref.unsupported(key, "an institution id is letters, digits, '-' and '.' only")
        if institution is not None and not self._known(institution):
            raise ref.unsupported(key, f"{institution} is not a registered institution")
        return institution

    def _known(self, institution: str) -> bool:
        return self._is_institution is None or self._is_institution(institution)


def _identifier(identifier: JsonNode, system: str) -> str | None:
    """The value of an Identifier in ``system``, or None for any other identifier."""
    identifier.ignore("use", "type", "period", "assigner")
    found, value = identifier.text("system"), identifier.text("value")
    identifier.done()
    return value if found == system and value else None
