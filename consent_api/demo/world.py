"""Who lives on the demo platform: institutions, residents, their consents and the day's asks.

All of it is synthetic and follows from the seed (birth dates are relative to ``today``, so a
child stays a child): the same seed plays the same day. Identifiers and names are made up; the
service keeps them encrypted and only pseudonymous subject ids reach the log.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

SPECIALIST: Final = "h-central"
"""Takes referrals: residents consent to it reading what their own hospital holds."""
EMERGENCY_DEPT: Final = "h-north"
CHILDREN_HOSPITAL: Final = "h-stclare"
CLINIC: Final = "c-lakeside"
FAMILY_DOCTORS: Final = "fd-oakstreet"

INSTITUTIONS: Final = (
    (SPECIALIST, "hospital", "Central University Hospital"),
    (EMERGENCY_DEPT, "hospital", "North Regional Hospital"),
    ("h-riverside", "hospital", "Riverside General Hospital"),
    (CHILDREN_HOSPITAL, "hospital", "St Clare Children's Hospital"),
    (CLINIC, "clinic", "Lakeside Diagnostic Clinic"),
    (FAMILY_DOCTORS, "family-doctor-team", "Oak Street Family Doctors"),
)
CONSULTANTS: Final = (SPECIALIST, EMERGENCY_DEPT, "h-riverside")
"""The hospitals asked for a second opinion on an adult's imaging."""
HOMES: Final = (EMERGENCY_DEPT, "h-riverside", CLINIC)
"""Where adults' records are held (the specialist only ever asks)."""

# What each kind of consent permits; "holders" is filled in with the resident's home.
CONSENT_KINDS: Final[dict[str, dict[str, Any]]] = {
    "family-doctor": {
        "grantee": {"institution": FAMILY_DOCTORS},
        "categories": ["lab-results", "prescriptions", "discharge-summaries"],
        "purposes": ["family-doctor"],
    },
    "referral": {
        "grantee": {"institution": SPECIALIST},
        "categories": ["lab-results", "imaging", "discharge-summaries"],
        "purposes": ["referral"],
    },
    "remote-consultation": {
        "grantee": {"institution_type": "hospital"},
        "categories": ["imaging", "lab-results"],
        "purposes": ["remote-consultation"],
    },
    "child-care": {
        "grantee": {"institution": SPECIALIST},
        "categories": ["lab-results", "imaging", "discharge-summaries"],
        "purposes": ["referral", "treatment"],
    },
}
ROLES: Final = ("narrows", "revokes", "stroke", "trauma", "declines")
"""Adults the day's scenes follow; the rest of the population is background."""
MIN_RESIDENTS: Final = 20

_FIRST = ("Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas")
_LAST = ("Amsel", "Berg", "Costa", "Dahl", "Esposito", "Fischer", "Greco", "Holm", "Ivanova")


@dataclass
class Resident:
    number: int
    identifier: str
    name: str
    birth_date: date
    home: str
    """The institution holding their records."""
    guardian: int | None = None
    consent_kinds: tuple[str, ...] = ()
    subject: str = ""
    """Their pseudonymous subject id, once registered."""
    consent_ids: dict[str, str] = field(default_factory=dict)

    def consent_rules(self, kind: str) -> dict[str, Any]:
        rules = {**CONSENT_KINDS[kind], "holders": [self.home]}
        return rules if self.guardian is None else {**rules, "subject": self.subject}


@dataclass(frozen=True)
class Ask:
    """A routine request: ``requester`` wants ``categories`` of ``resident`` for ``purpose``."""

    resident: Resident
    requester: str
    categories: tuple[str, ...]
    purpose: str


@dataclass
class World:
    residents: list[Resident]
    cast: dict[str, Resident]
    """The adults the scenes follow, by role."""
    morning: list[Ask]
    afternoon: list[Ask]

    @property
    def children(self) -> list[Resident]:
        return [r for r in self.residents if r.guardian is not None]

    def grantor_of(self, person: Resident) -> Resident:
        """Who consents for ``person``: themself, or a child's guardian."""
        return person if person.guardian is None else self.residents[person.guardian]


def populate(residents: int, seed: int, today: date) -> World:
    """``residents`` people (about one in sixteen a child with a guardian) and the day's asks."""
    if residents < MIN_RESIDENTS:
        raise ValueError(f"the day needs at least {MIN_RESIDENTS} residents")
    rng = random.Random(seed)
    children = max(1, residents // 16)
    people = []
    for n in range(residents):
        child = n >= residents - children
        years = rng.randrange(1, 13) if child else rng.randrange(18, 91)
        people.append(
            Resident(
                number=n,
                identifier=f"SYN-{seed}-{n:06d}",
                name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                birth_date=today - timedelta(days=years * 365 + rng.randrange(365)),
                home=CHILDREN_HOSPITAL if child else rng.choice(HOMES),
                guardian=rng.randrange(residents - children) if child else None,
            )
        )
    adults = people[: residents - children]
    cast = dict(zip(ROLES, rng.sample(adults, len(ROLES)), strict=True))
    for person in adults:
        person.consent_kinds = tuple(
            kind
            for kind, share in (
                ("family-doctor", 0.6),
                ("referral", 0.4),
                ("remote-consultation", 0.25),
            )
            if rng.random() < share
        )
    # The scenes need these: a referral to narrow, a family doctor's consent to revoke, an
    # emergency at another hospital than the one holding the records, someone who never consents.
    cast["narrows"].consent_kinds = ("referral",)
    cast["revokes"].consent_kinds = ("family-doctor",)
    cast["stroke"].consent_kinds, cast["stroke"].home = ("family-doctor",), "h-riverside"
    cast["trauma"].home = EMERGENCY_DEPT
    cast["declines"].consent_kinds = ()
    for person in people[residents - children :]:
        person.consent_kinds = ("child-care",)
    asks = [ask for person in people for ask in _asks_about(person, rng)]
    rng.shuffle(asks)
    half = len(asks) // 2
    # The stroke patient's history shows a visit to their family doctor before the emergency.
    stroke = Ask(cast["stroke"], FAMILY_DOCTORS, ("prescriptions",), "family-doctor")
    return World(people, cast, [*asks[:half], stroke], asks[half:])


def _asks_about(person: Resident, rng: random.Random) -> list[Ask]:
    kinds = person.consent_kinds
    asks = []
    if "child-care" in kinds and rng.random() < 0.5:
        asks.append(Ask(person, SPECIALIST, ("lab-results", "imaging"), "referral"))
    if "family-doctor" in kinds and rng.random() < 0.5:
        asks.append(Ask(person, FAMILY_DOCTORS, ("prescriptions",), "family-doctor"))
    if "referral" in kinds and rng.random() < 0.6:
        asks.append(Ask(person, SPECIALIST, ("lab-results", "imaging"), "referral"))
    if person.guardian is None and rng.random() < 0.2:
        colleague = rng.choice([h for h in CONSULTANTS if h != person.home])
        asks.append(Ask(person, colleague, ("imaging",), "remote-consultation"))
    if rng.random() < 0.06:  # for treatment elsewhere, which no consent here grants
        elsewhere = CLINIC if person.home != CLINIC else "h-riverside"
        asks.append(Ask(person, elsewhere, ("lab-results",), "treatment"))
    return asks
