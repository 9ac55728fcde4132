"""Scale runs of anchoring (issue 4): gas and time per batch against one transaction per event.

A batch is one checkpoint: sealing signs the tree head, anchoring sends one transaction with
its root. The baseline writes one chain event per log event (the same registry call, one per
event), as a design without Merkle batching would.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from contracts.client import AnchorRegistryClient
from ledger.anchoring import Anchorer, log_id_for
from ledger.log import Ledger
from ledger.settings import LedgerSettings

from .common import seconds
from .log_scale import fill


def batch_anchoring(count: int) -> dict[str, Any]:
    """Seal and anchor ``count`` pending events as one batch on the embedded chain."""
    with tempfile.TemporaryDirectory(prefix="bench-anchor-") as tmp:
        settings = LedgerSettings(data_dir=Path(tmp), checkpoint_every=10**9)
        ledger = Ledger.open(settings)
        anchorer = Anchorer(ledger)
        try:
            # The registry exists and the log has a first anchor, as in any running platform.
            fill(ledger, 1)
            assert anchorer.run_once(force_seal=True).error is None
            fill(ledger, 1 + count)
            took = seconds(lambda: anchorer.run_once(force_seal=True))
            confirmed = anchorer.anchors.latest_confirmed()
            assert confirmed is not None
            assert confirmed.tree_size == 1 + count
            registry = anchorer.registry
            assert registry is not None
            record = registry.find_receipt(confirmed.tx_hash)
            assert record is not None
            gas = record.gas_used
        finally:
            anchorer.close()
            ledger.close()
    return {"events": count, "gas": gas, "seal_and_anchor_s": round(took, 3)}


def per_event_anchoring(count: int) -> dict[str, Any]:
    """The baseline: one registry transaction for each of ``count`` events."""
    with tempfile.TemporaryDirectory(prefix="bench-per-event-") as tmp:
        ledger = Ledger.open(LedgerSettings(data_dir=Path(tmp)))
        anchorer = Anchorer(ledger)
        try:
            fill(ledger, count)
            registry = anchorer.connect()  # deploys the registry, as in the batch run
            leaves = ledger.leaves(0, count)
            log_id = log_id_for("per-event-baseline")
            assert registry.account is not None
            registry.assign_log(log_id, registry.account.address)
            gas = 0

            def send_each() -> None:
                nonlocal gas
                for leaf in leaves:
                    gas += _anchor(registry, log_id, leaf.leaf_index + 1, leaf.leaf_hash)

            took = seconds(send_each)
        finally:
            anchorer.close()
            ledger.close()
    return {"events": count, "gas": gas, "anchor_s": round(took, 3)}


def _anchor(registry: AnchorRegistryClient, log_id: bytes, size: int, digest: bytes) -> int:
    return registry.anchor(log_id, size, digest).gas_used


def compare(batch_sizes: list[int], measured_baseline: list[int]) -> list[dict[str, Any]]:
    """Batches of each size beside the per-event baseline, measured or, past the largest
    measured size, extrapolated linearly from it (its gas per event is constant)."""
    baselines = {n: per_event_anchoring(n) for n in measured_baseline}
    largest = baselines[max(baselines)]
    gas_per_event = largest["gas"] / largest["events"]
    seconds_per_event = largest["anchor_s"] / largest["events"]
    rows = []
    for count in batch_sizes:
        batch = batch_anchoring(count)
        base = baselines.get(count)
        base_gas = base["gas"] if base else round(gas_per_event * count)
        base_s = base["anchor_s"] if base else round(seconds_per_event * count, 1)
        rows.append(
            {
                "events": count,
                "batch_gas": batch["gas"],
                "batch_seal_and_anchor_s": batch["seal_and_anchor_s"],
                "per_event_gas": base_gas,
                "per_event_s": base_s,
                "per_event_measured": base is not None,
                "gas_ratio": round(base_gas / batch["gas"], 1),
                "time_ratio": round(base_s / batch["seal_and_anchor_s"], 1),
            }
        )
    return rows
