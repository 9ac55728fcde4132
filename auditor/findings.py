"""What an audit reports: findings with stable codes, and the report that carries them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class FindingCode(StrEnum):
    """Stable codes: scripts and the regulator's tooling key on these, never on messages."""

    KEY_CHANGED = "key-changed"
    """The service publishes another key than the one pinned on first use (or by the regulator)."""
    BAD_SIGNATURE = "bad-signature"
    """A checkpoint the service serves is not signed by the pinned key."""
    BAD_CHECKPOINT = "bad-checkpoint"
    """A checkpoint is malformed, or names another log (origin) than the pinned one."""
    ANCHOR_MISMATCH = "anchor-mismatch"
    """An anchor record the service claims does not verify on chain; ``field`` names where."""
    UNANCHORED_CHECKPOINT = "unanchored-checkpoint"
    """A signed checkpoint is still not covered by an anchor longer than the allowed lag."""
    ANCHOR_LAG = "anchor-lag"
    """A checkpoint was anchored, but later than the allowed lag after it was first seen."""
    INCONSISTENT = "inconsistent"
    """Two trusted tree heads of different sizes do not extend one another (rollback, fork)."""
    LEAVES_MISMATCH = "leaves-mismatch"
    """The leaves served do not hash to a trusted root; ``leaf_indices`` locate the first bad."""
    FORK = "fork"
    """Two different roots for one tree size, each committed by the log (signed or anchored)."""
    SECOND_PREIMAGE = "second-preimage"
    """A served leaf is the 64-byte preimage of an interior node of the trusted tree."""
    TRUNCATED = "truncated"
    """The service serves a smaller tree than one anchored on chain (or signed)."""
    WITNESS_QUORUM = "witness-quorum"
    """The latest checkpoint lacks the witness cosignatures the policy needs (or has a bad one)."""
    BAD_PROOF = "bad-proof"
    """An inclusion proof the service serves does not lead to a verified root (or is refused)."""

    # Lawfulness: the replay of the verified leaves (``auditor.replay``).
    UNCOVERED_PERMIT = "uncovered-permit"
    """A permit no consent in force covered (or a deny provision, revocation, lapse forbade)."""
    UNCOVERED_RELEASE = "uncovered-release"
    """A release without a matching permit, to other parties, or no longer covered."""
    GRANT_REUSED = "grant-reused"
    """A grant redeemed more than once."""
    GRANT_EXPIRED = "grant-expired"
    """A grant redeemed at or after its expiry."""
    BREAKGLASS_INVALID = "breakglass-invalid"
    """A break-glass permit for a purpose or category that is not an emergency one."""
    BREAKGLASS_LATE = "breakglass-late"
    """A break-glass permit justified after its deadline."""
    BREAKGLASS_UNJUSTIFIED = "breakglass-unjustified"
    """A break-glass permit still unjustified past its deadline at audit time."""
    BAD_REFERENCE = "bad-reference"
    """An event names a leaf (a consent it relied on, its decision) that is not that leaf."""
    LAPSE_MISMATCH = "lapse-mismatch"
    """The lapse date the service opens does not match the commitment in the leaf."""
    BACKDATED = "backdated"
    """An event dated earlier than one logged before it, by more than the clock tolerance."""
    MISDATED = "misdated"
    """A revocation or new version whose effective time is not its leaf's time."""
    WIDENING_NARROWING = "widening-narrowing"
    """A new version of a consent that permits something the previous version did not."""
    GRANT_LIFETIME = "grant-lifetime"
    """A grant issued without an expiry, or living longer than the policy allows."""
    BREAKGLASS_DEADLINE = "breakglass-deadline"
    """A break-glass permit without a deadline, or with one later than the policy allows."""
    BAD_EVENT = "bad-event"
    """A verified leaf that is not a known event, or lacks what its kind carries."""


#: Findings about timeliness only: the tree itself was verified despite them.
TIMELINESS = frozenset({FindingCode.UNANCHORED_CHECKPOINT, FindingCode.ANCHOR_LAG})


@dataclass(frozen=True)
class Finding:
    """One piece of evidence that the trail is not as the platform claims.

    ``leaf_indices`` are the leaves the finding is about (for ``leaves-mismatch``, where the
    first bad leaf is proven to lie); ``tree_size`` the size of the tree head concerned;
    ``field`` the part of an anchor record that did not match.
    """

    code: FindingCode
    message: str
    leaf_indices: tuple[int, ...] = ()
    tree_size: int | None = None
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.leaf_indices:
            out["leaf_indices"] = list(self.leaf_indices)
        if self.tree_size is not None:
            out["tree_size"] = self.tree_size
        if self.field is not None:
            out["field"] = self.field
        return out


class Findings:
    """Where the checks put their findings, each also told to ``say`` as it is found."""

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self.items: list[Finding] = []
        self._say = say

    def add(
        self,
        code: FindingCode,
        message: str,
        *,
        leaf_indices: tuple[int, ...] = (),
        tree_size: int | None = None,
        field: str | None = None,
    ) -> None:
        self.items.append(Finding(code, message, leaf_indices, tree_size, field))
        if self._say is not None:
            self._say(f"finding {code}: {message}")

    def about_the_tree(self) -> bool:
        """Whether any finding casts doubt on the tree itself (not only on timeliness)."""
        return any(finding.code not in TIMELINESS for finding in self.items)


@dataclass
class AuditStats:
    """What the run cost: requests made and work done (an incremental run shows it is small)."""

    requests: int = 0
    leaves_fetched: int = 0
    leaves_hashed: int = 0
    anchors_read: int = 0
    anchor_claims_checked: int = 0
    leaves_replayed: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "leaves_fetched": self.leaves_fetched,
            "leaves_hashed": self.leaves_hashed,
            "anchors_read": self.anchors_read,
            "anchor_claims_checked": self.anchor_claims_checked,
            "leaves_replayed": self.leaves_replayed,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass
class Report:
    """The outcome of one audit: integrity, and lawfulness when the replay ran."""

    api_url: str
    chain_id: int
    contract: str
    origin: str | None = None
    log_id: bytes | None = None
    verified_size: int = 0
    verified_root: bytes | None = None
    anchored_size: int = 0
    findings: list[Finding] = field(default_factory=list)
    stats: AuditStats = field(default_factory=AuditStats)
    anchoring: list[dict[str, Any]] = field(default_factory=list)
    """Each anchor read from the chain: tree_size, block_number, block_time, lag_s."""
    lawfulness: dict[str, int] | None = None
    """The replay's counters (None: the lawfulness replay did not run)."""
    activity: dict[str, list[dict[str, Any]]] | None = None
    """Accesses aggregated by day and parties, and every break-glass case."""
    witnesses: dict[str, Any] | None = None
    """The witness policy's check of the latest checkpoint (None: no policy given)."""

    @property
    def ok(self) -> bool:
        return not self.findings

    def codes(self) -> set[FindingCode]:
        return {finding.code for finding in self.findings}

    def of(self, code: FindingCode) -> list[Finding]:
        return [finding for finding in self.findings if finding.code == code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "api": self.api_url,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "origin": self.origin,
            "log_id": None if self.log_id is None else "0x" + self.log_id.hex(),
            "verified": {
                "tree_size": self.verified_size,
                "root_hash": None if self.verified_root is None else self.verified_root.hex(),
            },
            "anchored_size": self.anchored_size,
            "findings": [finding.to_dict() for finding in self.findings],
            "stats": self.stats.to_dict(),
            "anchoring": self.anchoring,
            **({} if self.lawfulness is None else {"lawfulness": self.lawfulness}),
            **({} if self.activity is None else {"activity": self.activity}),
            **({} if self.witnesses is None else {"witnesses": self.witnesses}),
        }

    def to_json(self) -> str:
        # orjson: the activity section of a long log has many thousand entries.
        text = orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        return text.decode("utf-8") + "\n"
