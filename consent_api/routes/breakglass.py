"""Break-glass follow-up: the requester's justification, and the regulator's review.

The justification text never enters the log (only a salted commitment to it); a regulator can
open it here and check it against the logged commitment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..auth import AUTH_RESPONSES
from ..breakglass import LATE, BreakGlassService, CaseStatus
from ..domain.vocab import Category
from ..errors import NotFoundError
from ..paging import DEFAULT_LIMIT, After, Limit, link_next, paged_responses, split_page
from .access import Institution, Now, Regulator, RequestId, problem_response

router = APIRouter(prefix="/v1/break-glass", tags=["break-glass"], responses=AUTH_RESPONSES)


def get_breakglass(request: Request) -> BreakGlassService:
    service: BreakGlassService = request.app.state.breakglass
    return service


Service = Annotated[BreakGlassService, Depends(get_breakglass)]


class JustificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000, pattern=r"\S", description="Never logged.")


class JustifiedOut(BaseModel):
    request_id: str
    leaf_index: int
    commitment: str = Field(description="SHA-256(salt || UTF-8 text), hex: what the log holds.")
    at: datetime
    justify_by: datetime
    late: bool


class OpenedOut(BaseModel):
    request_id: str
    text: str
    salt: str = Field(description="32 bytes, hex.")
    commitment: str
    justified_at: datetime
    leaf_index: int | None


class BreakGlassOut(BaseModel):
    request_id: str
    subject: str
    requester: str
    holder: str
    categories: list[Category]
    at: datetime
    decision_leaf_index: int
    justify_by: datetime
    justified_at: datetime | None
    justification_leaf_index: int | None
    status: CaseStatus
    late: bool


@router.post(
    "/{request_id}/justification",
    status_code=201,
    responses={
        404: problem_response("No such request"),
        409: problem_response("Not break-glass, or already justified"),
    },
)
def justify(
    request_id: RequestId,
    body: JustificationIn,
    principal: Institution,
    service: Service,
    clock: Now,
) -> JustifiedOut:
    """The requester justifies a break-glass access; the log keeps only a commitment."""
    logged = service.justify(
        request_id=request_id, requester=principal.id, text=body.text, now=clock()
    )
    event = logged.event
    return JustifiedOut(
        request_id=request_id,
        leaf_index=logged.leaf_index,
        commitment=event["commitment"],
        at=event["at"],
        justify_by=event["justify_by"],
        late=event["late"],
    )


@router.get(
    "/{request_id}/justification",
    responses={404: problem_response("Not justified")},
)
def open_justification(request_id: RequestId, _: Regulator, service: Service) -> OpenedOut:
    """A regulator opens the commitment: the text and salt it was made from."""
    found = service.justifications.get(request_id)
    if found is None:
        raise NotFoundError(f"request {request_id} has no justification")
    return OpenedOut(
        request_id=request_id,
        text=found.text,
        salt=found.salt.hex(),
        commitment=found.commitment.hex(),
        justified_at=found.justified_at,
        leaf_index=found.leaf_index,
    )


@router.get("", responses=paged_responses("A page of cases, by decision leaf"))
def list_break_glass(
    request: Request,
    response: Response,
    _: Regulator,
    service: Service,
    clock: Now,
    overdue: Annotated[
        bool, Query(description="Only those unjustified past their deadline, or justified late.")
    ] = False,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> list[BreakGlassOut]:
    """Break-glass decisions and their justifications, from the log's projection, a page at a
    time (the cursor is the decision's leaf index)."""
    cases, more = split_page(
        service.cases(clock(), after=after, limit=limit + 1, late_only=overdue), limit
    )
    link_next(request, response, cases[-1][0].decision_leaf_index if more else None)
    return [
        BreakGlassOut(
            request_id=case.request_id,
            subject=case.subject,
            requester=case.requester,
            holder=case.holder,
            categories=[Category(c) for c in case.categories],
            at=datetime.fromisoformat(case.at),
            decision_leaf_index=case.decision_leaf_index,
            justify_by=datetime.fromisoformat(case.justify_by),
            justified_at=_instant(case.justified_at),
            justification_leaf_index=case.justification_leaf_index,
            status=status,
            late=status in LATE,
        )
        for case, status in cases
    ]


def _instant(at: str | None) -> datetime | None:
    return None if at is None else datetime.fromisoformat(at)
