"""Who viewed my records: a resident's access history, each entry with its receipt.

Every decision, release and refused redemption about the resident, in log order. An entry whose
leaf an anchored checkpoint covers carries the receipt proving it is in the anchored log
(``ledger.receipts``); a newer one says ``pending_anchor`` and gets its receipt later. A page's
receipts are proven to the newest anchored checkpoint and built together
(``ledger.receipts.build_receipts``), so the nodes their proofs share are read once.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ledger.anchor_store import AnchorStore
from ledger.cosignature_store import CosignatureStore
from ledger.log import Ledger
from ledger.receipts import build_receipts

from ..access import AccessService
from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..domain.consent import guardian_in_authority
from ..domain.vocab import Category, Purpose
from ..errors import ForbiddenError
from ..identity import SUBJECT_PATTERN, ResidentVault
from ..paging import DEFAULT_LIMIT, After, Limit, link_next, paged_responses, split_page
from ..throttle import caller_key, get_pools
from .access import ReliedOn, Service

router = APIRouter(prefix="/v1/me", tags=["history"], responses=AUTH_RESPONSES)

Resident = Annotated[Principal, Depends(require_roles(Role.RESIDENT))]
HISTORY_KINDS = frozenset({"access.decided", "access.released", "access.refused"})
OUTCOMES = {"access.released": "released", "access.refused": "refused"}


def get_anchors(request: Request) -> AnchorStore:
    anchors: AnchorStore = request.app.state.anchors
    return anchors


def subject_for(principal: Principal, subject: str | None, vault: ResidentVault) -> str:
    """The subject a resident may read about: themself, or a child they are guardian of."""
    if subject is None or subject == principal.id:
        return principal.id
    record = vault.record_for_guardian(subject, principal.id)  # alike for unknown, erased
    if not guardian_in_authority(record.birth_date, datetime.now(UTC)):
        raise ForbiddenError("a guardian's authority ends on the child's 14th birthday")
    return subject


class HistoryEntry(BaseModel):
    kind: str
    leaf_index: int
    at: datetime
    request_id: str
    requester: str
    holder: str
    purpose: Purpose
    categories: list[Category]
    decision: Literal["permit", "deny", "released", "refused"]
    reason: str | None = Field(description="What the consents said, for a decision.")
    refusal: str | None = Field(description="Why a redemption was refused.")
    breakglass: bool
    relied_on: list[ReliedOn]
    receipt: dict[str, Any] | None = Field(
        description="Proof of inclusion in an anchored checkpoint, with the anchor record."
    )
    pending_anchor: bool


RECEIPT_CHUNK = 100
"""Entries whose receipts are built in one go; between two, a page checks its client is there."""
CLIENT_GONE = 499
"""What a page answers once its client has gone (nobody reads it): nginx's "client closed"."""


def _page(
    service: AccessService,
    principal: Principal,
    subject: str | None,
    vault: ResidentVault,
    limit: int,
    after: int | None,
) -> tuple[Sequence[tuple[int, str, dict[str, Any]]], bool]:
    wanted = subject_for(principal, subject, vault)
    return split_page(
        service.records.access_page(
            kinds=HISTORY_KINDS, after=after, limit=limit + 1, subject=wanted, established=True
        ),
        limit,
    )


def _entries(
    ledger: Ledger,
    anchors: AnchorStore,
    cosignatures: CosignatureStore | None,
    page: Sequence[tuple[int, str, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """``HistoryEntry`` documents of ``page``, their receipts built together (each carrying
    the checkpoint as its witnesses cosigned it)."""
    receipts = build_receipts(
        ledger, anchors, [leaf_index for leaf_index, _, _ in page], cosignatures
    )
    return [
        {
            "kind": kind,
            "leaf_index": leaf_index,
            "at": event["at"],
            "request_id": event["request_id"],
            "requester": event["requester"],
            "holder": event["holder"],
            "purpose": event["purpose"],
            "categories": event["categories"],
            "decision": OUTCOMES.get(kind, event.get("decision", "deny")),
            "reason": event.get("reason"),
            "refusal": event.get("refusal"),
            "breakglass": event.get("breakglass", False),
            "relied_on": event.get("relied_on", []),
            "receipt": receipts.get(leaf_index),
            "pending_anchor": leaf_index not in receipts,
        }
        for leaf_index, kind, event in page
    ]


@router.get(
    "/access-history",
    response_model=list[HistoryEntry],
    responses=paged_responses("A page of entries, oldest first"),
)
async def access_history(
    request: Request,
    principal: Resident,
    service: Service,
    subject: Annotated[
        str | None, Query(pattern=SUBJECT_PATTERN, description="A child you are guardian of.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> Response:
    """Every access decision, release and refusal about you (or your child), with receipts;
    a page at a time.

    Heavy for its size, so it runs on the history threads, at most ``history_per_caller`` of
    one caller at a time, and stops between chunks of receipts once its client has gone.
    """
    state = request.app.state
    threads = get_pools(request).history
    with ExitStack() as held:
        if not getattr(request.state, "caller_admitted", False):  # else ``CallerGate`` did
            key = await caller_key(request)
            held.enter_context(state.caller_limiter.admit_heavy(key, limit))
        page, more = await anyio.to_thread.run_sync(
            partial(_page, service, principal, subject, state.vault, limit, after),
            limiter=threads,
        )
        entries: list[dict[str, Any]] = []
        for start in range(0, len(page), RECEIPT_CHUNK):
            if await request.is_disconnected():
                return Response(status_code=CLIENT_GONE)
            chunk = page[start : start + RECEIPT_CHUNK]
            entries += await anyio.to_thread.run_sync(
                _entries,
                state.ledger,
                state.anchors,
                getattr(state, "cosignatures", None),
                chunk,
                limiter=threads,
            )
    response = Response(orjson.dumps(entries), media_type="application/json")
    link_next(request, response, page[-1][0] if more else None)
    return response
