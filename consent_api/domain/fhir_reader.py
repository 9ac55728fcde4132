"""Reading FHIR R4 Consent JSON into a ``Consent``, refusing whole what cannot be expressed.

Every element of the resource is either understood, on a short list of informational elements
that carry no rule (narrative, business identifiers, the consent's own classification and
source document...), or the cause of an ``UnsupportedConsentError`` naming it. The reader
tracks which keys it consumed at every level, so an element it has never heard of is refused
too: nothing is ever half-applied.

Mapping (the reverse of ``fhir.consent_to_fhir``):

- ``id`` -> ``consent_id``; ``meta.versionId`` -> ``version`` (1 when absent);
  ``dateTime`` -> ``granted_at``; ``status`` active, or inactive with the revoked-at extension.
- ``patient`` and ``performer`` -> pseudonyms: our pseudonym identifier, or a literal reference
  passed to the caller's ``pseudonymise``. No performer, or the patient, is the resident; a
  RelatedPerson is a guardian and needs the guardian-authority-ends extension.
- ``policyRule`` OPTIN / OPTOUT gives the root rule's type when ``provision.type`` is absent
  (R4 forbids a type on the root rule; several HL7 examples set one and it is honoured).
- ``provision.actor``: role PRCP (recipient) -> grantee, an Organization (``resolve_org``) or an
  institution type (our extension); role CST (custodian) -> holder. Within a role any actor
  matches; across roles all must. People as actors are refused.
- ``provision.purpose`` -> purposes, ``provision.class`` (our data-category system) ->
  categories, ``provision.period`` -> period. ``action`` must be access or disclose; a deny
  may name further actions (correct, use...), since denying them cannot widen any access.
- Refused: securityLabel, code, data, dataPeriod, policy, contained, implicitRules,
  modifierExtension, unknown extensions, scopes other than patient-privacy, and permits that
  name no grantee (they would grant every institution).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from typing import Final

from consent_api.domain.consent import (
    MAX_PROVISION_DEPTH,
    Consent,
    Period,
    Provision,
    ProvisionType,
)
from consent_api.domain.errors import InvalidConsentError, UnsupportedConsentError
from consent_api.domain.fhir_actors import Actors, OrgResolver, Pseudonymiser
from consent_api.domain.fhir_json import WHY, JsonNode, codes, coding_of, parse_date, parse_instant
from consent_api.domain.vocab import (
    CONSENT_ACTION_SYSTEM,
    CONSENT_SCOPE_SYSTEM,
    EXT_GUARDIAN_AUTHORITY_ENDS,
    EXT_REVOKED_AT,
    V3_ACT_CODE,
    Category,
    Purpose,
    category_from_coding,
    purpose_from_coding,
)

_INFORMATIONAL: Final = frozenset(
    {
        "text",
        "language",
        "identifier",
        "category",
        "organization",
        "sourceAttachment",
        "sourceReference",
        "verification",
    }
)
"""Consent elements that carry no rule (R4: narrative, business ids, classification for
indexing, the consent's own custodian and source document, verification): read past."""

_ACCESS_ACTIONS: Final = frozenset({"access", "disclose"})
_KNOWN_ACTIONS: Final = frozenset({"collect", "access", "use", "disclose", "correct"})


class Reader:
    """One read of one resource; the caller's resolvers and the zone of date-only values."""

    def __init__(
        self, *, pseudonymise: Pseudonymiser | None, resolve_org: OrgResolver, date_zone: tzinfo
    ) -> None:
        self._actors = Actors(pseudonymise=pseudonymise, resolve_org=resolve_org)
        self._zone = date_zone

    def consent(self, resource: Mapping[str, object]) -> Consent:
        root = JsonNode(resource, "Consent")
        if root.raw("resourceType") != "Consent":
            raise InvalidConsentError("resourceType is not Consent")
        root.ignore(*_INFORMATIONAL)
        consent_id = root.text("id")
        if consent_id is None:
            raise InvalidConsentError("Consent.id is required: it becomes the consent id")
        version = self._version(root.child("meta"))
        status, revoked_at, ends = self._status_and_extensions(root)
        self._scope(root)
        patient = root.child("patient")
        if patient is None:
            raise InvalidConsentError("Consent.patient is required")
        subject = self._actors.person(patient, "Patient")
        grantor = self._actors.grantor(root.children("performer"), patient, subject)
        stamp = root.text("dateTime")
        if stamp is None:
            raise InvalidConsentError("Consent.dateTime is required: it is the time of grant")
        granted_at = self._instant(stamp, f"{root.path}.dateTime", end=False)
        base = self._policy_rule(root.child("policyRule"))
        tree = root.child("provision")
        if tree is None:
            raise root.unsupported("provision", "a consent without rules grants nothing")
        root.done()
        rule = self._rule(tree, parent=None, base=base, scoped=False, depth=0)
        if len(rule.grantees) > 1:
            raise tree.unsupported("actor", "a consent names one grantee; write one per grantee")
        if grantor.kind == "guardian" and ends is None:
            raise root.unsupported(
                "performer", "a guardian's consent needs the guardian-authority-ends extension"
            )
        return self._build(
            consent_id=consent_id,
            subject=subject,
            version=version,
            grantor=grantor,
            type=rule.type,
            grantee=next(iter(rule.grantees), None),
            holders=rule.holders,
            categories=rule.categories,
            purposes=rule.purposes,
            period=rule.period,
            provisions=rule.provisions,
            guardian_authority_ends=ends,
            status=status,
            granted_at=granted_at,
            revoked_at=revoked_at,
        )

    @staticmethod
    def _build(**fields: object) -> Consent:
        try:
            return Consent.model_validate(fields)
        except ValueError as error:  # pydantic's ValidationError is a ValueError
            raise InvalidConsentError(f"Consent: {error}") from error

    def _version(self, meta: JsonNode | None) -> int:
        if meta is None:
            return 1
        meta.ignore("lastUpdated", "source", "profile", "security", "tag")
        value = meta.text("versionId")
        meta.done()
        if value is None:
            return 1
        if not value.isdigit() or int(value) < 1:
            raise meta.unsupported("versionId", "the version must be a positive integer")
        return int(value)

    def _status_and_extensions(self, root: JsonNode) -> tuple[str, datetime | None, date | None]:
        revoked_at: datetime | None = None
        ends: date | None = None
        for ext in root.children("extension"):
            url = ext.text("url")
            if url == EXT_REVOKED_AT:
                revoked_at = self._instant(ext.required_text("valueDateTime"), ext.path, end=False)
            elif url == EXT_GUARDIAN_AUTHORITY_ENDS:
                ends = parse_date(ext.required_text("valueDate"), ext.path)
            else:
                raise ext.unsupported("url", WHY["extension"])
            ext.done()
        status = root.text("status")
        if status == "active" and revoked_at is None:
            return "active", None, ends
        if status == "inactive" and revoked_at is not None:
            return "revoked", revoked_at, ends
        raise root.unsupported(
            "status", "only active, or inactive with a revocation time, can be recorded"
        )

    def _scope(self, root: JsonNode) -> None:
        scope = root.child("scope")
        scopes = codes(scope) if scope is not None else set()
        if (CONSENT_SCOPE_SYSTEM, "patient-privacy") not in scopes:
            raise root.unsupported("scope", "only privacy consents (patient-privacy) are supported")

    def _policy_rule(self, rule: JsonNode | None) -> ProvisionType | None:
        if rule is None:
            return None
        policies = codes(rule)
        if policies == {(V3_ACT_CODE, "OPTIN")}:
            return "permit"
        if policies == {(V3_ACT_CODE, "OPTOUT")}:
            return "deny"
        raise UnsupportedConsentError("only v3-ActCode OPTIN or OPTOUT is understood", rule.path)

    def _rule(
        self,
        node: JsonNode,
        *,
        parent: ProvisionType | None,
        base: ProvisionType | None,
        scoped: bool,
        depth: int,
    ) -> Provision:
        """One provision and its exceptions; the root comes back as a Provision too."""
        if depth > MAX_PROVISION_DEPTH:
            raise node.unsupported("provision", f"rules nest deeper than {MAX_PROVISION_DEPTH}")
        own = self._type(node, parent=parent, base=base)
        grantees, holders = self._actors.actors(node)
        here_scoped = scoped or bool(grantees)
        if own == "permit" and not here_scoped:
            raise node.unsupported(
                "actor", "a permit must name its recipient (role PRCP): this one permits anyone"
            )
        self._actions(node, own)
        period_node = node.child("period")
        period = self._period(period_node) if period_node is not None else Period()
        purposes = frozenset(self._purpose(c) for c in node.children("purpose"))
        categories = frozenset(self._category(c) for c in node.children("class"))
        exceptions = node.children("provision")
        node.done()  # refuse this rule's own unknown elements before looking deeper
        nested = tuple(
            self._rule(child, parent=own, base=None, scoped=here_scoped, depth=depth + 1)
            for child in exceptions
        )
        try:
            return Provision(
                type=own,
                grantees=grantees,
                holders=holders,
                categories=categories,
                purposes=purposes,
                period=period,
                provisions=nested,
            )
        except ValueError as error:
            raise InvalidConsentError(f"{node.path}: {error}") from error

    @staticmethod
    def _type(
        node: JsonNode, *, parent: ProvisionType | None, base: ProvisionType | None
    ) -> ProvisionType:
        declared = node.text("type")
        own: ProvisionType
        if declared == "permit":
            own = "permit"
        elif declared == "deny":
            own = "deny"
        elif declared is not None:
            raise node.unsupported("type", "permit or deny")
        elif parent is not None:
            raise node.unsupported("type", "nested rules need a type (R4)")
        elif base is None:
            raise node.unsupported("type", "neither a type nor a policyRule says permit or deny")
        else:
            own = base
        if parent is not None and own == parent:
            raise node.unsupported(
                "type", f"a {own} nested in a {parent} is no exception to it: its intent is unclear"
            )
        return own

    def _actions(self, node: JsonNode, own: ProvisionType) -> None:
        actions = node.children("action")
        if not actions:
            return  # no action named: the rule covers every action, access among them
        pairs = {pair for action in actions for pair in codes(action)}
        names = {code for system, code in pairs if system == CONSENT_ACTION_SYSTEM and code}
        if len(names) != len(pairs) or not names <= _KNOWN_ACTIONS:
            raise node.unsupported("action", "only consentaction codes are understood")
        if not names & _ACCESS_ACTIONS:
            raise node.unsupported("action", "a rule that does not cover access is out of scope")
        if own == "permit" and names - _ACCESS_ACTIONS:
            extra = ", ".join(sorted(names - _ACCESS_ACTIONS))
            raise node.unsupported("action", f"permitting {extra} cannot be recorded")

    def _period(self, node: JsonNode) -> Period:
        start, end = node.text("start"), node.text("end")
        node.done()
        try:
            return Period(
                start=None if start is None else self._instant(start, node.path, end=False),
                end=None if end is None else self._instant(end, node.path, end=True),
            )
        except ValueError as error:
            raise InvalidConsentError(f"{node.path}: {error}") from error

    @staticmethod
    def _purpose(coding: JsonNode) -> Purpose:
        purpose = purpose_from_coding(*coding_of(coding))
        if purpose is None:
            raise UnsupportedConsentError("purpose of use not known to this ledger", coding.path)
        return purpose

    @staticmethod
    def _category(coding: JsonNode) -> Category:
        category = category_from_coding(*coding_of(coding))
        if category is None:
            raise UnsupportedConsentError(WHY["class"], coding.path)
        return category

    def _instant(self, value: str, path: str, *, end: bool) -> datetime:
        return parse_instant(value, path, zone=self._zone, end=end)
