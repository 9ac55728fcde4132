"""Reading FHIR R4 Consent JSON into a ``Consent``, refusing whole what cannot be expressed.

Every element of the resource is either understood, on a short list of informational elements
that carry no rule (narrative, business identifiers, the consent's own classification and
source document...), or the cause of an ``UnsupportedConsentError`` naming it. The reader
tracks which keys it consumed at every level, so an element it has never heard of is refused
too: nothing is ever half-applied. Reading goes on past a blocker, so the refusal lists every
element that blocks the import, in document order.

Mapping (the reverse of ``fhir.consent_to_fhir``):

- ``id`` -> ``consent_id``; ``meta.versionId`` -> ``version`` (1 when absent);
  ``dateTime`` -> ``granted_at``; ``status`` active, or inactive with the revoked-at extension.
- ``patient`` and ``performer`` -> pseudonyms: our pseudonym identifier, or a literal reference
  passed to the caller's ``pseudonymise``. No performer, or the patient, is the resident; a
  RelatedPerson is a guardian and needs the guardian-authority-ends extension.
- ``provision.type`` must be written on every rule, the root included. R4 defines it as
  "Action to take - permit or deny - when the rule conditions are met. Not permitted in root
  rule, required in all nested rules", yet gives no rule for the root's effect, and HL7's own
  examples use ``policyRule`` OPTIN for a grant (basic) and for withholdings (notThem, notTime),
  so an untyped root is refused, never typed from ``policyRule``; OPTIN or OPTOUT is accepted
  as information only. This ledger's own output writes the root's type.
- ``provision.actor``: role PRCP (recipient) -> grantee, an Organization (``resolve_org``) or an
  institution type (our extension); role CST (custodian) -> holder; an institution that
  ``is_institution`` does not know is refused. Within a role any actor
  matches; across roles all must. People as actors are refused.
- ``provision.purpose`` -> purposes, ``provision.class`` (our data-category system) ->
  categories, ``provision.period`` -> period. ``action`` must be access or disclose; a deny
  may name further actions (correct, use...), since denying them cannot widen any access.
- Refused: securityLabel, code, data, dataPeriod, policy, contained, implicitRules,
  modifierExtension, unknown extensions, scopes other than patient-privacy, and permits that
  name no grantee (they would grant every institution).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from functools import partial
from typing import Final

from consent_api.domain.consent import (
    MAX_PROVISION_DEPTH,
    RESIDENT,
    Consent,
    Period,
    Provision,
    ProvisionType,
)
from consent_api.domain.errors import InvalidConsentError, UnsupportedConsentError
from consent_api.domain.fhir_actors import Actors, InstitutionCheck, OrgResolver, Pseudonymiser
from consent_api.domain.fhir_json import (
    WHY,
    Blockers,
    JsonNode,
    codes,
    coding_of,
    parse_date,
    parse_instant,
)
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

_POLICY_RULES: Final = ({(V3_ACT_CODE, "OPTIN")}, {(V3_ACT_CODE, "OPTOUT")})
UNTYPED_ROOT: Final = (
    'the root rule does not say whether it permits or denies: add "type": "permit" or '
    '"type": "deny" (policyRule OPTIN or OPTOUT does not say it: HL7\'s own R4 examples use '
    "each for grants and for withholdings)"
)
"""Why an untyped root rule is refused rather than typed from ``policyRule``."""

_ACCESS_ACTIONS: Final = frozenset({"access", "disclose"})
_KNOWN_ACTIONS: Final = frozenset({"collect", "access", "use", "disclose", "correct"})


class Reader:
    """One read of one resource; the caller's resolvers and the zone of date-only values."""

    def __init__(
        self,
        *,
        pseudonymise: Pseudonymiser | None,
        resolve_org: OrgResolver,
        is_institution: InstitutionCheck | None,
        date_zone: tzinfo,
    ) -> None:
        self._actors = Actors(
            pseudonymise=pseudonymise, resolve_org=resolve_org, is_institution=is_institution
        )
        self._zone = date_zone
        self._blockers = Blockers()

    def consent(self, resource: Mapping[str, object]) -> Consent:
        root = JsonNode(resource, "Consent")
        if root.raw("resourceType") != "Consent":
            raise InvalidConsentError("resourceType is not Consent")
        root.ignore(*_INFORMATIONAL)
        consent_id = root.text("id")
        if consent_id is None:
            raise InvalidConsentError("Consent.id is required: it becomes the consent id")
        found = self._blockers
        version = found.attempt(lambda: self._version(root.child("meta")), 1)
        revoked_at, ends = self._extensions(root)
        status = found.attempt(lambda: self._status(root, revoked_at), "active")
        found.attempt(lambda: self._scope(root), None)
        patient = root.child("patient")
        if patient is None:
            raise InvalidConsentError("Consent.patient is required")
        subject = found.attempt(lambda: self._actors.person(patient, "Patient"), "")
        performers = root.children("performer")
        grantor = found.attempt(
            lambda: self._actors.grantor(performers, patient, subject), RESIDENT
        )
        stamp = root.text("dateTime")
        if stamp is None:
            raise InvalidConsentError("Consent.dateTime is required: it is the time of grant")
        granted_at = self._instant(stamp, f"{root.path}.dateTime", end=False)
        found.attempt(lambda: self._policy_rule(root.child("policyRule")), None)
        tree = root.child("provision")
        found.attempt(root.done, None)
        rule: Provision | None = None
        if tree is None:
            found.add(root.unsupported("provision", "a consent without rules grants nothing"))
        else:
            rule = self._rule(tree, parent=None, scoped=False, depth=0)
            if rule is not None and len(rule.grantees) > 1:
                found.add(
                    tree.unsupported("actor", "a consent names one grantee; write one per grantee")
                )
        if grantor.kind == "guardian" and ends is None:
            found.add(
                root.unsupported(
                    "performer", "a guardian's consent needs the guardian-authority-ends extension"
                )
            )
        found.raise_any()
        if rule is None:  # unreachable: a rule that was not read left a blocker
            raise InvalidConsentError("Consent.provision could not be read")
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
        if not re.fullmatch(r"[0-9]{1,18}", value) or int(value) < 1:
            raise meta.unsupported("versionId", "the version must be a positive integer")
        return int(value)

    def _extensions(self, root: JsonNode) -> tuple[datetime | None, date | None]:
        revoked_at: datetime | None = None
        ends: date | None = None
        for ext in root.children("extension"):
            url = ext.text("url")
            if url == EXT_REVOKED_AT:
                revoked_at = self._instant(ext.required_text("valueDateTime"), ext.path, end=False)
            elif url == EXT_GUARDIAN_AUTHORITY_ENDS:
                ends = parse_date(ext.required_text("valueDate"), ext.path)
            else:
                self._blockers.add(ext.unsupported("url", WHY["extension"]))
                continue
            self._blockers.attempt(ext.done, None)
        return revoked_at, ends

    @staticmethod
    def _status(root: JsonNode, revoked_at: datetime | None) -> str:
        status = root.text("status")
        if status == "active" and revoked_at is None:
            return "active"
        if status == "inactive" and revoked_at is not None:
            return "revoked"
        raise root.unsupported(
            "status", "only active, or inactive with a revocation time, can be recorded"
        )

    def _scope(self, root: JsonNode) -> None:
        scope = root.child("scope")
        scopes = codes(scope) if scope is not None else set()
        if (CONSENT_SCOPE_SYSTEM, "patient-privacy") not in scopes:
            raise root.unsupported("scope", "only privacy consents (patient-privacy) are supported")

    @staticmethod
    def _policy_rule(rule: JsonNode | None) -> None:
        """OPTIN and OPTOUT are read as information only: they never give a rule its type."""
        if rule is not None and codes(rule) not in _POLICY_RULES:
            raise UnsupportedConsentError(
                "only v3-ActCode OPTIN or OPTOUT is understood", rule.path
            )

    def _rule(
        self, node: JsonNode, *, parent: ProvisionType | None, scoped: bool, depth: int
    ) -> Provision | None:
        """One provision and its exceptions (the root too), or None if a blocker was found."""
        found = self._blockers
        before = len(found.found)
        if depth > MAX_PROVISION_DEPTH:
            found.add(
                node.unsupported("provision", f"rules nest deeper than {MAX_PROVISION_DEPTH}")
            )
            return None
        own = found.attempt(lambda: self._type(node, parent=parent, nested=depth > 0), None)
        actors_before = len(found.found)
        grantees, holders = self._actors.actors(node, found)
        actors_read = len(found.found) == actors_before
        here_scoped = scoped or bool(grantees)
        if own == "permit" and not here_scoped and actors_read:
            found.add(
                node.unsupported(
                    "actor", "a permit must name its recipient (role PRCP): this one permits anyone"
                )
            )
        if own is not None:
            found.attempt(lambda: self._actions(node, own), None)
        else:
            node.ignore("action")  # which actions are allowed depends on the missing type
        period_node = node.child("period")
        period = self._period(period_node) if period_node is not None else Period()
        purposes = frozenset(
            p
            for c in node.children("purpose")
            if (p := found.attempt(partial(self._purpose, c), None))
        )
        categories = frozenset(
            k
            for c in node.children("class")
            if (k := found.attempt(partial(self._category, c), None))
        )
        exceptions = node.children("provision")
        found.attempt(node.done, None)  # this rule's own unknown elements, before deeper ones
        nested = [
            self._rule(child, parent=own, scoped=here_scoped, depth=depth + 1)
            for child in exceptions
        ]
        if own is None or len(found.found) > before:
            return None
        try:
            return Provision(
                type=own,
                grantees=grantees,
                holders=holders,
                categories=categories,
                purposes=purposes,
                period=period,
                provisions=tuple(p for p in nested if p is not None),
            )
        except ValueError as error:
            raise InvalidConsentError(f"{node.path}: {error}") from error

    @staticmethod
    def _type(node: JsonNode, *, parent: ProvisionType | None, nested: bool) -> ProvisionType:
        declared = node.text("type")
        own: ProvisionType
        if declared == "permit":
            own = "permit"
        elif declared == "deny":
            own = "deny"
        elif declared is not None:
            raise node.unsupported("type", "permit or deny")
        elif nested:
            raise node.unsupported("type", "nested rules need a type (R4): add permit or deny")
        else:
            raise node.unsupported("type", UNTYPED_ROOT)
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
