"""``GET /v1/ping``: a no-op, public, touching no database; the benchmarks' baseline.
``GET /v1/health``: what the service has found wrong with its own storage since it started.

Ping answers through the same app, middleware and server as every other route, so a load test
can set the cost of a logged access decision beside the cost of merely being served. Health
reads only counters in memory, so it answers while the database is unwell (a full disk).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ..dependencies import get_records
from ..records import Records

router = APIRouter(tags=["health"])


class PingOut(BaseModel):
    ok: Literal[True]


class MismatchOut(BaseModel):
    table: str
    leaf_index: int
    reason: str


class IntegrityOut(BaseModel):
    mismatches: int = Field(
        description="Projected rows refused since start-up: they did not match their leaf."
    )
    verified_rows: int = Field(description="Projected rows verified against the log and kept.")
    last_mismatch: MismatchOut | None


class StorageOut(BaseModel):
    full_answers: int = Field(
        description="Requests answered 503 storage-full since start-up (the disk was full)."
    )


class HealthOut(BaseModel):
    ok: bool = Field(description="False once any stored row was found not to match the log.")
    integrity: IntegrityOut
    storage: StorageOut


@router.get("/v1/ping")
async def ping() -> PingOut:
    """Always ``{"ok": true}``: no authentication, no state."""
    return PingOut(ok=True)


@router.get("/v1/health")
async def health(request: Request, records: Annotated[Records, Depends(get_records)]) -> HealthOut:
    """Counts of what the service refused from its own storage (no authentication: it holds
    no personal data, only counts and leaf indices)."""
    integrity = IntegrityOut.model_validate(records.integrity.counts())
    storage = StorageOut(full_answers=request.app.state.storage_full_answers)
    return HealthOut(ok=integrity.mismatches == 0, integrity=integrity, storage=storage)
