"""What the anchorer re-checks on the chain before it builds on it: the chain must not know
more of the log than the database holds, the confirmed anchors must still be there, and the
registry's code must be at its address before anything is sent to it.

A chain can lose blocks (a reorg, a node restarted from older state, a reset development
chain): an anchor confirmed once is not confirmed for ever. The newest confirmed anchor's block
is re-read on every pass (one call: blocks chain by hash, so the newest still being canonical
vouches for all older ones). Anchors found gone are forgotten, newest first down to the first
one that is still there, so that the log's anchors API and receipts cite only anchors that
exist and the anchorer anchors those checkpoints again, in order.
"""

from __future__ import annotations

import logging

from contracts.client import AnchorRegistryClient
from contracts.errors import ChainError
from contracts.records import AnchorRecord

from .anchor_store import AnchorStore, StoredAnchor
from .errors import RollbackError
from .log import Ledger

log = logging.getLogger(__name__)


def check_log_against_chain(ledger: Ledger, registry: AnchorRegistryClient, log_id: bytes) -> None:
    """Raise RollbackError when the chain's latest anchor of the log is past the database's
    tree, or anchors another root at its size."""
    latest = registry.latest(log_id)
    if latest is None:
        return
    size = ledger.tree_size()
    where = f"chain {latest.chain_id}, registry {latest.contract}, block {latest.block_number}"
    if latest.tree_size > size:
        raise RollbackError(
            f"the chain anchors this log at size {latest.tree_size} ({where}) but the database "
            f"holds {size} leaves: it was restored from an older backup or rolled back. Restore "
            f"a backup holding at least {latest.tree_size} leaves; an anchor cannot be undone, so "
            "without one this log can only be continued under a new origin"
        )
    if ledger.root(latest.tree_size) != latest.root_hash:
        raise RollbackError(
            f"the chain anchors another tree of size {latest.tree_size} for this log ({where}): "
            "the database was forked (an old backup appended to) or edited, or another log "
            "shares its origin; restore a backup from before the fork"
        )


def forget_vanished(anchors: AnchorStore, registry: AnchorRegistryClient) -> list[StoredAnchor]:
    """Forget confirmed anchors whose blocks the chain no longer has; return them, newest
    first. Superseded marks above the newest surviving anchor go too: what passed them may be
    gone as well, and the anchorer decides again."""
    vanished: list[StoredAnchor] = []
    before: int | None = None
    while True:
        page = anchors.confirmed_descending(before_size=before, limit=100)
        survivor = next((a for a in page if _still_there(registry, a)), None)
        vanished.extend(a for a in page if survivor is None or a.tree_size > survivor.tree_size)
        if survivor is not None or len(page) < 100:
            break
        before = page[-1].tree_size
    if vanished:
        keep = 0 if survivor is None else survivor.tree_size
        anchors.forget_above(keep)
        log.error(
            "the chain lost the anchors of sizes %s (txs %s): they will be anchored again",
            [a.tree_size for a in vanished],
            ["0x" + a.tx_hash.hex() for a in vanished],
        )
    return vanished


def newest_still_there(anchors: AnchorStore, registry: AnchorRegistryClient) -> bool:
    """The one call per pass: whether the newest confirmed anchor's block is still canonical."""
    newest = anchors.latest_confirmed()
    return newest is None or _still_there(registry, newest)


def require_registry_code(registry: AnchorRegistryClient, log_id: bytes) -> None:
    """Raise ChainError, before anything is sent, when the registry's code is gone."""
    if registry.has_code():
        return
    account = registry.account.address if registry.account is not None else "the anchorer"
    raise ChainError(
        f"there is no AnchorRegistry at {registry.address} on chain {registry.chain.chain_id} "
        "(the chain was reset, or this is another chain); nothing was sent. Deploy a registry "
        f"there, assign log 0x{log_id.hex()} to {account} (assignLog), and set "
        "CONSENT_LEDGER_CONTRACT_ADDRESS to its address"
    )


def _still_there(registry: AnchorRegistryClient, anchor: StoredAnchor) -> bool:
    if anchor.record is None:
        return False
    record = AnchorRecord.from_json(anchor.record)
    if (record.chain_id, record.contract) != (registry.chain.chain_id, registry.address):
        return True  # on a chain or registry used before: not this node's to judge
    return registry.is_canonical(record)
