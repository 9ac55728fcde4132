"""``consent-ledger demo``: a day of consent and access events on the embedded defaults.

It appends synthetic events (pseudonymous subjects only), seals and anchors checkpoints on the
embedded chain, then writes one event's receipt and verifies it as an outside verifier would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Iterator
from typing import Any

from contracts.records import AnchorRecord
from hashing import NoteVerifier

from .anchoring import Anchorer
from .events import EncodedEvent
from .log import Ledger
from .progress import Progress
from .receipts import build_receipt, verify_receipt
from .settings import LedgerSettings

_CATEGORIES = ["lab-results", "imaging", "prescriptions", "discharge-summaries"]
_PURPOSES = ["treatment", "referral", "remote-consultation", "family-doctor"]


def synthetic_events(count: int, *, seed: int = 7) -> Iterator[tuple[str, dict[str, Any]]]:
    """Plausible consent and access events for ``count`` leaves, deterministic for a seed."""
    rng = random.Random(seed)
    secret = b"demo-platform-secret"
    institutions = [f"inst-{i:03d}" for i in range(1, 31)]
    for n in range(count):
        resident = f"resident-{rng.randrange(5000):05d}"
        subject = hmac.new(secret, resident.encode(), hashlib.sha256).hexdigest()
        at = f"2026-11-26T{8 + n * 10 // max(count, 1):02d}:{rng.randrange(60):02d}:00Z"
        if n % 5 == 0:
            yield (
                "consent.granted",
                {
                    "consent_id": f"c-{n}",
                    "subject": subject,
                    "grantee": rng.choice(institutions),
                    "categories": rng.sample(_CATEGORIES, 2),
                    "purposes": [rng.choice(_PURPOSES)],
                    "period": {"start": "2026-11-26", "end": "2027-11-26"},
                    "at": at,
                },
            )
        else:
            permit = rng.random() < 0.8
            yield (
                "access.decided",
                {
                    "request_id": f"r-{n}",
                    "subject": subject,
                    "requester": rng.choice(institutions),
                    "holder": rng.choice(institutions),
                    "categories": [rng.choice(_CATEGORIES)],
                    "purpose": rng.choice(_PURPOSES),
                    "decision": "permit" if permit else "deny",
                    "at": at,
                },
            )


def run_demo(settings: LedgerSettings, *, events: int) -> int:
    ledger = Ledger.open(settings)
    anchorer = Anchorer(ledger)
    try:
        start = ledger.tree_size()
        encoded: list[EncodedEvent] = [
            ledger.encode(kind, data) for kind, data in synthetic_events(events, seed=start)
        ]
        progress = Progress("appended", total=len(encoded))
        for offset in range(0, len(encoded), 2000):
            progress.advance(len(ledger.append_encoded(encoded[offset : offset + 2000])))
            anchorer.run_once()  # seals every checkpoint_every events and anchors what is sealed
        progress.finish()
        final = anchorer.run_once(force_seal=True)
        if final.error is not None:
            print(f"anchoring failed: {final.error}")
            return 3
        _show_log(ledger, events)
        _show_anchors(anchorer)
        _check_receipt(ledger, anchorer, start + events // 3)
    finally:
        anchorer.close()
        ledger.close()
    return 0


def _show_log(ledger: Ledger, events: int) -> None:
    latest = ledger.latest_checkpoint()
    assert latest is not None
    print(f"\nlog {ledger.origin}: {latest.tree_size} events, {events} new")
    print(f"public key: {ledger.verifier.to_vkey()}")
    print("latest signed checkpoint:")
    print("  " + latest.note.replace("\n", "\n  ").rstrip())


def _show_anchors(anchorer: Anchorer) -> None:
    registry = anchorer.registry
    assert registry is not None
    print(f"\nanchored on chain {registry.chain.chain_id}, registry {registry.address}:")
    print(f"  {'tree size':>10}  {'block':>6}  {'gas':>7}  transaction")
    for anchor in anchorer.anchors.confirmed()[-8:]:
        record = AnchorRecord.from_json(anchor.record or "")
        print(
            f"  {record.tree_size:>10}  {record.block_number:>6}  {record.gas_used:>7}  "
            f"0x{record.tx_hash.hex()}"
        )


def _check_receipt(ledger: Ledger, anchorer: Anchorer, leaf_index: int) -> None:
    """Verify one receipt as an outsider would: the public key and the chain, nothing else."""
    receipt = build_receipt(ledger, anchorer.anchors, leaf_index)
    path = ledger.settings.data_dir / f"receipt-{leaf_index}.json"
    path.write_text(json.dumps(receipt, indent=2), encoding="utf-8")
    verifier = NoteVerifier.from_vkey(ledger.verifier.to_vkey())
    check = verify_receipt(json.loads(path.read_text("utf-8")), verifier, anchorer.registry)
    print(
        f"\nreceipt of leaf {check.leaf_index} written to {path}: inclusion in checkpoint "
        f"{check.checkpoint.tree_size}, signature and anchor in block "
        f"{check.anchor.block_number} verified"
    )
