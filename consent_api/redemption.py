"""Grant redemption: the holder presents a grant before it releases data.

Success is logged as ``access.released``; every refusal as ``access.refused`` with its
``refusal`` code, before the problem response goes out; the grant's outcome is settled in the
same transaction. Neither event holds the token.

What a caller presents about other parties is checked before anything is logged: the
requester must be a registered institution and the subject a registered, unerased resident,
or the redemption is refused unlogged. A refusal names only what the service established: a
token no grant has names only the caller (the holder), never the requester or subject it
claimed, so nothing a caller types can enter a resident's history. Requester and holder must
both still be active when the grant is redeemed. The grant row itself is held to the permit
leaf that issued it (``grant_check``) before anything is logged or released.
"""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from ledger.batcher import EventRows

from .access import AccessService, Event, Logged, instant, relied_on
from .domain.decide import AccessRequest, decide
from .domain.vocab import Category, Purpose
from .errors import UnprocessableError
from .grant_check import TABLE, grant_mismatches
from .grants import (
    Claim,
    ConsentWithdrawnError,
    Grant,
    GrantExpiredError,
    GrantMismatchError,
    GrantPartyInactiveError,
    GrantRedeemedError,
    GrantRefusedError,
    GrantStore,
    GrantWrongPartyError,
    UnknownGrantError,
    UnreadableGrantError,
    grant_ref,
    token_hash,
)
from .integrity import Mismatch


def redeem(
    service: AccessService,
    *,
    holder: str,
    token: str,
    requester: str,
    subject: str,
    categories: frozenset[Category],
    purpose: Purpose,
    now: datetime,
) -> Logged:
    """Release under a grant presented by ``holder``, or log the refusal and raise it."""
    _check_presented(service, requester=requester, subject=subject)
    hashed = token_hash(token)
    grant = _verified_grant(service, hashed)
    if grant is None:
        presented = {
            "request_id": "",
            "subject": "",  # claimed, not established: never logged under another's name
            "requester": "",
            "holder": holder,
            "categories": sorted(categories),
            "purpose": purpose.value,
            "grant_ref": grant_ref(hashed),
        }
        _refuse(service, UnknownGrantError("no grant has this token"), presented, now)
    event: Event = {
        "request_id": grant.request_id,
        "subject": grant.subject,
        "requester": grant.requester,
        "holder": holder,
        "categories": sorted(grant.categories),
        "purpose": grant.purpose.value,
        "grant_ref": grant.ref,
        "decision_leaf_index": grant.decision_leaf_index,
        "breakglass": grant.breakglass,
    }
    if holder != grant.holder or requester != grant.requester:
        wrong = GrantWrongPartyError("the grant was not issued to this holder and requester")
        _refuse(service, wrong, {**event, "grant_holder": grant.holder}, now)
    if (subject, categories, purpose) != (grant.subject, grant.categories, grant.purpose):
        mismatch = GrantMismatchError("the grant covers another subject, data or purpose")
        _refuse(service, mismatch, event, now)
    inactive = _inactive(service, grant.requester, grant.holder)
    if inactive is not None:  # unclaimed: an inactive party's grant is never released
        refused = GrantPartyInactiveError(f"the institution {inactive} is no longer active")
        _refuse(service, refused, {**event, "inactive": inactive}, now)
    claim = service.grants.claim(hashed, now.timestamp())
    if claim is Claim.REDEEMED:
        _refuse(service, GrantRedeemedError("the grant was already redeemed"), event, now)
    if claim is Claim.EXPIRED:
        _refuse(service, GrantExpiredError("the grant has expired"), event, now)
    relied: list[Event] = []
    if not grant.breakglass:  # an emergency permit never rested on consent
        request = AccessRequest(
            requester=grant.requester,
            requester_type=grant.requester_type,
            holder=grant.holder,
            subject=grant.subject,
            categories=grant.categories,
            purpose=grant.purpose,
            at=now,
        )
        with service.consents_of(grant.subject) as reader:  # no change under way meanwhile
            history = service.records.consent_history_raw(grant.subject, reader)
        decision = decide(request, [consent for _, consent in history])
        relied = relied_on(history, request, decision.relied_on)
        if decision.decision != "permit":
            withdrawn = ConsentWithdrawnError(
                f"the consents no longer permit this request ({decision.reason})"
            )
            event.update(reason=decision.reason.value, relied_on=relied)
            _refuse(service, withdrawn, event, now, settle=grant.request_id)
    event.update(relied_on=relied, at=instant(now))
    leaf_index = service.log("access.released", event, also=_settling(grant.request_id, "released"))
    return Logged(leaf_index, event)


def _verified_grant(service: AccessService, hashed: bytes) -> Grant | None:
    """The grant of ``hashed`` if it is what its logged permit issued, and unredeemed only if
    the log settled it nowhere; a row that is not (written by hand) is refused as a
    storage-integrity problem, counted, and nothing is logged."""
    try:
        grant = service.grants.get(hashed)
    except UnreadableGrantError as exc:
        service.records.integrity.refuse(Mismatch(TABLE, exc.decision_leaf_index, exc.reason))
    if grant is None:
        return None
    for mismatch in grant_mismatches(service.records.store, [grant]):
        service.records.integrity.refuse(mismatch)
    if grant.redeemed_at is None:
        # Single use rests on redeemed_at: a row set back by hand must not release twice.
        for leaf_index, kind, event in service.records.access_of_requests([grant.request_id]):
            if kind == "access.released" or event.get("refusal") == ConsentWithdrawnError.refusal:
                reason = f"it says unredeemed, but leaf {leaf_index} settled it"
                service.records.integrity.refuse(Mismatch(TABLE, grant.decision_leaf_index, reason))
    return grant


def _check_presented(service: AccessService, *, requester: str, subject: str) -> None:
    """Refuse, unlogged, a redemption naming an unregistered requester or an unknown or erased
    subject (UnprocessableError, UnknownSubjectError, ErasedError)."""
    if service.institutions.get(requester) is None:
        raise UnprocessableError(f"the requester {requester} is not a registered institution")
    service.vault.ensure_registered(subject)


def _inactive(service: AccessService, *institution_ids: str) -> str | None:
    """The first of ``institution_ids`` not active now (deactivated, or gone), if any."""
    for institution_id in institution_ids:
        institution = service.institutions.get(institution_id)
        if institution is None or not institution.active:
            return institution_id
    return None


def _refuse(
    service: AccessService,
    error: GrantRefusedError,
    event: Event,
    now: datetime,
    *,
    settle: str | None = None,
) -> NoReturn:
    logged = {**event, "at": instant(now), "refusal": error.refusal}
    also = None if settle is None else _settling(settle, "refused")
    leaf_index = service.log("access.refused", logged, also=also)
    error.extensions.update(leaf_index=leaf_index, request_id=event["request_id"] or None)
    raise error


def _settling(request_id: str, outcome: str) -> EventRows:
    """The grant's outcome, settled in the transaction that logs it."""
    return lambda leaf_index: [GrantStore.settle_row(request_id, outcome, leaf_index)]
