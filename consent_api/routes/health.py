"""``GET /v1/ping``: a no-op, public, touching no database; the benchmarks' baseline.

It answers through the same app, middleware and server as every other route, so a load test
can set the cost of a logged access decision beside the cost of merely being served.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class PingOut(BaseModel):
    ok: Literal[True]


@router.get("/v1/ping")
async def ping() -> PingOut:
    """Always ``{"ok": true}``: no authentication, no state."""
    return PingOut(ok=True)
