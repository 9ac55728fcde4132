"""The witness side of the audit: the policy's quorum on the latest checkpoint, and each
witness's own latest view of the log compared with the service's.

A split view shows up here: a witness (reached directly, at its monitoring URL) holding a
checkpoint the log signed with another root at the same size, or one the service's tree does
not extend. The witness's checkpoint is trusted only as far as its signatures go: the log's
(pinned key) and the witness's own cosignature (policy key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx

from hashing import (
    Checkpoint,
    NoteVerifier,
    VerificationError,
    WitnessPolicy,
    open_checkpoint,
    verify_cosignatures,
)

from .findings import FindingCode

Find = Callable[..., Any]
Commit = Callable[[int, bytes, str], None]
Consistent = Callable[[tuple[int, bytes], tuple[int, bytes], str], None]


def check_quorum(
    policy: WitnessPolicy,
    note: str | None,
    latest: Checkpoint | None,
    find: Find,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The quorum check of the latest checkpoint served, for the report; findings if unmet."""
    if note is None or latest is None:
        return {"checked": False}
    try:
        check = policy.check(note)
    except VerificationError as exc:
        find(
            FindingCode.WITNESS_QUORUM,
            f"the latest checkpoint carries a bad witness cosignature: {exc}",
            tree_size=latest.tree_size,
        )
        return {"checked": True, "quorum_met": False, "error": str(exc)}
    say(f"witnesses of the latest checkpoint: {check.describe()}")
    if not check.satisfied:
        find(
            FindingCode.WITNESS_QUORUM,
            f"the latest checkpoint (size {latest.tree_size}) is {check.describe()}",
            tree_size=latest.tree_size,
        )
    return {
        "checked": True,
        "tree_size": latest.tree_size,
        "cosigned_by": list(check.cosigned),
        "quorum": check.requirement,
        "quorum_met": check.satisfied,
    }


def compare_with_witnesses(
    policy: WitnessPolicy,
    verifier: NoteVerifier,
    origin: str,
    latest: Checkpoint | None,
    *,
    commit: Commit,
    consistent: Consistent,
    say: Callable[[str], None],
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Fetch each witness's latest cosigned checkpoint of the log and hold it against ours."""
    origin_hash = hashlib.sha256(origin.encode("utf-8")).hexdigest()
    seen: dict[str, Any] = {}
    with httpx.Client(timeout=timeout) as client:
        for name, witness in policy.witnesses.items():
            if witness.url is None:
                continue
            url = f"{witness.url.rstrip('/')}/{origin_hash}/checkpoint"
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                seen[name] = {"reached": False, "error": str(exc)}
                say(f"witness {name} unreachable: {exc}")
                continue
            if response.status_code != 200:
                seen[name] = {"reached": True, "status": response.status_code}
                continue
            try:
                theirs = open_checkpoint(response.text, verifier, origin)
                if witness.verifier not in verify_cosignatures(response.text, [witness.verifier]):
                    raise VerificationError("no cosignature by the witness on its own view")
            except VerificationError as exc:
                seen[name] = {"reached": True, "error": str(exc)}
                say(f"witness {name} serves a checkpoint we cannot trust: {exc}")
                continue
            seen[name] = {"reached": True, "tree_size": theirs.tree_size}
            what = f"witness {name}'s latest cosigned checkpoint"
            commit(theirs.tree_size, theirs.root_hash, what)
            say(f"{what}: size {theirs.tree_size}")
            if latest is not None and theirs.tree_size != latest.tree_size:
                pair = sorted(
                    [(theirs.tree_size, theirs.root_hash), (latest.tree_size, latest.root_hash)]
                )
                consistent(pair[0], pair[1], f"{what} and the service's latest are not one tree")
    return seen
