"""Whether a consent's next version permits something its previous one did not.

The service proves each narrowing exact with its own cell search; the auditor decides the
same question apart from that code, and must reach the same verdict on every pair. First a
quick test, rule by rule, that is sufficient, never necessary: a version it passes permits
nothing more than the one before (a deny counts as less than silence, since a deny of one
consent overrides every other). What it checks:

* a permit stays a permit for the same grantee, its holders, categories and purposes are
  subsets (an empty list is "any") and its period lies within the old one; every old
  provision (a deny exception) that could apply is kept unchanged; and where the scope
  shrank, every old provision's part of the old scope is still inside the new scope (else a
  deny would turn into silence there);
* a deny stays a deny (or a permit becomes a deny with no exceptions) over at least the old
  scope, with no exception added, none dropped that carries a deny of its own (a nested deny
  overrides permits like any other), and no exception at all if its scope grew.

When the quick test cannot tell (a deny exception reshaped, say, that only removed permits),
the exact search of ``auditor.cells`` decides, and a widening is reported with its witness.
Around the rules: a guardian's lapse is neither removed (except by the resident's own
renewal from the lapse on) nor moved later, and the version is not granted before the
previous one, nor after a revocation of it.
"""

from __future__ import annotations

from .cells import MAX_WORK, first_widening, work
from .rules import Rule, Version, iso

#: A set dimension of a rule: a sorted tuple, empty meaning "any".
Values = tuple[str, ...]
Interval = tuple[int | None, int | None]


def widening(old: Version, new: Version, *, guardian: bool, renewal: bool) -> str | None:
    """How ``new`` permits more than ``old`` (None: it does not, by this check).

    ``guardian``: ``new`` carries a lapse (possibly not opened, then not compared);
    ``renewal``: ``new`` is granted by the resident themself.
    """
    if old.revoked is not None:
        return f"version {old.version} was revoked in leaf {old.revoke_leaf_index}"
    if new.granted < old.granted:
        return "it is granted before the version it replaces"
    if old.lapse is not None:
        if new.lapse is None and not guardian and not (renewal and new.granted >= old.lapse):
            return "it drops the guardian's lapse before the child is 14"
        if new.lapse is not None and new.lapse > old.lapse:
            return "it moves the guardian's lapse later"
    if old.lapse is not None and new.lapse is not None:
        return rule_widening(old.rule, new.rule, old_lapse=old.lapse, new_lapse=new.lapse)
    # A renewal drops the lapse on purpose; a lapse not opened is not known: the rules alone.
    return rule_widening(old.rule, new.rule)


def rule_widening(
    old: Rule, new: Rule, *, old_lapse: int | None = None, new_lapse: int | None = None
) -> str | None:
    """How ``new``'s rules (silent from ``new_lapse`` on) permit more than ``old``'s (silent
    from ``old_lapse``); None if they do so nowhere."""
    # The quick test reads the rules alone: sound only if both lapse alike. An earlier lapse
    # is not always narrower, since the silence after it says more than a deny before it.
    if old_lapse == new_lapse and quick_widening(old, new) is None:
        return None
    lapses = [t for t in (old_lapse, new_lapse) if t is not None]
    if work(old, new, lapses) > MAX_WORK:
        return "it is too large to prove narrower than the version before (the service refuses)"
    point = first_widening(old, new, old_lapse=old_lapse, new_lapse=new_lapse)
    if point is None:
        return None
    return (
        f"it says more about {point.category} / {point.purpose} to {point.requester} "
        f"({point.requester_type}) from {point.holder} at {iso(point.at)}"
    )


def quick_widening(old: Rule, new: Rule) -> str | None:
    if old.grantees != new.grantees:
        return "it changes the grantee"
    if old.permit and new.permit:
        return _permit_widening(old, new)
    if old.permit:  # a permit that becomes a deny
        if new.provisions or not _covers(new, _scope(old)):
            return "it turns a permit into a deny with exceptions or a smaller scope"
        return None
    if new.permit:
        return "it turns a deny into a permit"
    if not set(new.provisions) <= set(old.provisions):
        return "it adds an exception to a deny"
    if any(_carries_deny(gone) for gone in set(old.provisions) - set(new.provisions)):
        # A deny nested in an exception overrides every permit it meets, like any deny.
        return "it drops an exception that carries deny provisions"
    if not _covers(new, _scope(old)):
        return "it denies less than before"
    if new.provisions and _scope(new) != _scope(old):
        return "it widens a deny that has exceptions"
    return None


def _permit_widening(old: Rule, new: Rule) -> str | None:
    for name, before, after in (
        ("holders", old.holders, new.holders),
        ("categories", old.categories, new.categories),
        ("purposes", old.purposes, new.purposes),
    ):
        if not _within(after, before):
            return f"its {name} are not a subset of the previous ones"
    if not _interval_within((new.start, new.end), (old.start, old.end)):
        return "its period does not lie within the previous one"
    kept = set(new.provisions)
    for provision in old.provisions:
        # An exception outside the old scope never applied: dropping it changes nothing.
        if provision not in kept and _intersect(_scope(old), _scope(provision)) is not None:
            return "it drops or changes an exception (a deny provision)"
    if _scope(new) != _scope(old):
        for provision in old.provisions:
            part = _intersect(_scope(old), _scope(provision))
            if part is not None and not _covers(new, part):
                return "it narrows a deny provision's scope out of the consent"
    return None


Scope = tuple[Values, Values, Values, Interval]


def _carries_deny(rule: Rule) -> bool:
    """Whether a deny provision lies anywhere below ``rule``."""
    return any(not nested.permit or _carries_deny(nested) for nested in rule.provisions)


def _scope(rule: Rule) -> Scope:
    return (rule.holders, rule.categories, rule.purposes, (rule.start, rule.end))


def _covers(rule: Rule, scope: Scope) -> bool:
    """Whether ``rule``'s scope (grantee aside) contains ``scope``."""
    holders, categories, purposes, interval = scope
    return (
        _within(holders, rule.holders)
        and _within(categories, rule.categories)
        and _within(purposes, rule.purposes)
        and _interval_within(interval, (rule.start, rule.end))
    )


def _intersect(a: Scope, b: Scope) -> Scope | None:
    """The common part of two scopes; None when they do not meet."""
    sets: list[Values] = []
    for left, right in zip(a[:3], b[:3], strict=True):
        if not left or not right:
            sets.append(left or right)
            continue
        common = tuple(sorted(set(left) & set(right)))
        if not common:
            return None
        sets.append(common)
    starts = [t for t in (a[3][0], b[3][0]) if t is not None]
    ends = [t for t in (a[3][1], b[3][1]) if t is not None]
    start, end = max(starts, default=None), min(ends, default=None)
    if start is not None and end is not None and start > end:
        return None
    return (sets[0], sets[1], sets[2], (start, end))


def _within(inner: Values, outer: Values) -> bool:
    if not outer:
        return True
    return bool(inner) and set(inner) <= set(outer)


def _interval_within(inner: Interval, outer: Interval) -> bool:
    (start, end), (outer_start, outer_end) = inner, outer
    return (outer_start is None or (start is not None and start >= outer_start)) and (
        outer_end is None or (end is not None and end <= outer_end)
    )
