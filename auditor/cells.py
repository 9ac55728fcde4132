"""The exact narrowing check: two versions' rules compared on every cell of the request space.

A consent's answer about a point (requester and its type, holder, category, purpose, instant)
can change only where a value its rules mention changes: named institutions and holders,
listed categories and purposes, the edges of periods and a guardian's lapse. So the space
splits into finitely many cells on which both versions are constant; ``first_widening``
evaluates both on one point of each (``rules.rules_say``) and returns the first where the
new version says more (deny < silent < permit: a deny of one consent overrides every other).

Written apart from the service's own cell search, from the same specification, so the two
agree on every pair without sharing a line: the instants are integer microseconds within the
years 1 to 9999 (UTC), which is all an instant in the log can be; values nobody mentions are
each represented by one fresh or unmentioned one, from the platform's vocabularies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import product
from math import prod
from typing import Final, NamedTuple

from .rules import (
    CATEGORIES,
    DENIED,
    EPOCH,
    INSTITUTION_TYPES,
    PERMITTED,
    PURPOSES,
    Rule,
    rules_say,
)

MAX_WORK: Final = 2_000_000
"""Most cells times rules one check evaluates: the bound past which the service refuses to
prove a narrowing at all, so a logged pair beyond it is a finding of its own."""

FIRST_US: Final = (datetime.min.replace(tzinfo=UTC) - EPOCH).days * 86_400_000_000
LAST_US: Final = FIRST_US + (datetime.max - datetime.min).days * 86_400_000_000 + 86_399_999_999
"""The first and last microsecond an instant can be (0001-01-01 to 9999-12-31, UTC)."""


class Point(NamedTuple):
    """One cell's representative request (an instant in microseconds since the epoch)."""

    requester: str
    requester_type: str
    holder: str
    category: str
    purpose: str
    at: int


def rank(said: str) -> int:
    """deny (0) < silent (1) < permit (2)."""
    return 2 if said is PERMITTED else 0 if said is DENIED else 1


def first_widening(
    old: Rule, new: Rule, *, old_lapse: int | None = None, new_lapse: int | None = None
) -> Point | None:
    """The first point where ``new`` (with its lapse) says more than ``old`` (with its own)."""
    for point in cells((old, new), [t for t in (old_lapse, new_lapse) if t is not None]):
        before = rules_say(old, old_lapse, *point)
        after = rules_say(new, new_lapse, *point)
        if rank(after) > rank(before):
            return point
    return None


def work(old: Rule, new: Rule, lapses: Sequence[int] = ()) -> int:
    """Cells times rules: what ``first_widening`` evaluates at most."""
    rules = sum(1 for root in (old, new) for _ in walk(root))
    return prod(len(values) for values in dimensions((old, new), lapses)) * rules


def cells(roots: Sequence[Rule], lapses: Sequence[int]) -> Iterator[Point]:
    requesters, types, holders, categories, purposes, instants = dimensions(roots, lapses)
    for values in product(requesters, types, holders, categories, purposes, instants):
        yield Point(*values)


Dimensions = tuple[list[str], list[str], list[str], list[str], list[str], list[int]]


def dimensions(roots: Sequence[Rule], lapses: Sequence[int]) -> Dimensions:
    institutions: set[str] = set()
    holders: set[str] = set()
    categories: set[str] = set()
    purposes: set[str] = set()
    edges: set[int] = set(lapses)
    for rule in (rule for root in roots for rule in walk(root)):
        institutions.update(i for i, _ in rule.grantees if i is not None)
        holders.update(rule.holders)
        categories.update(rule.categories)
        purposes.update(rule.purposes)
        edges.update(t for t in (rule.start, rule.end) if t is not None)
    return (
        [*sorted(institutions), _fresh(institutions, "unnamed-institution")],
        list(INSTITUTION_TYPES),
        [*sorted(holders), _fresh(holders, "unnamed-holder")],
        _and_one_unmentioned(categories, CATEGORIES),
        _and_one_unmentioned(purposes, PURPOSES),
        _instants(edges),
    )


def walk(root: Rule) -> Iterator[Rule]:
    stack = [root]
    while stack:
        rule = stack.pop()
        yield rule
        stack.extend(rule.provisions)


def _fresh(taken: set[str], name: str) -> str:
    while name in taken:
        name += "-"
    return name


def _and_one_unmentioned(mentioned: set[str], vocabulary: Iterable[str]) -> list[str]:
    unmentioned = [value for value in vocabulary if value not in mentioned]
    return sorted(mentioned) + unmentioned[:1]


def _instants(edges: set[int]) -> list[int]:
    """Each edge and its neighbours, within the instants there are; any one if no edges."""
    around = {t + step for t in edges for step in (-1, 0, 1)}
    return sorted(t for t in around if FIRST_US <= t <= LAST_US) or [0]
