"""The explicit way past a refused rollback: accept the database as it is, and say what was lost.

``Ledger.open`` refuses a database behind the newest checkpoint the log signed. Restoring a
newer backup is the first way out. When there is none, ``accept_rollback`` (``consent-ledger
recover --accept-rollback``) keeps the old witness file aside (renamed, never deleted), makes
the database's own tree the witness, and records the rollback in the log's metadata, so that
it is written down where the next operator and ``fsck`` look.

What it cannot undo: checkpoints and receipts of the lost tree already handed out, and anchors
of it already on chain. Against those the rolled-back log is a fork, and the anchorer refuses
a chain that anchors more of this log than the database holds (``ledger.anchoring``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from .log import Ledger
from .settings import LedgerSettings

log = logging.getLogger(__name__)


def accept_rollback(settings: LedgerSettings) -> dict[str, Any]:
    """Accept the database's tree as the log's; return a summary of what was given up."""
    ledger = Ledger.open_unchecked(settings)
    try:
        witnessed = ledger.witness.read()
        size = ledger.tree_size()
        kept = ledger.witness.set_aside()
        # The database's checkpoints past its own tree are of the lost tree, as is the witness.
        report: dict[str, Any] = {
            "accepted_rollback": True,
            "database_tree_size": size,
            "witnessed_tree_size": None if witnessed is None else witnessed.tree_size,
            "lost_leaves": 0 if witnessed is None else max(0, witnessed.tree_size - size),
            "old_witness_kept_at": None if kept is None else str(kept),
            "at": time.time(),
        }
        ledger.store.set_meta(f"rollback-accepted:{int(report['at'])}", json.dumps(report))
        log.warning("rollback accepted: %s", report)
        ledger.check_storage()  # the tree itself must still be sound
        report["checkpoint"] = ledger.checkpoint().tree_size if size else None
        return report
    finally:
        ledger.close()
