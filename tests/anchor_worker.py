"""A process that anchors a ledger's queued checkpoints and can SIGKILL itself mid-way.

``python -m tests.anchor_worker DATA_DIR DB_URL STEP [RPC_URL KEY_FILE]``: STEP names the call
after which the process kills itself (``none`` runs to the end); the test then restarts.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from contracts.client import AnchorRegistryClient
from ledger.anchor_store import AnchorStore
from ledger.anchoring import Anchorer
from ledger.log import Ledger
from ledger.settings import LedgerSettings

STEPS: dict[str, tuple[Any, str]] = {
    "prepare": (AnchorRegistryClient, "prepare_anchor"),
    "record_prepared": (AnchorStore, "record_prepared"),
    "send": (AnchorRegistryClient, "send"),
    "wait": (AnchorRegistryClient, "wait"),
}


def die_after(owner: Any, name: str) -> None:
    original = getattr(owner, name)

    def call_then_die(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(owner, name, call_then_die)


def main() -> None:
    data_dir, db_url, step = sys.argv[1:4]
    rpc = (
        {"rpc_url": sys.argv[4], "anchor_key_file": Path(sys.argv[5])} if len(sys.argv) > 5 else {}
    )
    settings = LedgerSettings(
        data_dir=Path(data_dir), database_url=db_url, origin="test.example/log", **rpc
    )
    if step != "none":
        die_after(*STEPS[step])
    ledger = Ledger.open(settings)
    anchorer = Anchorer(ledger)
    report = anchorer.run_once()
    print(f"anchored {[r.tree_size for r in report.anchored]} queued {report.queued}")
    anchorer.close()
    ledger.close()
    sys.exit(0 if report.error is None else 3)


if __name__ == "__main__":
    main()
