"""Checking grant rows against the logged decisions that issued them.

A grant row is what a redemption trusts to release data: a row inserted or edited by hand (a
break-glass grant out of nothing, another holder, more categories, a later expiry) would
release what no logged decision permitted. So before a grant is redeemed (and in ``fsck``) its
row is held to its permit leaf: the leaf at ``decision_leaf_index`` is below the tree size,
hashes to the leaf hash stored there, is an ``access.decided`` permit, and says what the row
says of request id, requester (and its type), holder, subject, categories, purpose, break-glass,
issue time (the decision's ``at``) and expiry (``grant_expires_at``).

The leaf does not carry the token (nor its hash): a row whose token hash alone was replaced
passes. It is bound to its decision all the same, and only that decision's holder may redeem it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from hashing import leaf_hash
from ledger.store import LedgerStore

from .grants import Grant, UnreadableGrantError
from .integrity import Mismatch

TABLE: Final = "grant"
_INSTANT_SLACK: Final = 1e-6
"""A stored time may differ from its logged instant by float rounding, never by more."""


def grant_mismatches(
    store: LedgerStore, grants: Sequence[Grant | UnreadableGrantError]
) -> list[Mismatch]:
    """Each of ``grants`` that is not what its permit leaf issued (read in one transaction)."""
    size, leaves = store.leaves_at(
        [grant.decision_leaf_index for grant in grants if isinstance(grant, Grant)]
    )
    found = []
    for grant in grants:
        index = grant.decision_leaf_index
        if isinstance(grant, UnreadableGrantError):
            found.append(Mismatch(TABLE, index, grant.reason))
            continue
        leaf = leaves.get(index)
        if leaf is None:
            reason: str | None = f"names leaf {index}, beyond the log's {size}"
        elif leaf_hash(leaf.leaf_data) != leaf.leaf_hash:
            reason = "its leaf does not hash to the leaf hash stored at its index"
        else:
            reason = _differs(grant, leaf.leaf_data)
        if reason is not None:
            found.append(Mismatch(TABLE, index, reason))
    return found


def _differs(grant: Grant, leaf_data: bytes) -> str | None:
    """What of ``grant`` its permit leaf does not say (None: all of it is said)."""
    try:
        value = json.loads(leaf_data)
        kind, data = value["kind"], value["data"]
        if kind != "access.decided" or data["decision"] != "permit":
            return "its leaf is not a permit"
        logged: dict[str, Any] = {
            "request_id": data["request_id"],
            "requester": data["requester"],
            "requester_type": data["requester_type"],
            "holder": data["holder"],
            "subject": data["subject"],
            "categories": sorted(data["categories"]),
            "purpose": data["purpose"],
            "breakglass": data["breakglass"] is True,
        }
        issued_at = datetime.fromisoformat(data["at"]).timestamp()
        expires_at = datetime.fromisoformat(data["grant_expires_at"]).timestamp()
    except (KeyError, TypeError, ValueError) as exc:
        return f"its leaf is not a permit that issued a grant ({exc})"
    stored: dict[str, Any] = {
        "request_id": grant.request_id,
        "requester": grant.requester,
        "requester_type": grant.requester_type.value,
        "holder": grant.holder,
        "subject": grant.subject,
        "categories": sorted(grant.categories),
        "purpose": grant.purpose.value,
        "breakglass": grant.breakglass,
    }
    for name, value in stored.items():
        if logged[name] != value:
            return f"its {name} is not what the logged decision says"
    if abs(grant.issued_at - issued_at) > _INSTANT_SLACK:
        return "its issued_at is not the logged decision's instant"
    if abs(grant.expires_at - expires_at) > _INSTANT_SLACK:
        return "its expires_at is not the logged grant_expires_at"
    return None
