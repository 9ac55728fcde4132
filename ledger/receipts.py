"""Receipts: one JSON document proving that an event is in the log and anchored on a chain.

A receipt holds the event, its leaf index, the inclusion proof to an anchored checkpoint, that
signed checkpoint and the anchor record. Checking one needs no database: the proof and the
signature offline against the log's public key, the anchor against a chain the verifier trusts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.client import AnchorRegistryClient
from contracts.errors import AnchorMismatchError
from contracts.records import AnchorRecord
from hashing import Checkpoint, NoteVerifier, VerificationError, open_checkpoint

from . import offline
from .anchor_store import AnchorStore
from .anchoring import log_id_for
from .errors import DocumentError, IntegrityError, LedgerError, MismatchError
from .events import decode_leaf
from .log import Ledger

RECEIPT_VERSION = 1
RECEIPT_KEYS = frozenset(
    {"receipt_version", "leaf_index", "event", "tree_size", "proof", "checkpoint", "anchor"}
)


class NotAnchoredError(LedgerError):
    """The event is logged, but no anchored checkpoint covers it yet."""


def build_receipt(ledger: Ledger, anchors: AnchorStore, leaf_index: int) -> dict[str, Any]:
    anchor = anchors.covering(leaf_index)
    if anchor is None or anchor.record is None:
        raise NotAnchoredError(f"leaf {leaf_index} is not yet covered by an anchored checkpoint")
    checkpoint = ledger.store.checkpoint_at(anchor.tree_size)
    if checkpoint is None:
        raise IntegrityError(f"the checkpoint of anchored size {anchor.tree_size} is missing")
    record = AnchorRecord.from_json(anchor.record)
    if (record.tree_size, record.root_hash) != (checkpoint.tree_size, checkpoint.root_hash):
        # A receipt that cannot verify is not handed out: the stored anchor or checkpoint lies.
        raise IntegrityError(
            f"the stored anchor of size {anchor.tree_size} is not of its checkpoint's root: "
            "the log's storage is damaged (run: consent-ledger fsck)"
        )
    proof = ledger.inclusion_proof(leaf_index, anchor.tree_size)  # checked against the note
    leaf = ledger.leaves(leaf_index, leaf_index + 1)
    if not leaf:
        raise IntegrityError(f"leaf {leaf_index} is missing from storage")
    kind, data = decode_leaf(leaf[0].leaf_data)
    return {
        "receipt_version": RECEIPT_VERSION,
        "leaf_index": leaf_index,
        "event": {"kind": kind, "data": data},
        "tree_size": proof.tree_size,
        "proof": [offline.b64(h) for h in proof.hashes],
        "checkpoint": checkpoint.note,
        "anchor": record.to_dict(),
    }


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    leaf_index: int
    checkpoint: Checkpoint
    anchor: AnchorRecord
    chain_checked: bool


def verify_receipt(
    doc: Any, verifier: NoteVerifier, registry: AnchorRegistryClient | None = None
) -> ReceiptCheck:
    """Check a receipt; raise an error naming the first thing that does not hold.

    ``registry`` is a client for the registry the verifier trusts (its own address, its own
    node); without it the anchor is checked only against the signed checkpoint.
    """
    if not isinstance(doc, dict):
        raise DocumentError("receipt", "expected a JSON object")
    if doc.get("receipt_version") != RECEIPT_VERSION:
        raise DocumentError("receipt_version", f"expected {RECEIPT_VERSION}")
    unknown = sorted(set(doc) - RECEIPT_KEYS)
    if unknown:
        raise DocumentError("receipt", f"unknown fields {unknown}")
    note = doc.get("checkpoint")
    if not isinstance(note, str):
        raise DocumentError("checkpoint", "expected signed-note text")
    try:
        checkpoint = open_checkpoint(note, verifier)
    except VerificationError as exc:
        raise MismatchError("checkpoint", f"signed note does not verify: {exc}") from exc
    try:
        leaf_index = offline.check_inclusion(doc, checkpoint)
    except VerificationError as exc:
        raise MismatchError(
            "inclusion", f"event, leaf_index and proof do not lead to the checkpoint root: {exc}"
        ) from exc
    try:
        anchor = AnchorRecord.from_dict(doc.get("anchor") or {})
    except (ValueError, KeyError, TypeError) as exc:
        raise DocumentError("anchor", str(exc)) from exc
    expected = {
        "log_id": log_id_for(checkpoint.origin),
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
    }
    for name, value in expected.items():
        if getattr(anchor, name) != value:
            raise MismatchError(f"anchor.{name}", "does not match the signed checkpoint")
    if registry is not None:
        try:
            registry.verify_anchor(anchor)
        except AnchorMismatchError as exc:
            raise MismatchError(f"anchor.{exc.field}", str(exc)) from exc
    return ReceiptCheck(leaf_index, checkpoint, anchor, registry is not None)
