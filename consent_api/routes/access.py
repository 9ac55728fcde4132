"""Access requests, grant redemption and break-glass, for institutions and regulators.

An institution asks for a resident's data held by another institution; the answer is logged
whatever it is. A permit carries a single-use grant token, which the holder redeems before it
releases anything. Break-glass requests are decided here too; ``routes.breakglass`` takes
their justifications.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ..access import AccessService, Clock, Event, get_clock
from ..auth import AUTH_RESPONSES, Principal, Role, require_roles
from ..domain.vocab import INSTITUTION_ID_PATTERN, Category, InstitutionType, Purpose
from ..errors import PROBLEM_JSON, ForbiddenError
from ..grants import GRANT_TOKEN_PATTERN
from ..identity import SUBJECT_PATTERN, Subject
from ..paging import DEFAULT_LIMIT, After, Limit, link_next, paged_responses, split_page
from ..redemption import redeem
from ..throttle import get_pools

router = APIRouter(tags=["access"], responses=AUTH_RESPONSES)

REQUEST_ID_PATTERN = r"^[0-9a-f]{32}$"
InstitutionId = Annotated[str, Field(pattern=INSTITUTION_ID_PATTERN)]
Categories = Annotated[list[Category], Field(min_length=1, max_length=len(Category))]
Institution = Annotated[Principal, Depends(require_roles(Role.INSTITUTION))]
Regulator = Annotated[Principal, Depends(require_roles(Role.REGULATOR))]
Reader = Annotated[Principal, Depends(require_roles(Role.INSTITUTION, Role.REGULATOR))]
RequestId = Annotated[str, Path(pattern=REQUEST_ID_PATTERN)]


async def get_access(request: Request) -> AccessService:
    service: AccessService = request.app.state.access
    return service


Service = Annotated[AccessService, Depends(get_access)]
Now = Annotated[Clock, Depends(get_clock)]


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {}}}


# -- schemas ---------------------------------------------------------------------------------


class AccessRequestIn(BaseModel):
    """The requester is the calling institution; its type comes from the registry."""

    model_config = ConfigDict(extra="forbid")

    subject: Subject
    holder: InstitutionId = Field(description="The institution holding the data.")
    categories: Categories
    purpose: Purpose
    emergency: StrictBool = Field(
        default=False, description="Break-glass: emergency purpose and categories only."
    )


class ReliedOn(BaseModel):
    consent_id: str
    leaf_index: int = Field(description="The leaf of the consent version the decision read.")


class GrantOut(BaseModel):
    token: str = Field(description="Single-use secret, shown once: hand it to the holder.")
    expires_at: datetime


class DecisionOut(BaseModel):
    request_id: str
    decision: Literal["permit", "deny"]
    reason: str = Field(description="What the consents said (a stable reason code).")
    relied_on: list[ReliedOn]
    leaf_index: int = Field(description="The leaf of the logged decision.")
    at: datetime
    breakglass: bool
    justify_by: datetime | None = Field(description="Break-glass only: justify before this.")
    grant: GrantOut | None = Field(description="For a permit: the grant the holder redeems.")


class RedeemIn(BaseModel):
    """What the holder was asked for, with the token the requester handed it."""

    model_config = ConfigDict(extra="forbid")

    grant_token: str = Field(pattern=GRANT_TOKEN_PATTERN)
    requester: InstitutionId
    subject: Subject
    categories: Categories
    purpose: Purpose


class ReleaseOut(BaseModel):
    request_id: str
    subject: str
    requester: str
    holder: str
    categories: list[Category]
    purpose: Purpose
    breakglass: bool
    relied_on: list[ReliedOn]
    at: datetime
    leaf_index: int = Field(description="The leaf of the logged release.")


class EventOut(BaseModel):
    kind: str
    leaf_index: int
    at: datetime
    refusal: str | None = None


class AccessRequestOut(BaseModel):
    request_id: str
    subject: str
    requester: str
    requester_type: InstitutionType
    holder: str
    categories: list[Category]
    purpose: Purpose
    decision: Literal["permit", "deny"]
    reason: str
    relied_on: list[ReliedOn]
    breakglass: bool
    at: datetime
    leaf_index: int
    events: list[EventOut] = Field(description="Redemptions and refusals under this request.")


def _request_out(leaf_index: int, event: Event) -> AccessRequestOut:
    fields = {name: event[name] for name in AccessRequestOut.model_fields if name in event}
    return AccessRequestOut(**fields, leaf_index=leaf_index, events=[])


# -- requests --------------------------------------------------------------------------------


@router.post(
    "/v1/access-requests",
    status_code=201,
    response_model=DecisionOut,
    responses={
        404: problem_response("No resident has this subject id"),
        410: problem_response("The resident was erased"),
    },
)
async def request_access(
    body: AccessRequestIn, principal: Institution, service: Service, clock: Now
) -> Response:
    """Ask for a resident's data held by another institution; the decision is logged."""
    assert principal.institution_type is not None
    # A coroutine: the service decides and queues the decision's leaf itself, and this waits
    # for its group commit without holding a thread (a plain function route would also take
    # two hops to the thread pool, the route and then its response check).
    decided = await service.decide_async(
        requester=principal.id,
        requester_type=principal.institution_type,
        subject=body.subject,
        holder=body.holder,
        categories=frozenset(body.categories),
        purpose=body.purpose,
        emergency=body.emergency,
        now=clock(),
    )
    event = decided.event
    grant = None
    if decided.grant_token is not None:
        grant = {"token": decided.grant_token, "expires_at": event["grant_expires_at"]}
    # The busiest route answers with bytes it encodes itself: every field is already in the
    # logged event, in the form DecisionOut describes, so FastAPI's second validation of a
    # returned model (and its encoder) would only cost time.
    answer = {
        "request_id": event["request_id"],
        "decision": event["decision"],
        "reason": event["reason"],
        "relied_on": event["relied_on"],
        "leaf_index": decided.leaf_index,
        "at": event["at"],
        "breakglass": event["breakglass"],
        "justify_by": event.get("justify_by"),
        "grant": grant,
    }
    return Response(orjson.dumps(answer), status_code=201, media_type="application/json")


@router.get(
    "/v1/access-requests",
    responses=paged_responses("A page of decisions, oldest first"),
)
def list_access_requests(
    request: Request,
    response: Response,
    principal: Reader,
    service: Service,
    institution: Annotated[str | None, Query(pattern=INSTITUTION_ID_PATTERN)] = None,
    subject: Annotated[str | None, Query(pattern=SUBJECT_PATTERN)] = None,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> list[AccessRequestOut]:
    """Decisions with what became of them: an institution's own (as requester or holder),
    or for a regulator all, by institution or subject. A page at a time, by decision leaf."""
    if principal.role is Role.INSTITUTION:
        if institution not in (None, principal.id):
            raise ForbiddenError("an institution sees only its own requests")
        institution = principal.id
    decided, more = split_page(
        service.records.access_page(
            kinds=("access.decided",),
            after=after,
            limit=limit + 1,
            subject=subject,
            party=institution,
        ),
        limit,
    )
    requests = {event["request_id"]: _request_out(leaf, event) for leaf, _, event in decided}
    # What followed from these decisions, involving the same party (a decision precedes it).
    for leaf_index, kind, event in service.records.access_of_requests(requests, party=institution):
        if kind != "access.decided":
            requests[event["request_id"]].events.append(
                EventOut(
                    kind=kind, leaf_index=leaf_index, at=event["at"], refusal=event.get("refusal")
                )
            )
    link_next(request, response, decided[-1][0] if more else None)
    return list(requests.values())


# -- grants ----------------------------------------------------------------------------------


@router.post(
    "/v1/grants/redeem",
    tags=["grants"],
    responses={
        403: problem_response(
            "Not the holder and requester the grant was issued to, or one of them is no longer"
            " active"
        ),
        404: problem_response("No grant has this token, or no resident has this subject id"),
        409: problem_response("The grant was already redeemed"),
        410: problem_response("The grant has expired, or the resident was erased"),
        422: problem_response(
            "The grant covers other data, the consents no longer permit it, or the requester is"
            " not a registered institution"
        ),
    },
)
async def redeem_grant(
    request: Request, body: RedeemIn, principal: Institution, service: Service, clock: Now
) -> ReleaseOut:
    """The holder redeems a grant before releasing data; success is the logged release."""
    work = partial(
        redeem,
        service,
        holder=principal.id,
        token=body.grant_token,
        requester=body.requester,
        subject=body.subject,
        categories=frozenset(body.categories),
        purpose=body.purpose,
        now=clock(),
    )
    # Its own threads: readers queueing for the default pool cannot hold a grant up until it
    # expires.
    released = await anyio.to_thread.run_sync(work, limiter=get_pools(request).redemption)
    fields = {
        name: released.event[name] for name in ReleaseOut.model_fields if name != "leaf_index"
    }
    return ReleaseOut(**fields, leaf_index=released.leaf_index)
