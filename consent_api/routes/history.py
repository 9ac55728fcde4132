"""Who viewed my records: a resident's access history, each entry with its receipt.

Every decision, release and refused redemption about the resident, in log order. An entry whose
leaf an anchored checkpoint covers carries the receipt proving it is in the anchored log
(``ledger.receipts``); a newer one says ``pending_anchor`` and gets its receipt later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ledger.anchor_store import AnchorStore
from ledger.log import Ledger
from ledger.receipts import NotAnchoredError, build_receipt

from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..dependencies import get_ledger, get_vault
from ..domain.consent import guardian_in_authority
from ..domain.vocab import Category, Purpose
from ..errors import ForbiddenError
from ..identity import SUBJECT_PATTERN, ResidentVault
from ..paging import DEFAULT_LIMIT, After, Limit, link_next, paged_responses, split_page
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
    record = vault.read(subject)
    if principal.id not in record.guardians:
        raise ForbiddenError("you are not a guardian of this resident")
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


@router.get("/access-history", responses=paged_responses("A page of entries, oldest first"))
def access_history(
    request: Request,
    response: Response,
    principal: Resident,
    service: Service,
    ledger: Annotated[Ledger, Depends(get_ledger)],
    anchors: Annotated[AnchorStore, Depends(get_anchors)],
    vault: Annotated[ResidentVault, Depends(get_vault)],
    subject: Annotated[
        str | None, Query(pattern=SUBJECT_PATTERN, description="A child you are guardian of.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> list[HistoryEntry]:
    """Every access decision, release and refusal about you (or your child), with receipts;
    a page at a time."""
    wanted = subject_for(principal, subject, vault)
    page, more = split_page(
        service.records.access_page(
            kinds=HISTORY_KINDS, after=after, limit=limit + 1, subject=wanted
        ),
        limit,
    )
    entries = []
    for leaf_index, kind, event in page:
        try:
            receipt: dict[str, Any] | None = build_receipt(
                ledger, anchors, leaf_index, getattr(request.app.state, "cosignatures", None)
            )
        except NotAnchoredError:
            receipt = None
        entries.append(
            HistoryEntry(
                kind=kind,
                leaf_index=leaf_index,
                at=event["at"],
                request_id=event["request_id"],
                requester=event["requester"],
                holder=event["holder"],
                purpose=event["purpose"],
                categories=event["categories"],
                decision=OUTCOMES.get(kind, event.get("decision", "deny")),
                reason=event.get("reason"),
                refusal=event.get("refusal"),
                breakglass=event.get("breakglass", False),
                relied_on=event.get("relied_on", []),
                receipt=receipt,
                pending_anchor=receipt is None,
            )
        )
    link_next(request, response, page[-1][0] if more else None)
    return entries
