"""The projection of break-glass cases: one row per break-glass decision, completed by its
justification.

Written with the rest of the projection (``records.Records.rows_of``), keyed by the decision's
leaf index and idempotent like it: the decision's row is inserted ``ON CONFLICT DO NOTHING``,
and a justification fills in a row whose justification is still empty, so replaying either
changes nothing and the first logged justification of a request is the one that counts. The
review of late cases reads this small table alone, never the decisions at large.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Double,
    Index,
    Text,
    bindparam,
    select,
)
from sqlmodel import Field, SQLModel

from .integrity import ProjectionVerifier


class BreakGlassRecord(SQLModel, table=True):
    """One break-glass decision and, once logged, its justification."""

    __tablename__ = "breakglass_case"

    decision_leaf_index: int = Field(
        sa_column=Column(BigInteger, primary_key=True, autoincrement=False)
    )
    request_id: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    subject: str = Field(sa_column=Column(Text, nullable=False))
    requester: str = Field(sa_column=Column(Text, nullable=False))
    holder: str = Field(sa_column=Column(Text, nullable=False))
    categories: str = Field(sa_column=Column(Text, nullable=False))
    at: str = Field(sa_column=Column(Text, nullable=False))
    justify_by: str = Field(sa_column=Column(Text, nullable=False))
    justify_by_ts: float = Field(sa_column=Column(Double, nullable=False))
    justified_at: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    justified_late: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    justification_leaf_index: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )


BREAKGLASS_CASE = BreakGlassRecord.__table__  # type: ignore[attr-defined]
CASE_INDEXES = (
    # Unjustified cases by deadline, then the (few) justified late.
    Index(
        "ix_breakglass_case_open",
        BREAKGLASS_CASE.c.justification_leaf_index,
        BREAKGLASS_CASE.c.justify_by_ts,
    ),
    Index("ix_breakglass_case_late", BREAKGLASS_CASE.c.justified_late),
)
# A justification completes its case once: a replay, or a second one, changes nothing.
JUSTIFY_CASE = BREAKGLASS_CASE.update().where(
    BREAKGLASS_CASE.c.request_id == bindparam("case_request_id"),
    BREAKGLASS_CASE.c.justification_leaf_index.is_(None),
)


def cases_page(
    conn: Connection, *, after: int | None, limit: int, late_at: datetime | None
) -> list[BreakGlassCase]:
    """Up to ``limit`` cases after decision leaf ``after`` in log order (late at ``late_at``
    only, if given), read in ``conn``'s transaction."""
    table = BREAKGLASS_CASE
    query = select(table).where(table.c.decision_leaf_index > (-1 if after is None else after))
    if late_at is not None:
        query = query.where(
            (
                table.c.justification_leaf_index.is_(None)
                & (table.c.justify_by_ts < late_at.timestamp())
            )
            | table.c.justified_late.is_(True)
        )
    query = query.order_by(table.c.decision_leaf_index).limit(limit)
    return [_case(row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class BreakGlassCase:
    """A projected break-glass case: its decision, deadline, and justification if logged."""

    decision_leaf_index: int
    request_id: str
    subject: str
    requester: str
    holder: str
    categories: list[str]
    at: str
    justify_by: str
    justified_at: str | None
    justified_late: bool | None
    justification_leaf_index: int | None


def _case(row: Any) -> BreakGlassCase:
    return BreakGlassCase(
        decision_leaf_index=int(row.decision_leaf_index),
        request_id=row.request_id,
        subject=row.subject,
        requester=row.requester,
        holder=row.holder,
        categories=json.loads(row.categories),
        at=row.at,
        justify_by=row.justify_by,
        justified_at=row.justified_at,
        justified_late=None if row.justified_late is None else bool(row.justified_late),
        justification_leaf_index=(
            None if row.justification_leaf_index is None else int(row.justification_leaf_index)
        ),
    )


def case_row(kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """A break-glass decision's case row, or a justification's update of it, but its leaf
    index; None for any other event."""
    if kind == "access.decided" and data.get("breakglass"):
        return {
            "request_id": data["request_id"],
            "subject": data["subject"],
            "requester": data["requester"],
            "holder": data["holder"],
            "categories": json.dumps(sorted(data["categories"])),
            "at": data["at"],
            "justify_by": data["justify_by"],
            "justify_by_ts": datetime.fromisoformat(data["justify_by"]).timestamp(),
        }
    if kind == "breakglass.justified":
        at = datetime.fromisoformat(data["at"])
        return {
            "case_request_id": data["request_id"],
            "justified_at": data["at"],
            "justified_late": at > datetime.fromisoformat(data["justify_by"]),
        }
    return None


def verify_cases(integrity: ProjectionVerifier, cases: list[BreakGlassCase]) -> None:
    """Raise ``StorageIntegrityError`` unless each case is what its decision's leaf and its
    justification's leaf (if it names one) project to."""

    def decided_as(case: BreakGlassCase) -> Any:
        expected = {
            "request_id": case.request_id,
            "subject": case.subject,
            "requester": case.requester,
            "holder": case.holder,
            "categories": json.dumps(sorted(case.categories)),
            "at": case.at,
            "justify_by": case.justify_by,
        }
        return lambda kind, data: (
            kind == "access.decided"
            and {k: v for k, v in (case_row(kind, data) or {}).items() if k in expected} == expected
        )

    def justified_as(case: BreakGlassCase) -> Any:
        return lambda kind, data: (
            kind == "breakglass.justified"
            and data["request_id"] == case.request_id
            and case_row(kind, data)
            == {
                "case_request_id": case.request_id,
                "justified_at": case.justified_at,
                "justified_late": case.justified_late,
            }
        )

    wanted = [(case.decision_leaf_index, decided_as(case)) for case in cases]
    wanted += [
        (case.justification_leaf_index, justified_as(case))
        for case in cases
        if case.justification_leaf_index is not None
    ]
    if wanted:
        integrity.check_leaves(BREAKGLASS_CASE.name, wanted)
