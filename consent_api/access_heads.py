"""Per-scope heads of the access projection: a deleted access row is refused, not hidden.

A resident's history, an institution's list and a regulator's list by subject or institution
show access rows verified against their leaves (``integrity``), which says nothing of a row
deleted: the decision would simply be missing from the page. So each access row is written
with upserts of its scopes' heads (``access_head``: ``subject:<id>``, ``requester:<id>``,
``holder:<id>``; the newest access leaf and how many events), in the same transaction as the
leaf and row, and a page read by subject or institution is refused unless the rows of that
scope still number and end as the head says. The count is taken in the index, whatever the
page's filters, so a row missing anywhere in the scope refuses every page of it: a list that
silently shows less is the harm, and the resident or regulator cannot tell a short page from
a complete one.

The break-glass cases (``cases``) have one head of their own (``breakglass-cases``), so the
review is refused when a case row is missing. Rows and heads both edited to match get past
this (the auditor's replay of the log still sees every access event); a list with neither a
subject nor an institution is not held to a head.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Executable, func, select

from .cases import BREAKGLASS_CASE
from .integrity import Mismatch, ProjectionVerifier
from .projection_tables import ACCESS, ACCESS_HEAD

SCOPES = ("subject", "requester", "holder")
CASES = "breakglass-cases"
"""The scope of the break-glass cases' head: one for the whole (small) table of cases."""


def access_head_upsert(insert: Any) -> Executable:
    """The upsert of one scope's head for one access row (parameters ``scope``, ``leaf_index``,
    ``events`` = 1); a replayed leaf (at or below the head) changes nothing."""
    statement = insert(ACCESS_HEAD)
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[ACCESS_HEAD.c.scope],
        set_={"leaf_index": statement.excluded.leaf_index, "events": ACCESS_HEAD.c.events + 1},
        where=statement.excluded.leaf_index > ACCESS_HEAD.c.leaf_index,
    )
    return upsert


def head_rows(row: dict[str, Any], leaf_index: int) -> list[dict[str, Any]]:
    """The head upserts' parameters for an access row."""
    return [
        {"scope": f"{column}:{row[column]}", "leaf_index": leaf_index, "events": 1}
        for column in SCOPES
    ]


def scopes_of(subject: str | None, party: str | None) -> list[tuple[str, str]]:
    """The heads a read by ``subject`` and ``party`` (as requester or holder) is held to."""
    scopes = [] if subject is None else [("subject", subject)]
    return scopes + ([] if party is None else [("requester", party), ("holder", party)])


def check_cases(integrity: ProjectionVerifier, conn: Connection) -> None:
    """Raise unless the break-glass cases number and end as their head says."""
    head = ACCESS_HEAD.c.scope == CASES
    check = select(
        select(func.count()).select_from(BREAKGLASS_CASE).scalar_subquery(),
        select(func.max(BREAKGLASS_CASE.c.decision_leaf_index)).scalar_subquery(),
        select(ACCESS_HEAD.c.leaf_index).where(head).scalar_subquery(),
        select(ACCESS_HEAD.c.events).where(head).scalar_subquery(),
    )
    _held(integrity, BREAKGLASS_CASE.name, "cases", conn.execute(check).one())


def check_scopes(
    integrity: ProjectionVerifier, conn: Connection, scopes: Iterable[tuple[str, str]]
) -> None:
    """Raise unless each (column, value) scope's rows number and end as its head says."""
    for column, value in scopes:
        rows = ACCESS.c[column] == value
        head = ACCESS_HEAD.c.scope == f"{column}:{value}"
        check = select(
            select(func.count()).where(rows).scalar_subquery(),
            select(func.max(ACCESS.c.leaf_index)).where(rows).scalar_subquery(),
            select(ACCESS_HEAD.c.leaf_index).where(head).scalar_subquery(),
            select(ACCESS_HEAD.c.events).where(head).scalar_subquery(),
        )
        # One statement: one snapshot of rows and head.
        _held(integrity, ACCESS.name, column, conn.execute(check).one())


def _held(integrity: ProjectionVerifier, table: str, scope: str, row: Any) -> None:
    count, newest, head_leaf, events = (None if v is None else int(v) for v in row)
    if head_leaf is None and not count:
        return
    if (newest, count) != (head_leaf, events):
        integrity.refuse(
            Mismatch(
                table,
                head_leaf if head_leaf is not None else int(newest or 0),
                f"a row is missing: the {scope} head names leaf {head_leaf} and {events} "
                f"events, the rows end at {newest} with {count}",
            )
        )
