"""Offline checks of what the ledger hands out: proofs and checkpoints, with no database.

The trusted root always comes from a signed checkpoint checked against a key the caller supplies,
never from the document being verified.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from hashing import (
    Checkpoint,
    NoteVerifier,
    QuorumCheck,
    QuorumError,
    VerificationError,
    WitnessPolicy,
    canonical_json,
    leaf_hash,
    open_checkpoint,
    parse_policy,
    verify_consistency,
    verify_inclusion,
)

from .cli_files import read_text
from .errors import DocumentError, InvalidEventError, MismatchError


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise DocumentError(field, "expected a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DocumentError(field, f"not base64: {exc}") from exc
    # Only the canonical text: several texts decode to the same bytes in lenient decoders,
    # and a verified document must not have fields that can change without failing.
    if b64(raw) != value:
        raise DocumentError(field, "not canonical base64")
    return raw


def integer(doc: dict[str, Any], field: str) -> int:
    value = doc.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DocumentError(field, "expected a non-negative integer")
    return value


def hash_list(doc: dict[str, Any], field: str) -> list[bytes]:
    value = doc.get(field)
    if not isinstance(value, list):
        raise DocumentError(field, "expected a list of base64 hashes")
    return [unb64(item, f"{field}[{i}]") for i, item in enumerate(value)]


def check_checkpoint(note: str, verifier: NoteVerifier) -> Checkpoint:
    return open_checkpoint(note, verifier)


def load_witness_policy(path: str) -> WitnessPolicy:
    """A witness policy file (C2SP tlog-policy); a malformed one is a DocumentError."""
    try:
        text = read_text(path, "witness policy file", "a C2SP tlog-policy file, from the operator")
        return parse_policy(text)
    except ValueError as exc:
        raise DocumentError("witness-policy", str(exc)) from exc


def check_witnesses(note: str, policy: WitnessPolicy) -> QuorumCheck:
    """The policy's check of a note's cosignatures; a shortfall or a bad one is a mismatch."""
    try:
        return policy.require(note)
    except QuorumError as exc:
        raise MismatchError("cosignatures", str(exc)) from exc
    except VerificationError as exc:
        raise MismatchError("cosignatures", f"a witness cosignature is bad: {exc}") from exc


def witnesses_out(check: QuorumCheck) -> dict[str, Any]:
    """What a verifier says about the cosignatures it checked."""
    return {
        "cosigned_by": list(check.cosigned),
        "cosigned_at": {
            name: c.timestamp for name, c in zip(check.cosigned, check.cosignatures, strict=True)
        },
        "quorum": check.requirement,
        "quorum_met": check.satisfied,
    }


def check_inclusion(doc: dict[str, Any], checkpoint: Checkpoint) -> int:
    """Verify an inclusion proof document against a trusted checkpoint; return the leaf index."""
    event = doc.get("event")
    if not isinstance(event, dict):
        raise DocumentError("event", "expected the logged event object")
    try:
        computed_leaf = leaf_hash(canonical_json(event))
    except ValueError as exc:
        raise InvalidEventError(f"event cannot be encoded: {exc}") from exc
    tree_size = integer(doc, "tree_size")
    if tree_size != checkpoint.tree_size:
        raise MismatchError(
            "tree_size", f"proof is for size {tree_size}, checkpoint for {checkpoint.tree_size}"
        )
    leaf_index = integer(doc, "leaf_index")
    verify_inclusion(
        computed_leaf, leaf_index, tree_size, hash_list(doc, "proof"), checkpoint.root_hash
    )
    return leaf_index


def check_consistency(doc: dict[str, Any], old: Checkpoint, new: Checkpoint) -> None:
    """Verify a consistency proof document between two trusted checkpoints."""
    for field, checkpoint in (("size1", old), ("size2", new)):
        if integer(doc, field) != checkpoint.tree_size:
            raise MismatchError(field, f"does not match the checkpoint size {checkpoint.tree_size}")
    verify_consistency(
        old.tree_size, new.tree_size, hash_list(doc, "proof"), old.root_hash, new.root_hash
    )


def compare_checkpoints(
    first: str, second: str, verifier: NoteVerifier, proof: dict[str, Any] | None = None
) -> tuple[Checkpoint, Checkpoint]:
    """Check that two checkpoints signed by the log show one history, or raise MismatchError.

    Two of the same size must have the same root; of different sizes, ``proof`` (a
    consistency proof document from the smaller to the larger) must verify. Both notes must
    be signed by ``verifier``: a split view is only evidence when the log signed both sides.
    """
    a, b = open_checkpoint(first, verifier), open_checkpoint(second, verifier)
    if a.origin != b.origin:
        raise MismatchError("origin", f"{a.origin!r} and {b.origin!r} are different logs")
    if a.tree_size == b.tree_size:
        if a.root_hash != b.root_hash:
            raise MismatchError(
                "root_hash",
                f"split view: the log signed two different trees of size {a.tree_size} "
                f"({b64(a.root_hash)} and {b64(b.root_hash)})",
            )
        return a, b
    old, new = (a, b) if a.tree_size < b.tree_size else (b, a)
    if proof is None:
        raise DocumentError(
            "proof", f"sizes {old.tree_size} and {new.tree_size} differ: give --proof"
        )
    try:
        check_consistency(proof, old, new)
    except VerificationError as exc:
        raise MismatchError(
            "consistency",
            f"split view: size {new.tree_size} does not extend size {old.tree_size}: {exc}",
        ) from exc
    return a, b
