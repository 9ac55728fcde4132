"""``consent-ledger demo``: a day of consent and access events on the embedded defaults.

It appends synthetic events (pseudonymous subjects only), seals checkpoints, then proves and
verifies an event and the log's consistency offline, as an outside verifier would.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Iterator
from typing import Any

from hashing import open_checkpoint, verify_consistency, verify_inclusion

from .events import EncodedEvent
from .log import Ledger
from .progress import Progress
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
    try:
        start = ledger.tree_size()
        encoded: list[EncodedEvent] = [
            ledger.encode(kind, data) for kind, data in synthetic_events(events, seed=start)
        ]
        progress = Progress("appended", total=len(encoded))
        half = len(encoded) // 2
        first_checkpoint = None
        for offset in range(0, len(encoded), 2000):
            progress.advance(len(ledger.append_encoded(encoded[offset : offset + 2000])))
            if first_checkpoint is None and offset + 2000 >= half:
                first_checkpoint = ledger.checkpoint()
        progress.finish()
        latest = ledger.checkpoint()
        print(f"log {ledger.origin}: {latest.tree_size} events, {events} new")
        print(f"public key: {ledger.verifier.to_vkey()}")
        print("latest signed checkpoint:")
        print("  " + latest.note.replace("\n", "\n  ").rstrip())

        # Verify as an outsider: trust only the public key and the signed checkpoints.
        verifier = ledger.verifier
        trusted = open_checkpoint(latest.note, verifier)
        leaf_index = start + events // 3
        proof = ledger.inclusion_proof(leaf_index, trusted.tree_size)
        verify_inclusion(
            proof.leaf_hash, leaf_index, trusted.tree_size, proof.hashes, trusted.root_hash
        )
        print(
            f"inclusion of leaf {leaf_index} in size {trusted.tree_size}: verified "
            f"({len(proof.hashes)} hashes)"
        )
        if first_checkpoint is not None:
            older = open_checkpoint(first_checkpoint.note, verifier)
            consistency = ledger.consistency_proof(older.tree_size, trusted.tree_size)
            verify_consistency(
                older.tree_size,
                trusted.tree_size,
                consistency.hashes,
                older.root_hash,
                trusted.root_hash,
            )
            print(
                f"consistency {older.tree_size} -> {trusted.tree_size}: verified "
                f"({len(consistency.hashes)} hashes)"
            )
    finally:
        ledger.close()
    return 0
