"""What each HL7 R4 Consent example means, and what the ledger does with it.

Each example has a row in words (who, what, for what, permit or deny, from its narrative and
its structure), the elements that block its import (every one, in document order), and, when it
imports as written or once written explicitly, the decisions it must yield. No example is ever
given a meaning its FHIR structure does not state: an untyped root rule is refused at
``Consent.provision.type``, whatever ``policyRule`` says, since HL7's examples use OPTIN for a
grant (basic) and for withholdings (notThem, notTime).

- basic: permit, all PHI held at Good Health (f001), for treatment. OPTIN, untyped root, a
  period. Refused: type; typed permit, it still names no recipient.
- notTime: deny, data of a time frame to any provider. OPTIN, untyped root, a period.
  Refused: type; typed deny, it imports (in force in January 2015 only).
- notThem: deny, one nurse (Practitioner/f204). OPTIN, untyped root. Refused: type and actor.
- notOrg: deny, everything to Good Health Clinic (f001). Typed deny. Imported and enforced.
- Out: deny, everything held at the psychiatric hospital (f001). OPTOUT, untyped root with a
  custodian. Refused: type; typed deny, it imports and is enforced as it reads.
- Emergency: deny at f001 except for emergency treatment. OPTOUT, untyped root, a deny in it.
  Refused: type; typed deny, a deny in a deny is no exception; written as it reads, imported.
- pkb: deny by sensitivity labels. OPTOUT, untyped rules. Refused: every type, every label.
- signature: permit one practitioner. OPTIN, untyped root. Refused: five elements.

Then probes of our own in the same style: untyped roots under each policy rule with actors of
each role, nested types, actors of each role, unregistered institutions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from consent_api.domain.consent import RESIDENT, Consent, Grantee
from consent_api.domain.decide import AccessRequest, decide
from consent_api.domain.errors import UnsupportedConsentError
from consent_api.domain.fhir import consent_from_fhir, consent_to_fhir
from consent_api.domain.fhir_reader import UNTYPED_ROOT
from consent_api.domain.vocab import (
    EXT_INSTITUTION_TYPE,
    INSTITUTION_ID_SYSTEM,
    INSTITUTION_TYPE_SYSTEM,
    V3_ACT_CODE,
    V3_ACT_REASON,
    V3_PARTICIPATION_TYPE,
    Category,
    InstitutionType,
    Purpose,
)
from tests.paths import FHIR

EXAMPLES = FHIR / "consent"
LATER = datetime(2016, 6, 1, tzinfo=UTC)
P = "Consent.provision"
Json = dict[str, Any]
Edit = Callable[[Json], None]


def pseudonymise(reference: str) -> str:
    return "ps-" + reference.split("/", 1)[1]


def example(name: str) -> Json:
    data: Json = json.loads((EXAMPLES / f"Consent-consent-example-{name}.json").read_text())
    return data


def read(resource: Json, **kwargs: Any) -> Consent:
    return consent_from_fhir(resource, pseudonymise=pseudonymise, **kwargs)


def blockers_of(resource: Json, **kwargs: Any) -> list[str]:
    with pytest.raises(UnsupportedConsentError) as refused:
        read(resource, **kwargs)
    return [b.path for b in refused.value.blockers]


@dataclass(frozen=True)
class Ask:
    """A request in words: requester (and its type), holder, purpose, category."""

    requester: str
    holder: str
    purpose: Purpose = Purpose.TREATMENT
    category: Category = Category.LAB_RESULTS
    requester_type: InstitutionType = InstitutionType.HOSPITAL

    def at(self, subject: str, when: datetime) -> AccessRequest:
        return AccessRequest(
            requester=self.requester,
            requester_type=self.requester_type,
            holder=self.holder,
            subject=subject,
            categories=frozenset({self.category}),
            purpose=self.purpose,
            at=when,
        )


def open_to_every_hospital(subject: str) -> Consent:
    """Another consent of the resident, older than the examples: what a deny must veto."""
    return Consent(
        consent_id="c-open",
        subject=subject,
        version=1,
        grantor=RESIDENT,
        grantee=Grantee(institution_type=InstitutionType.HOSPITAL),
        granted_at=datetime(2014, 1, 1, tzinfo=UTC),
    )


def decisions(consent: Consent, asks: list[Ask], *, with_open: bool) -> list[str]:
    records = [consent, open_to_every_hospital(consent.subject)] if with_open else [consent]
    return [decide(a.at(consent.subject, LATER), records).decision for a in asks]


def recipient(reference: Json) -> Json:
    return {"role": {"coding": [{"system": V3_PARTICIPATION_TYPE, "code": "PRCP"}]}, **reference}


def custodian(reference: Json) -> Json:
    return {"role": {"coding": [{"system": V3_PARTICIPATION_TYPE, "code": "CST"}]}, **reference}


def org(ident: str) -> Json:
    return {"reference": {"reference": f"Organization/{ident}"}}


EVERY_HOSPITAL = {
    "reference": {
        "extension": [
            {
                "url": EXT_INSTITUTION_TYPE,
                "valueCoding": {"system": INSTITUTION_TYPE_SYSTEM, "code": "hospital"},
            }
        ]
    }
}


def typed(kind: str) -> Edit:
    def edit(resource: Json) -> None:
        resource["provision"]["type"] = kind

    return edit


def emergency_as_its_narrative_reads(resource: Json) -> None:
    """Deny everything held at f001, except emergency treatment (for any hospital)."""
    provision = resource["provision"]
    provision["type"] = "deny"
    del provision["purpose"]
    provision["provision"] = [
        {
            "type": "permit",
            "purpose": [{"system": V3_ACT_REASON, "code": "ETREAT"}],
            "actor": [recipient(EVERY_HOSPITAL)],
        }
    ]


@dataclass(frozen=True)
class Meaning:
    """One example: what it says in words, its blockers, and the decisions it must yield."""

    reads: str
    blockers: list[str]
    explicit: Edit | None = None
    """The example with its effect written explicitly (no meaning added beyond its text)."""
    blockers_when_explicit: list[str] = field(default_factory=list)
    permits: list[Ask] = field(default_factory=list)
    denies: list[Ask] = field(default_factory=list)
    vetoes_others: bool = False
    """A deny: checked against an older permit for every hospital, which it must override."""


MEANINGS: dict[str, Meaning] = {
    "basic": Meaning(
        "permit: every record held at Good Health (f001) for treatment, to no one named",
        [f"{P}.type"],
        explicit=typed("permit"),
        blockers_when_explicit=[f"{P}.actor"],  # a permit to anyone: no recipient is named
    ),
    "notTime": Meaning(
        "deny: records of January 2015, to any provider",
        [f"{P}.type"],
        explicit=typed("deny"),
        blockers_when_explicit=[],  # imports; its period ended before it was dated
        permits=[Ask("h2", "f001")],  # in force only in January 2015: the older permit stands
        vetoes_others=True,
    ),
    "notThem": Meaning(
        "deny: the nurse Practitioner/f204, access and correction",
        [f"{P}.type", f"{P}.actor[0].reference.reference"],
        explicit=typed("deny"),
        blockers_when_explicit=[f"{P}.actor[0].reference.reference"],
    ),
    "notOrg": Meaning(
        "deny: Good Health Clinic (f001), every record, every purpose, access and correction",
        [],
        permits=[Ask("h2", "h3"), Ask("h2", "f001")],
        denies=[
            Ask("f001", "h3"),
            *(Ask("f001", "h3", purpose=p) for p in Purpose),
            Ask("f001", "f001", category=Category.IMAGING),
        ],
        vetoes_others=True,
    ),
    "Out": Meaning(
        "deny: every record held at the psychiatric hospital (f001), to anyone",
        [f"{P}.type"],
        explicit=typed("deny"),
        permits=[Ask("h2", "h3"), Ask("f001", "h3")],
        denies=[Ask("h2", "f001"), Ask("h3", "f001", purpose=Purpose.REFERRAL)],
        vetoes_others=True,
    ),
    "Emergency": Meaning(
        "deny: every record held at f001, except for emergency treatment",
        [f"{P}.type"],
        explicit=typed("deny"),
        # a deny nested in a deny is no exception: the structure does not say "except"
        blockers_when_explicit=[f"{P}.provision[0].type"],
    ),
    "pkb": Meaning(
        "deny, by sensitivity (psychiatry, sexual health...): labels requests do not carry",
        [
            f"{P}.type",
            f"{P}.securityLabel",
            *(f"{P}.provision[{i}].{e}" for i in range(11) for e in ("type", "securityLabel")),
        ],
    ),
    "signature": Meaning(
        "permit: Practitioner/13, CDA documents authored by another practitioner",
        [
            f"{P}.type",
            f"{P}.actor[0].reference.reference",
            f"{P}.provision[0].actor[0].role",
            f"{P}.provision[0].class[0]",
            f"{P}.provision[0].code",
        ],
    ),
}


def test_every_example_has_a_meaning() -> None:
    found = {p.stem.removeprefix("Consent-consent-example-") for p in EXAMPLES.glob("*.json")}
    assert set(MEANINGS) == found


@pytest.mark.parametrize("name", list(MEANINGS))
def test_each_example_as_written(name: str) -> None:
    meaning = MEANINGS[name]
    resource = example(name)
    if meaning.blockers:
        assert blockers_of(resource) == meaning.blockers, meaning.reads
        return
    consent = read(resource)
    assert consent_from_fhir(consent_to_fhir(consent)) == consent
    assert_decisions(consent, meaning)


@pytest.mark.parametrize("name", [n for n, m in MEANINGS.items() if m.explicit is not None])
def test_each_example_written_explicitly(name: str) -> None:
    meaning = MEANINGS[name]
    resource = example(name)
    assert meaning.explicit is not None
    meaning.explicit(resource)
    if meaning.blockers_when_explicit:
        assert blockers_of(resource) == meaning.blockers_when_explicit, meaning.reads
        return
    consent = read(resource)
    assert consent_from_fhir(consent_to_fhir(consent)) == consent
    assert_decisions(consent, meaning)


def assert_decisions(consent: Consent, meaning: Meaning) -> None:
    asks = meaning.permits + meaning.denies
    expected = ["permit"] * len(meaning.permits) + ["deny"] * len(meaning.denies)
    assert decisions(consent, asks, with_open=meaning.vetoes_others) == expected, meaning.reads
    if meaning.vetoes_others:  # a deny alone permits nothing
        assert set(decisions(consent, asks, with_open=False)) <= {"deny"}


def test_the_untyped_root_refusal_says_what_to_add() -> None:
    with pytest.raises(UnsupportedConsentError) as refused:
        read(example("Out"))
    assert str(refused.value) == f"{P}.type: {UNTYPED_ROOT}"
    assert '"type": "deny"' in UNTYPED_ROOT


def test_emergency_written_as_its_narrative_reads() -> None:
    resource = example("Emergency")
    emergency_as_its_narrative_reads(resource)
    consent = read(resource)
    meaning = Meaning(
        "deny at f001 except emergency treatment",
        [],
        permits=[Ask("h2", "f001", purpose=Purpose.EMERGENCY, category=Category.EMERGENCY_STROKE)],
        denies=[
            Ask("h2", "f001"),
            Ask(
                "c9",
                "f001",
                purpose=Purpose.EMERGENCY,
                requester_type=InstitutionType.CLINIC,
            ),
        ],
    )
    assert_decisions(consent, meaning)


# --- probes: untyped roots, nested types, actors of each role --------------------------------


def probe(*, policy: str | None, provision: Json) -> Json:
    """A minimal valid Consent with ``provision`` and the policy rule ``policy``."""
    resource: Json = {
        "resourceType": "Consent",
        "id": "probe",
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
        "patient": {"reference": "Patient/p1"},
        "dateTime": "2016-01-01T00:00:00+00:00",
        "provision": provision,
    }
    if policy is not None:
        resource["policyRule"] = {"coding": [{"system": V3_ACT_CODE, "code": policy}]}
    return resource


ACTORS: dict[str, list[Json]] = {
    "no actor": [],
    "a recipient": [recipient(org("h2"))],
    "a custodian": [custodian(org("f001"))],
    "a recipient and a custodian": [recipient(org("h2")), custodian(org("f001"))],
    "every hospital as recipient": [recipient(EVERY_HOSPITAL)],
}


@pytest.mark.parametrize("policy", ["OPTIN", "OPTOUT", None])
@pytest.mark.parametrize("actors", list(ACTORS))
def test_an_untyped_root_is_refused_under_any_policy_rule(policy: str | None, actors: str) -> None:
    """OPTIN + a custodian once became a permit when a recipient was added; OPTOUT + a
    recipient once became a deny vetoing the resident's permits. Neither is inferred now."""
    provision: Json = {"actor": ACTORS[actors]} if ACTORS[actors] else {}
    assert blockers_of(probe(policy=policy, provision=provision)) == [f"{P}.type"]


@pytest.mark.parametrize("policy", ["OPTIN", "OPTOUT", None])
@pytest.mark.parametrize("kind", ["permit", "deny"])
def test_a_typed_root_means_its_type_under_any_policy_rule(policy: str | None, kind: str) -> None:
    resource = probe(policy=policy, provision={"type": kind, "actor": [recipient(org("h2"))]})
    consent = read(resource)
    assert (consent.type, consent.grantee) == (kind, Grantee(institution="h2"))
    request = Ask("h2", "f001").at(consent.subject, LATER)
    assert decide(request, [consent]).decision == kind


NESTED: dict[str, tuple[Json, list[str]]] = {
    "a deny in a permit": (
        {
            "type": "permit",
            "actor": [recipient(org("h2"))],
            "provision": [{"type": "deny", "actor": [custodian(org("f001"))]}],
        },
        [],
    ),
    "a permit in a deny": (
        {"type": "deny", "provision": [{"type": "permit", "actor": [recipient(org("h2"))]}]},
        [],
    ),
    "an untyped rule in a permit": (
        {"type": "permit", "actor": [recipient(org("h2"))], "provision": [{}]},
        [f"{P}.provision[0].type"],
    ),
    "an untyped rule in an untyped root": (
        {"actor": [recipient(org("h2"))], "provision": [{"actor": [custodian(org("f001"))]}]},
        [f"{P}.type", f"{P}.provision[0].type"],
    ),
    "a permit in a permit": (
        {"type": "permit", "actor": [recipient(org("h2"))], "provision": [{"type": "permit"}]},
        [f"{P}.provision[0].type"],
    ),
    "a deny in a deny": (
        {"type": "deny", "provision": [{"type": "deny", "actor": [custodian(org("f001"))]}]},
        [f"{P}.provision[0].type"],
    ),
    "a permit to anyone in a deny": (
        {"type": "deny", "provision": [{"type": "permit"}]},
        [f"{P}.provision[0].actor"],
    ),
}


@pytest.mark.parametrize("name", list(NESTED))
def test_nested_types(name: str) -> None:
    provision, expected = NESTED[name]
    resource = probe(policy="OPTIN", provision=provision)
    if expected:
        assert blockers_of(resource) == expected
    else:
        consent = read(resource)
        assert consent_from_fhir(consent_to_fhir(consent)) == consent


def deny_with(actor: Json) -> Json:
    return probe(policy=None, provision={"type": "deny", "actor": [actor]})


def by_identifier(ident: str) -> Json:
    return {"reference": {"identifier": {"system": INSTITUTION_ID_SYSTEM, "value": ident}}}


def with_role(code: str) -> Json:
    return {"role": {"coding": [{"system": V3_PARTICIPATION_TYPE, "code": code}]}, **org("h2")}


REGISTERED = {"h2", "f001"}.__contains__
ROLES: dict[str, tuple[Json, str | None]] = {
    "a registered recipient": (recipient(org("h2")), None),
    "a registered recipient by identifier": (recipient(by_identifier("h2")), None),
    "a registered custodian": (custodian(org("f001")), None),
    "every hospital as recipient": (recipient(EVERY_HOSPITAL), None),
    "an unregistered recipient": (
        recipient(org("no-such-hospital")),
        f"{P}.actor[0].reference.reference",
    ),
    "an unregistered recipient by identifier": (
        recipient(by_identifier("no-such-hospital")),
        f"{P}.actor[0].reference.identifier",
    ),
    "an unregistered custodian": (
        custodian(org("no-such-hospital")),
        f"{P}.actor[0].reference.reference",
    ),
    "an author": (with_role("AUT"), f"{P}.actor[0].role"),
    "an information recipient (IRCP)": (with_role("IRCP"), f"{P}.actor[0].role"),
    "a practitioner recipient": (
        recipient({"reference": {"reference": "Practitioner/p1"}}),
        f"{P}.actor[0].reference.reference",
    ),
    "a practitioner custodian": (
        custodian({"reference": {"reference": "Practitioner/p1"}}),
        f"{P}.actor[0].reference.reference",
    ),
    "a related person recipient": (
        recipient({"reference": {"reference": "RelatedPerson/r1"}}),
        f"{P}.actor[0].reference.reference",
    ),
}


@pytest.mark.parametrize("name", list(ROLES))
def test_actors_of_each_role(name: str) -> None:
    actor, blocked_at = ROLES[name]
    resource = deny_with(actor)
    if blocked_at is not None:
        assert blockers_of(resource, is_institution=REGISTERED) == [blocked_at]
        return
    consent = read(resource, is_institution=REGISTERED)
    assert consent.grantee is not None or consent.holders


def test_every_blocker_is_listed_in_document_order() -> None:
    """One refusal names all: a sender fixes everything in one round."""
    resource = probe(
        policy="OPTIN",
        provision={
            "type": "permit",
            "actor": [recipient(org("no-such-hospital")), with_role("AUT")],
            "data": [{"meaning": "instance", "reference": {"reference": "Observation/1"}}],
            "purpose": [{"system": V3_ACT_REASON, "code": "HMARKT"}],
            "provision": [{"securityLabel": [{"system": V3_ACT_CODE, "code": "PSY"}]}],
        },
    )
    resource["implicitRules"] = "https://example.org/rules"
    assert blockers_of(resource, is_institution=REGISTERED) == [
        "Consent.implicitRules",
        f"{P}.actor[0].reference.reference",
        f"{P}.actor[1].role",
        f"{P}.purpose[0]",
        f"{P}.data",
        f"{P}.provision[0].type",
        f"{P}.provision[0].securityLabel",
    ]


def test_data_is_blamed_on_data_not_on_the_actor() -> None:
    """A permit to a named recipient restricted to some resources: ``data`` blocks it."""
    resource = probe(
        policy="OPTIN",
        provision={
            "type": "permit",
            "actor": [recipient(org("h2"))],
            "data": [{"meaning": "instance", "reference": {"reference": "Observation/1"}}],
        },
    )
    assert blockers_of(resource, is_institution=REGISTERED) == [f"{P}.data"]


def test_the_ledgers_own_output_states_the_root_type() -> None:
    consent = read(probe(policy=None, provision={"type": "deny", "actor": [custodian(org("x"))]}))
    written = consent_to_fhir(consent)
    assert written["provision"]["type"] == "deny"
    assert read(copy.deepcopy(written)) == consent
