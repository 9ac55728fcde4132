"""The projection's tables of consents and access events, their paging indexes, and the row
each logged event projects to (``records.Records`` reads and writes them)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from .cases import CASE_INDEXES

CONSENT_KINDS = frozenset({"consent.granted", "consent.narrowed", "consent.revoked"})
ACCESS_KINDS = frozenset(
    {"access.decided", "access.released", "access.refused", "breakglass.justified"}
)


class ConsentRecord(SQLModel, table=True):
    """One logged version of a consent (granted, narrowed or revoked)."""

    __tablename__ = "consent_record"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    consent_id: str = Field(index=True)
    subject: str = Field(index=True)
    kind: str
    version: int
    body: str = Field(sa_column=Column(Text, nullable=False))


class AccessRecord(SQLModel, table=True):
    """One logged access event: a decision, a release, a refused redemption, a justification."""

    __tablename__ = "access_record"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str
    subject: str = Field(index=True)
    requester: str = Field(index=True)
    holder: str = Field(index=True)
    request_id: str = Field(index=True)
    at: str
    body: str = Field(sa_column=Column(Text, nullable=False))


class ConsentHead(SQLModel, table=True):
    """Per subject, the newest consent leaf projected and how many consent versions there are:
    written in the same transaction as each consent row (``heads``), so a row deleted since is
    missed by the read that relies on the rest."""

    __tablename__ = "consent_head"

    subject: str = Field(primary_key=True)
    leaf_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    versions: int = Field(sa_column=Column(BigInteger, nullable=False))


class AccessHead(SQLModel, table=True):
    """Per scope (``subject:``, ``requester:`` or ``holder:`` and the id), the newest access
    leaf projected and how many access events it has: written with each access row (``heads``)."""

    __tablename__ = "access_head"

    scope: str = Field(primary_key=True)
    leaf_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    events: int = Field(sa_column=Column(BigInteger, nullable=False))


CONSENT = ConsentRecord.__table__  # type: ignore[attr-defined]
ACCESS = AccessRecord.__table__  # type: ignore[attr-defined]
CONSENT_HEAD = ConsentHead.__table__  # type: ignore[attr-defined]
ACCESS_HEAD = AccessHead.__table__  # type: ignore[attr-defined]
# Each list's filter column first, then leaf_index: one range scan per page (created on open,
# also on a database projected before they existed).
INDEXES = (
    Index("ix_access_record_kind_leaf", ACCESS.c.kind, ACCESS.c.leaf_index),
    Index("ix_access_record_subject_leaf", ACCESS.c.subject, ACCESS.c.leaf_index),
    Index(
        "ix_access_record_subject_kind_leaf",
        ACCESS.c.subject,
        ACCESS.c.kind,
        ACCESS.c.leaf_index,
    ),
    Index(
        "ix_access_record_requester_kind_leaf",
        ACCESS.c.requester,
        ACCESS.c.kind,
        ACCESS.c.leaf_index,
    ),
    Index("ix_access_record_holder_kind_leaf", ACCESS.c.holder, ACCESS.c.kind, ACCESS.c.leaf_index),
    *CASE_INDEXES,
)


def event_row(kind: str, data: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The projection row of one event but its leaf index, and its table (None: not projected)."""
    if kind in CONSENT_KINDS:
        consent = data["consent"]
        return {
            "consent_id": consent["consent_id"],
            "subject": consent["subject"],
            "kind": kind,
            "version": consent["version"],
            "body": json.dumps(consent, sort_keys=True),
        }, CONSENT
    if kind in ACCESS_KINDS:
        return {
            "kind": kind,
            "subject": data["subject"],
            "requester": data.get("requester", ""),
            "holder": data.get("holder", ""),
            "request_id": data["request_id"],
            "at": data["at"],
            "body": json.dumps(data, sort_keys=True),
        }, ACCESS
    return {}, None
