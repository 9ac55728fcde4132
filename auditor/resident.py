"""The per-resident report: every access to one resident's records, proven complete.

Complete because the replay read every leaf below the verified size and indexed each access
event by subject as it went (``ReplayState.accesses``): no leaf below that size about the
subject can be missing from the list. Proven because each listed leaf is fetched again and
checked with an inclusion proof against a root the auditor trusts: the largest anchored root
covering it (read from the chain), or, for the newest leaves not yet anchored, the verified
signed checkpoint. The report says up to which anchored size the list is complete.
"""

from __future__ import annotations

from typing import Any

import orjson

from hashing import VerificationError, leaf_hash, verify_inclusion

from .errors import ApiStatusError, MalformedResponseError
from .fetch import LogClient
from .findings import FindingCode, Findings
from .replay_state import ReplayState
from .state import AuditorState

SHOWN = ("at", "requester", "holder", "purpose", "categories", "decision", "reason", "refusal")


def resident_report(
    log: LogClient, state: AuditorState, replay: ReplayState, subject: str, findings: Findings
) -> dict[str, Any]:
    """The report about ``subject``; a leaf that no longer proves is a finding (and unproven)."""
    verified = state.verified
    size = replay.tree_size
    anchors = [a for a in state.anchors if a.tree_size <= size]
    anchor = anchors[-1] if anchors else None
    anchored_size = 0 if anchor is None else anchor.tree_size
    entries = []
    for leaf_index in replay.accesses_of(subject):
        if anchor is not None and leaf_index < anchor.tree_size:
            trusted = (anchor.tree_size, anchor.root_hash)
        elif verified is not None:
            trusted = (verified.tree_size, verified.root_hash)
        else:  # pragma: no cover - a replay always goes with a verified head
            continue
        entry: dict[str, Any] = {
            "leaf_index": leaf_index,
            "anchored": leaf_index < anchored_size,
            "proven_in_tree_size": trusted[0],
        }
        try:
            entry.update(_proven(log, leaf_index, *trusted))
            entry["proven"] = True
        except (ApiStatusError, MalformedResponseError, VerificationError, ValueError) as exc:
            entry["proven"] = False
            findings.add(
                FindingCode.LEAVES_MISMATCH,
                f"leaf {leaf_index}, about resident {subject[:12]}…, is no longer served with "
                f"a proof to the root of size {trusted[0]}: {exc}",
                leaf_indices=(leaf_index,),
                tree_size=trusted[0],
            )
        entries.append(entry)
    return {
        "subject": subject,
        "complete_up_to_anchored_size": anchored_size,
        "anchor": None
        if anchor is None
        else {
            "tree_size": anchor.tree_size,
            "root_hash": anchor.root_hash.hex(),
            "block_number": anchor.block_number,
            "tx_hash": "0x" + anchor.tx_hash.hex(),
        },
        "replayed_size": size,
        "accesses": entries,
    }


def _proven(log: LogClient, leaf_index: int, tree_size: int, root_hash: bytes) -> dict[str, Any]:
    served = list(log.leaves(leaf_index, leaf_index + 1))
    if len(served) != 1 or served[0].leaf_index != leaf_index:
        raise ValueError("the service does not serve it")
    data = served[0].leaf_data
    proof = log.inclusion_proof(leaf_index, tree_size)
    verify_inclusion(leaf_hash(data), leaf_index, tree_size, proof, root_hash)
    event = orjson.loads(data)
    body = event["data"]
    shown = {name: body[name] for name in SHOWN if name in body}
    return {"kind": event["kind"], **shown, "breakglass": body.get("breakglass") is True}
