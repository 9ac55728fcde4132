"""The consent rules, written again from the specification, for the replay to judge decisions by.

A second implementation on purpose: it shares no code with the service (``consent_api``), so a
bug or a tampered rule there cannot make both agree on an unlawful permit. It works on plain
tuples and integers (microseconds since the epoch) because it runs once per logged event.

Semantics (FHIR R4 Consent, nested provisions are exceptions to their parent):

* a consent's root rule applies when grantee, holder, category, purpose (an empty set is
  "any") all match, it is granted and not revoked at the instant, the instant is in its period,
  and a guardian's authority has not lapsed (00:00 UTC on the child's 14th birthday);
* within an applying rule, the matching nested provisions are its exceptions; none: the rule's
  own type decides; else each is resolved the same way and any deny among them wins;
* of each consent id only the version in force counts: the highest granted at or before the
  instant, else the first (which then is "not yet valid");
* a request permits when no record in force denies any category and every category is
  permitted by some record: a deny always wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final, NamedTuple

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)

EMERGENCY_PURPOSES: Final = frozenset({"emergency"})
EMERGENCY_CATEGORIES: Final = frozenset(
    {
        "emergency-chest-pain",
        "emergency-stroke",
        "emergency-trauma",
        "emergency-neonatal",
        "emergency-maternal",
    }
)

#: The platform's closed vocabularies (its specification), in the order it lists them.
CATEGORIES: Final = (
    "lab-results",
    "imaging",
    "prescriptions",
    "discharge-summaries",
    "emergency-chest-pain",
    "emergency-stroke",
    "emergency-trauma",
    "emergency-neonatal",
    "emergency-maternal",
)
PURPOSES: Final = (
    "treatment",
    "referral",
    "remote-consultation",
    "family-doctor",
    "research",
    "emergency",
)
INSTITUTION_TYPES: Final = ("hospital", "clinic", "family-doctor-team")

PERMITTED: Final = "permitted"
DENIED: Final = "denied-by-provision"
SILENT: Final = "silent"

#: (institution id or None, institution type or None): exactly one is given.
Grantee = tuple[str | None, str | None]


class Rule(NamedTuple):
    """A rule of a consent (its root or a nested provision); empty sets match anything.

    Sets are sorted tuples: as fast to search at these sizes, and cheaper to keep on disk.
    """

    permit: bool
    grantees: tuple[Grantee, ...]
    holders: tuple[str, ...]
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    start: int | None
    end: int | None
    provisions: tuple[Rule, ...]


class Version(NamedTuple):
    """One version of a consent as the log recorded it (instants in microseconds)."""

    version: int
    leaf_index: int
    granted: int
    revoked: int | None
    revoke_leaf_index: int | None
    lapse: int | None
    rule: Rule


class RuleError(ValueError):
    """A logged consent that cannot be read as one (a bad event)."""


# -- reading the log's JSON ----------------------------------------------------------------------


def micros(text: object) -> int:
    """An ISO 8601 instant with a zone as integer microseconds since the epoch."""
    if not isinstance(text, str):
        raise RuleError(f"an instant must be a string, not {text!r}")
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RuleError(f"not an ISO 8601 instant: {text!r}") from exc
    if at.tzinfo is None:
        raise RuleError(f"an instant without a zone: {text!r}")
    return (at - EPOCH) // _US


def optional_micros(text: object) -> int | None:
    return None if text is None else micros(text)


def midnight(day: str) -> int:
    """00:00 UTC of an ISO date, in microseconds: when a guardian's authority ends."""
    return (datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC) - EPOCH) // _US


def iso(at: int) -> str:
    """Microseconds since the epoch as the log writes instants (UTC, ``Z``)."""
    return (EPOCH + at * _US).isoformat(timespec="microseconds").replace("+00:00", "Z")


MAX_DEPTH: Final = 32
"""Deepest provisions the auditor reads (the service logs at most 8): a log nesting deeper is
a bad event, not a stack to exhaust."""


def rule_of(body: Mapping[str, object], *, root: bool, depth: int = 0) -> Rule:
    """The rule of a logged consent body (``root``) or of one of its provisions."""
    if depth > MAX_DEPTH:
        raise RuleError(f"provisions nest deeper than {MAX_DEPTH}")
    kind = body.get("type", "permit")
    if kind not in ("permit", "deny"):
        raise RuleError(f"a rule's type is permit or deny, not {kind!r}")
    grantees: tuple[Grantee, ...]
    if root:
        grantee = body.get("grantee")
        grantees = () if grantee is None else (_grantee(grantee),)
    else:
        grantees = tuple(_grantee(g) for g in _list(body.get("grantees", [])))
    period = body.get("period") or {}
    if not isinstance(period, dict):
        raise RuleError("a period must be an object")
    return Rule(
        permit=kind == "permit",
        grantees=grantees,
        holders=_strings(body.get("holders", [])),
        categories=_strings(body.get("categories", [])),
        purposes=_strings(body.get("purposes", [])),
        start=optional_micros(period.get("start")),
        end=optional_micros(period.get("end")),
        provisions=tuple(
            rule_of(_object(p), root=False, depth=depth + 1)
            for p in _list(body.get("provisions", []))
        ),
    )


def _grantee(value: object) -> Grantee:
    g = _object(value)
    institution, kind = g.get("institution"), g.get("institution_type")
    if (institution is None) == (kind is None):
        raise RuleError("a grantee is exactly one of institution or institution_type")
    if not isinstance(institution or kind, str):
        raise RuleError("a grantee must be a string")
    return (
        institution if isinstance(institution, str) else None,
        kind if isinstance(kind, str) else None,
    )


def _strings(value: object) -> tuple[str, ...]:
    items = _list(value)
    if not all(isinstance(item, str) for item in items):
        raise RuleError("expected a list of strings")
    return tuple(sorted(set(items)))  # type: ignore[arg-type]


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise RuleError(f"expected a list, not {value!r}")
    return value


def _object(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise RuleError(f"expected an object, not {value!r}")
    return value


# -- evaluation ----------------------------------------------------------------------------------


def _grantee_matches(grantees: tuple[Grantee, ...], requester: str, requester_type: str) -> bool:
    if not grantees:
        return True
    for institution, kind in grantees:
        if institution == requester if institution is not None else kind == requester_type:
            return True
    return False


def _matches(
    rule: Rule, requester: str, rtype: str, holder: str, category: str, purpose: str, at: int
) -> bool:
    return (
        _grantee_matches(rule.grantees, requester, rtype)
        and (not rule.holders or holder in rule.holders)
        and (not rule.categories or category in rule.categories)
        and (not rule.purposes or purpose in rule.purposes)
        and (rule.start is None or rule.start <= at)
        and (rule.end is None or at <= rule.end)
    )


def _resolve(
    rule: Rule, requester: str, rtype: str, holder: str, category: str, purpose: str, at: int
) -> bool:
    """Whether ``rule`` (already applying) permits: its own type unless exceptions match."""
    outcome: bool | None = None
    for provision in rule.provisions:
        if _matches(provision, requester, rtype, holder, category, purpose, at):
            if not _resolve(provision, requester, rtype, holder, category, purpose, at):
                return False  # a deny among the matching exceptions wins
            outcome = True
    return rule.permit if outcome is None else outcome


def evaluate(
    version: Version, requester: str, rtype: str, holder: str, category: str, purpose: str, at: int
) -> str:
    """PERMITTED, DENIED (a matching deny) or SILENT: what one record says about one point."""
    rule = version.rule
    if not _matches(rule, requester, rtype, holder, category, purpose, at):
        return SILENT
    if version.revoked is not None and version.revoked <= at:
        return SILENT
    if at < version.granted or (version.lapse is not None and at >= version.lapse):
        return SILENT
    return PERMITTED if _resolve(rule, requester, rtype, holder, category, purpose, at) else DENIED


def rules_say(
    rule: Rule,
    lapse: int | None,
    requester: str,
    rtype: str,
    holder: str,
    category: str,
    purpose: str,
    at: int,
) -> str:
    """What a consent's rules (and a guardian's ``lapse``) say about one point, its grant and
    revocation aside: PERMITTED, DENIED or SILENT. What narrowing compares between versions."""
    if not _matches(rule, requester, rtype, holder, category, purpose, at):
        return SILENT
    if lapse is not None and at >= lapse:
        return SILENT
    return PERMITTED if _resolve(rule, requester, rtype, holder, category, purpose, at) else DENIED


def in_force(history: Sequence[Version], at: int) -> Version:
    """Of one consent's versions (in version order), the one that governs ``at``."""
    chosen = history[0]
    for version in history:
        if version.granted <= at:
            chosen = version
    return chosen


class Verdict(NamedTuple):
    """What the subject's consents say about a request: permit, and who permits each category."""

    permit: bool
    denied_by: tuple[str, ...]
    permitted_by: dict[str, Version]


def judge(
    consents: Mapping[str, Sequence[Version]],
    requester: str,
    rtype: str,
    holder: str,
    categories: Iterable[str],
    purpose: str,
    at: int,
) -> Verdict:
    """Decide a request against every consent of its subject (``consent_id -> versions``)."""
    records = [(cid, in_force(history, at)) for cid, history in consents.items() if history]
    denied: list[str] = []
    permitted: dict[str, Version] = {}
    uncovered = False
    for category in categories:
        covered = False
        for consent_id, version in records:
            said = evaluate(version, requester, rtype, holder, category, purpose, at)
            if said is PERMITTED:
                covered = True
                permitted[consent_id] = version
            elif said is DENIED:
                denied.append(consent_id)
        uncovered = uncovered or not covered
    return Verdict(not denied and not uncovered, tuple(sorted(set(denied))), permitted)
