"""Openings of the guardian lapse commitments, for a regulator's auditor (read-only).

A guardian's consent is logged with ``guardian_authority_ends`` as ``{"sha256": SHA-256(salt
|| ISO date)}`` (``consent_api.lapse``): the date would reveal the child's birth date. The
regulator's auditor needs the date to judge decisions by, and the salt to check it against
the logged commitment itself. Listed by leaf range from the projection, a page of rows at a
time; an erased child's guardian consents are not projected (``forget_lapse_dates`` removes
those projected before the erasure), so they have no opening.
"""

from __future__ import annotations

import json
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..consents import ConsentService
from ..dependencies import get_consent_service, get_records
from ..heads import rebuild_head
from ..lapse import FIELD
from ..projection_tables import ConsentRecord
from ..records import Records

router = APIRouter(prefix="/v1/regulator", tags=["regulator"], responses=AUTH_RESPONSES)

Regulator = Annotated[Principal, Depends(require_roles(Role.REGULATOR))]
MAX_LIMIT: Final = 5000
MAX_INDEX: Final = 2**63 - 1  # the database's BIGINT
_CONSENT = ConsentRecord.__table__  # type: ignore[attr-defined]


class LapseOpening(BaseModel):
    leaf_index: int
    consent_id: str
    version: int
    guardian_authority_ends: str = Field(description="The lapse date, ISO 8601.")
    salt: str = Field(description="32 bytes, hex: SHA-256(salt || date) is the logged value.")


class LapseOpenings(BaseModel):
    openings: list[LapseOpening]
    next: int | None = Field(description="The start of the next page, or null at the end.")


@router.get("/lapse-openings")
def lapse_openings(
    _: Regulator,
    records: Annotated[Records, Depends(get_records)],
    consents: Annotated[ConsentService, Depends(get_consent_service)],
    start: Annotated[int, Query(ge=0, le=MAX_INDEX, description="First leaf to look at.")] = 0,
    end: Annotated[
        int | None, Query(ge=0, le=MAX_INDEX, description="Leaf index to stop before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Consent rows per page.")] = 1000,
) -> LapseOpenings:
    """The lapse date and salt of each guardian consent version logged in ``[start, end)``."""
    query = select(_CONSENT.c.leaf_index, _CONSENT.c.body).where(_CONSENT.c.leaf_index >= start)
    if end is not None:
        query = query.where(_CONSENT.c.leaf_index < end)
    with records.store.read() as conn:
        rows = conn.execute(query.order_by(_CONSENT.c.leaf_index).limit(limit)).all()
    openings = []
    for leaf_index, text in rows:
        body = json.loads(text)
        ends = body.get("guardian_authority_ends")
        if not isinstance(ends, str):
            continue
        consent_id, version = str(body["consent_id"]), int(body["version"])
        openings.append(
            LapseOpening(
                leaf_index=int(leaf_index),
                consent_id=consent_id,
                version=version,
                guardian_authority_ends=ends,
                salt=consents.lapse.opening(consent_id, version),
            )
        )
    following = int(rows[-1][0]) + 1 if len(rows) == limit else None
    return LapseOpenings(openings=openings, next=following)


def forget_lapse_dates(records: Records, subject: str) -> int:
    """Remove an erased child's projected guardian consents: the projection keeps their lapse
    date in clear, and it would reveal the birth date. A replay would not project them either
    (their date can no longer be restored), so nobody can act on them any more. Returns how
    many consent versions were removed; idempotent."""
    with records.store.write() as conn:
        rows = conn.execute(
            select(_CONSENT.c.leaf_index, _CONSENT.c.body).where(_CONSENT.c.subject == subject)
        ).all()
        doomed = [int(i) for i, body in rows if isinstance(json.loads(body).get(FIELD), str)]
        if doomed:
            conn.execute(delete(_CONSENT).where(_CONSENT.c.leaf_index.in_(doomed)))
            rebuild_head(conn, subject)  # removed by the service: the head follows
    records.heads.forget(subject)
    return len(doomed)
