"""Receipts: one JSON document proving that an event is in the log and anchored on a chain.

A receipt holds the event, its leaf index, the inclusion proof to an anchored checkpoint, that
signed checkpoint and the anchor record. Checking one needs no database: the proof and the
signature offline against the log's public key, the anchor against a chain the verifier trusts.

``build_receipts`` makes many at once (a page of a resident's history): all are proven to the
newest anchored checkpoint, so the anchor, the checkpoint and every tree node the proofs share
are read once for the page, and the leaves in one query, instead of once per entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contracts.client import AnchorRegistryClient
from contracts.errors import AnchorMismatchError
from contracts.records import AnchorRecord
from hashing import (
    Checkpoint,
    HashingError,
    NodeID,
    NoteVerifier,
    ProofNodes,
    QuorumCheck,
    VerificationError,
    WitnessPolicy,
    add_signature_lines,
    inclusion_nodes,
    leaf_hash,
    open_checkpoint,
    verify_inclusion,
)

from . import offline
from .anchor_store import AnchorStore, StoredAnchor
from .anchoring import log_id_for
from .cosignature_store import CosignatureStore
from .errors import DocumentError, IntegrityError, LedgerError, MismatchError
from .events import decode_leaf
from .log import Ledger
from .store import StoredCheckpoint

RECEIPT_VERSION = 1
RECEIPT_KEYS = frozenset(
    {"receipt_version", "leaf_index", "event", "tree_size", "proof", "checkpoint", "anchor"}
)


class NotAnchoredError(LedgerError):
    """The event is logged, but no anchored checkpoint covers it yet."""


def build_receipt(
    ledger: Ledger,
    anchors: AnchorStore,
    leaf_index: int,
    cosignatures: CosignatureStore | None = None,
) -> dict[str, Any]:
    anchor = anchors.covering(leaf_index)
    if anchor is None or anchor.record is None:
        raise NotAnchoredError(f"leaf {leaf_index} is not yet covered by an anchored checkpoint")
    checkpoint, record = _anchored(ledger, anchor)
    proof = ledger.inclusion_proof(leaf_index, anchor.tree_size)  # checked against the note
    leaf = ledger.leaves(leaf_index, leaf_index + 1)
    if not leaf:
        raise IntegrityError(f"leaf {leaf_index} is missing from storage")
    kind, data = decode_leaf(leaf[0].leaf_data)
    note = cosigned_note(ledger, checkpoint.note, anchor.tree_size, cosignatures)
    return {
        "receipt_version": RECEIPT_VERSION,
        "leaf_index": leaf_index,
        "event": {"kind": kind, "data": data},
        "tree_size": proof.tree_size,
        "proof": [offline.b64(h) for h in proof.hashes],
        "checkpoint": note,
        "anchor": record.to_dict(),
    }


def _anchored(ledger: Ledger, anchor: StoredAnchor) -> tuple[StoredCheckpoint, AnchorRecord]:
    """The signed checkpoint of a confirmed anchor and its record, each checked against the
    other: a receipt that cannot verify is not handed out (the stored anchor or note lies)."""
    assert anchor.record is not None
    checkpoint = ledger.store.checkpoint_at(anchor.tree_size)
    if checkpoint is None:
        raise IntegrityError(f"the checkpoint of anchored size {anchor.tree_size} is missing")
    root = ledger.signed_root(anchor.tree_size, checkpoint.note)
    record = AnchorRecord.from_json(anchor.record)
    if (record.tree_size, record.root_hash) != (anchor.tree_size, root):
        raise IntegrityError(
            f"the stored anchor of size {anchor.tree_size} is not of its checkpoint's root: "
            "the log's storage is damaged (run: consent-ledger fsck)"
        )
    return checkpoint, record


def cosigned_note(
    ledger: Ledger, note: str, tree_size: int, cosignatures: CosignatureStore | None
) -> str:
    """The checkpoint note of ``tree_size`` as witnesses cosigned it (``note`` when none did)."""
    lines = (cosignatures or CosignatureStore(ledger.store)).lines(tree_size)
    return add_signature_lines(note, [lines[w] for w in sorted(lines)])


def build_receipts(
    ledger: Ledger,
    anchors: AnchorStore,
    leaf_indices: Iterable[int],
    cosignatures: CosignatureStore | None = None,
) -> dict[int, dict[str, Any]]:
    """Receipts of ``leaf_indices``, each proven to the newest anchored checkpoint; a leaf it
    does not cover yet has none. The checkpoint note and anchor record are one object shared
    by every receipt (encoded into each as it is sent, so each stays a receipt on its own)."""
    anchor = anchors.latest_confirmed()
    if anchor is None or anchor.record is None:
        return {}
    covered = sorted({index for index in leaf_indices if 0 <= index < anchor.tree_size})
    if not covered:
        return {}
    checkpoint, anchored = _anchored(ledger, anchor)
    root = anchored.root_hash
    note = cosigned_note(ledger, checkpoint.note, anchor.tree_size, cosignatures)
    record = anchored.to_dict()
    plans: dict[int, ProofNodes] = {}
    unique: dict[NodeID, None] = {}

    def ids_for(size: int) -> list[NodeID]:
        for index in covered:
            plans[index] = inclusion_nodes(index, size)
            unique.update(dict.fromkeys(plans[index].ids))
        return list(unique)

    size, hashes = ledger.store.node_hashes(anchor.tree_size, ids_for)
    by_id = dict(zip(unique, hashes, strict=True))
    _, leaves = ledger.store.leaves_at(covered)
    receipts: dict[int, dict[str, Any]] = {}
    for index in covered:
        leaf = leaves.get(index)
        if leaf is None or leaf_hash(leaf.leaf_data) != leaf.leaf_hash:
            raise IntegrityError(f"leaf {index} is missing or damaged in storage")
        kind, data = decode_leaf(leaf.leaf_data)
        plan = plans[index]
        proof = plan.rehash([by_id[node] for node in plan.ids])
        try:  # what is handed out verifies against the signed root, as ledger.inclusion_proof
            verify_inclusion(leaf.leaf_hash, index, size, proof, root)
        except (HashingError, VerificationError) as exc:
            raise IntegrityError(
                f"the stored proof of leaf {index} does not verify against the signed root of "
                f"size {size}: the log's storage is damaged (run: consent-ledger fsck)"
            ) from exc
        receipts[index] = {
            "receipt_version": RECEIPT_VERSION,
            "leaf_index": index,
            "event": {"kind": kind, "data": data},
            "tree_size": size,
            "proof": [offline.b64(h) for h in proof],
            "checkpoint": note,
            "anchor": record,
        }
    return receipts


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    leaf_index: int
    checkpoint: Checkpoint
    anchor: AnchorRecord
    chain_checked: bool
    witnesses: QuorumCheck | None = None


def verify_receipt(
    doc: Any,
    verifier: NoteVerifier,
    registry: AnchorRegistryClient | None = None,
    policy: WitnessPolicy | None = None,
) -> ReceiptCheck:
    """Check a receipt; raise an error naming the first thing that does not hold.

    ``registry`` is a client for the registry the verifier trusts (its own address, its own
    node); without it the anchor is checked only against the signed checkpoint. ``policy``,
    when given, must be met by the witness cosignatures on the receipt's checkpoint.
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
    witnesses = None if policy is None else offline.check_witnesses(note, policy)
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
    return ReceiptCheck(leaf_index, checkpoint, anchor, registry is not None, witnesses)
