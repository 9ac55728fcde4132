"""The integrity audit: what the service serves, checked against the pinned key and the chain.

Trusted: the log's key (pinned on first use, or given by the regulator), the registry at the
address the regulator gives, on the chain it gives, and the auditor's own state. Everything the
service sends is evidence to check: checkpoints are opened with the pinned key, anchors are read
from the chain's events (the service's ``/anchors`` list is only checked, claim by claim, never
believed), leaves are rehashed here (a leaf hash is never taken from the service), and proofs
only ever link roots the auditor already trusts. Each failed check is a ``Finding``.

Incremental: a clean run records the checkpoint it verified with its compact-range frontier;
the next one proves the new checkpoint consistent with it and hashes only the leaves after it.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from contracts.chain import Chain
from contracts.client import AnchorRegistryClient
from contracts.errors import AnchorMismatchError
from hashing import (
    Checkpoint,
    CompactRange,
    KeyFormatError,
    NoteFormatError,
    NoteVerifier,
    SignatureError,
    VerificationError,
    WitnessPolicy,
    open_checkpoint,
    verify_consistency,
)

from .anchors import check_claims, read_chain_anchors
from .errors import ApiStatusError, AuditError, ConfigurationError, MalformedResponseError
from .fetch import LogClient
from .findings import FindingCode, Findings, Report
from .lag import check_lag
from .lawfulness import Lawfulness
from .leaves import LeafCheck, Roots
from .proofs import DEFAULT_SAMPLE, check_served_proofs, sample_indices
from .report_sections import anchoring_section
from .state import AuditorState, KnownAnchor, VerifiedHead
from .witnesses import check_quorum, compare_with_witnesses

Progress = Callable[[str], None]


def log_id_of(origin: str) -> bytes:
    """The bytes32 a log is anchored under: SHA-256 of its checkpoint origin line."""
    return hashlib.sha256(origin.encode("utf-8")).digest()


def audit_integrity(
    api_url: str,
    chain: Chain,
    contract_address: str,
    state_dir: Path,
    *,
    max_anchor_lag_s: float,
    http: httpx.Client | None = None,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    lawfulness: Lawfulness | None = None,
    witness_policy: WitnessPolicy | None = None,
    proof_sample: int = DEFAULT_SAMPLE,
) -> Report:
    """Audit the log served at ``api_url`` against the registry at ``contract_address``.

    ``http`` replaces the HTTP client (a test's client for the app, say); ``trusted_key`` is a
    vkey the regulator obtained out of band (otherwise the served key is pinned on first use);
    ``clock`` gives the time used for the anchoring-lag limit (and break-glass deadlines);
    ``lawfulness``, when given, replays the verified leaves as they stream past;
    ``witness_policy``, when given, must be met by the latest checkpoint's cosignatures, and
    each of its witnesses with a URL is asked for its own latest view of the log.
    ``proof_sample`` is how many of the new leaves' served inclusion proofs are checked
    (``auditor.proofs``). Raises
    ``AuditError`` (or the chain's ``ChainError``) when the audit cannot be carried out;
    findings are in the report.
    """
    started = time.monotonic()
    state = AuditorState.load(state_dir)
    if lawfulness is not None:
        lawfulness.load(state)
    try:
        registry = AnchorRegistryClient.at(chain, contract_address)
    except (AnchorMismatchError, ValueError) as exc:
        raise ConfigurationError(
            f"no AnchorRegistry at {contract_address} on chain {chain.chain_id}: {exc}"
        ) from exc
    state.pin("chain_id", chain.chain_id)
    state.pin("contract", registry.address)
    report = Report(api_url=api_url, chain_id=chain.chain_id, contract=registry.address)
    client = (
        LogClient(api_url, http=http) if lawfulness is None else lawfulness.client(api_url, http)
    )
    with client as log:
        audit = _Audit(log, registry, state, report, max_anchor_lag_s, progress, clock)
        audit.lawfulness, audit.http = lawfulness, http
        audit.witness_policy = witness_policy
        audit.proof_sample = proof_sample
        audit.run(trusted_key)
        report.stats.requests = log.requests
        report.stats.leaves_fetched = log.leaves_fetched
    if lawfulness is not None:
        lawfulness.settle(state)
    state.save(state_dir)
    event_time = None
    if lawfulness is not None:
        lawfulness.after_save(state)
        lawfulness.fill(report, state, clock())
        event_time = (
            None if lawfulness.committed is None else lawfulness.committed.anchored_event_time
        )
    report.anchoring = anchoring_section(state.anchors, event_time)
    report.verified_size = state.verified_size
    report.verified_root = None if state.verified is None else state.verified.root_hash
    report.stats.elapsed_s = time.monotonic() - started
    return report


class _Audit:
    def __init__(
        self,
        log: LogClient,
        registry: AnchorRegistryClient,
        state: AuditorState,
        report: Report,
        max_lag: float,
        progress: Progress | None,
        clock: Callable[[], float],
    ) -> None:
        self.log = log
        self.registry = registry
        self.state = state
        self.report = report
        self.max_lag = max_lag
        self.say: Progress = progress or (lambda _message: None)
        self.clock = clock
        self.findings = Findings(self.say)
        self.find = self.findings.add
        report.findings = self.findings.items
        self.roots: dict[int, Roots] = {}
        self.anchors: dict[int, KnownAnchor] = {}
        self.lawfulness: Lawfulness | None = None
        self.http: httpx.Client | None = None
        self.witness_policy: WitnessPolicy | None = None
        self.proof_sample = DEFAULT_SAMPLE
        self.leaf_hashes: list[bytes] = []  # of the leaves hashed in this run, from its start

    def commit(self, size: int, root: bytes, source: str) -> None:
        self.roots.setdefault(size, {}).setdefault(root, []).append(source)

    # -- the run --------------------------------------------------------------------------------

    def run(self, trusted_key: str | None) -> None:
        verifier = self._pin_key(trusted_key)
        note = self.log.latest_checkpoint()
        latest = None if note is None else self._open(note, verifier, "the latest checkpoint")
        origin = self.state.origin or (latest.origin if latest else verifier.name)
        self.state.pin("origin", origin)
        log_id = log_id_of(origin)
        self.report.origin, self.report.log_id = origin, log_id
        verified = self.state.verified
        if verified is not None:
            self.commit(verified.tree_size, verified.root_hash, "the checkpoint verified before")
        if latest is not None and note is not None:
            self.say(f"latest checkpoint: size {latest.tree_size}, signed by the pinned key")
            self.commit(latest.tree_size, latest.root_hash, "the latest checkpoint served")
        self._read_anchors(log_id)
        self._check_claims(verifier, log_id)
        self._served_at_anchored_sizes(verifier, latest)
        if self.witness_policy is not None:
            self._check_witnesses(self.witness_policy, verifier, origin, note, latest)
        self._check_forks()
        self._check_heads(latest, served_any=note is not None)
        start = self.state.verified_size
        head = self._check_leaves(latest, note)
        if head is not None:
            indices = sample_indices(
                start, head.tree_size, self.proof_sample, random.SystemRandom()
            )
            hashes = {i: self.leaf_hashes[i - start] for i in indices}
            check_served_proofs(
                self.log, self.findings, hashes, head.tree_size, head.root_hash, self.say
            )
        self.state.observations = check_lag(
            self.state.observations,
            self.anchors,
            None if latest is None else latest.tree_size,
            self.clock(),
            self.max_lag,
            self.findings,
        )
        if not self.findings.about_the_tree():
            if head is not None:
                self.state.verified = head
            self.state.anchors_checked_to = max(
                self.state.anchors_checked_to,
                max((s for s in self.anchors if s <= self.state.verified_size), default=0),
            )

    def _pin_key(self, trusted_key: str | None) -> NoteVerifier:
        served_text = self.log.key()
        try:
            served: NoteVerifier | None = NoteVerifier.from_vkey(served_text)
        except KeyFormatError:
            served = None
        try:
            if trusted_key is not None:
                self.state.pin("log_key", NoteVerifier.from_vkey(trusted_key.strip()).to_vkey())
            elif self.state.log_key is None and served is not None:
                self.state.pin("log_key", served.to_vkey())
            if self.state.log_key is None:
                raise AuditError(f"no key is pinned and the service's is unusable: {served_text!r}")
            pinned = NoteVerifier.from_vkey(self.state.log_key)
        except KeyFormatError as exc:
            raise ConfigurationError(f"the pinned log key is malformed: {exc}") from exc
        if served != pinned:
            self.find(
                FindingCode.KEY_CHANGED,
                f"the service publishes the key {served_text!r}, "
                f"not the pinned {pinned.to_vkey()!r}",
            )
        return pinned

    def _open(self, note: str, verifier: NoteVerifier, what: str) -> Checkpoint | None:
        try:
            return open_checkpoint(note, verifier, self.state.origin)
        except SignatureError as exc:
            self.find(FindingCode.BAD_SIGNATURE, f"{what} is not signed by the pinned key: {exc}")
        except NoteFormatError as exc:
            self.find(FindingCode.BAD_CHECKPOINT, f"{what} is malformed: {exc}")
        return None

    def _read_anchors(self, log_id: bytes) -> None:
        read = read_chain_anchors(self.registry, self.state, log_id)
        self.report.stats.anchors_read += read
        self.say(f"read {read} anchors from the chain, up to block {self.state.scanned_to_block}")
        self.anchors = {a.tree_size: a for a in self.state.anchors}
        self.report.anchored_size = max(self.anchors, default=0)
        for anchor in self.state.anchors:
            if anchor.tree_size > self.state.anchors_checked_to:
                source = f"the chain (block {anchor.block_number}, tx 0x{anchor.tx_hash.hex()})"
                self.commit(anchor.tree_size, anchor.root_hash, source)

    def _check_claims(self, verifier: NoteVerifier, log_id: bytes) -> None:
        claims = list(self.log.anchors(after=self.state.verified_size))
        self.report.stats.anchor_claims_checked += len(claims)

        def open_note(note: str, what: str) -> Checkpoint | None:
            return self._open(note, verifier, what)

        for size, root, source in check_claims(
            claims, self.registry, log_id, open_note, self.findings
        ):
            self.commit(size, root, source)

    def _served_at_anchored_sizes(self, verifier: NoteVerifier, latest: Checkpoint | None) -> None:
        for size in sorted(self.anchors):
            if size <= self.state.verified_size or (latest and latest.tree_size == size):
                continue
            note = self.log.checkpoint(size)
            what = f"the checkpoint served for size {size}"
            checkpoint = None if note is None else self._open(note, verifier, what)
            if checkpoint is not None and checkpoint.tree_size != size:
                self.find(
                    FindingCode.BAD_CHECKPOINT,
                    f"{what} is of size {checkpoint.tree_size}",
                    tree_size=size,
                )
            elif checkpoint is not None:
                self.commit(size, checkpoint.root_hash, what)

    def _check_witnesses(
        self,
        policy: WitnessPolicy,
        verifier: NoteVerifier,
        origin: str,
        note: str | None,
        latest: Checkpoint | None,
    ) -> None:
        section = check_quorum(policy, note, latest, self.find, self.say)
        section["witness_views"] = compare_with_witnesses(
            policy,
            verifier,
            origin,
            latest,
            commit=self.commit,
            consistent=self._consistent,
            say=self.say,
        )
        self.report.witnesses = section

    def _check_forks(self) -> None:
        for size, roots in sorted(self.roots.items()):
            if len(roots) > 1:
                told = "; ".join(
                    f"{root.hex()[:16]}… from {', '.join(s)}" for root, s in roots.items()
                )
                self.find(
                    FindingCode.FORK,
                    f"tree size {size} has {len(roots)} roots: {told}",
                    tree_size=size,
                )

    def _check_heads(self, latest: Checkpoint | None, *, served_any: bool) -> None:
        """Rollback, consistency between trusted heads, and truncation below the chain's head."""
        verified = self.state.verified
        if verified is not None and latest is not None:
            if latest.tree_size < verified.tree_size:
                self.find(
                    FindingCode.INCONSISTENT,
                    f"rolled back: the latest checkpoint has size {latest.tree_size}, "
                    f"below the size {verified.tree_size} verified before",
                    tree_size=latest.tree_size,
                )
            elif latest.tree_size > verified.tree_size:
                self._consistent(
                    (verified.tree_size, verified.root_hash),
                    (latest.tree_size, latest.root_hash),
                    "the latest checkpoint does not extend the one verified before",
                )
        for size, anchor in sorted(self.anchors.items()):
            if verified is not None and self.state.anchors_checked_to < size < verified.tree_size:
                self._consistent(
                    (size, anchor.root_hash),
                    (verified.tree_size, verified.root_hash),
                    "the checkpoint verified before does not extend the anchored one",
                )
        served = 0 if latest is None else latest.tree_size
        top = self.report.anchored_size
        if top > served and (latest is not None or not served_any):
            self.find(
                FindingCode.TRUNCATED,
                f"the chain anchors size {top}, the service's latest checkpoint has size {served}",
                tree_size=top,
            )

    def _consistent(self, old: tuple[int, bytes], new: tuple[int, bytes], what: str) -> None:
        """Check the service's consistency proof between two roots trusted already."""
        (size1, root1), (size2, root2) = old, new
        what = f"{what} (sizes {size1} and {size2})"
        try:
            proof = self.log.consistency_proof(size1, size2)
            verify_consistency(size1, size2, proof, root1, root2)
        except (ApiStatusError, MalformedResponseError) as exc:
            self.find(FindingCode.INCONSISTENT, f"{what}: no proof ({exc})", tree_size=size2)
        except VerificationError as exc:
            self.find(FindingCode.INCONSISTENT, f"{what}: {exc}", tree_size=size2)

    def _check_leaves(self, latest: Checkpoint | None, note: str | None) -> VerifiedHead | None:
        """Rehash the new leaves; the new verified head, if the latest checkpoint was reached."""
        start = self.state.verified_size
        if self.lawfulness is not None and latest is not None:
            self.lawfulness.before_leaves(
                self.log, self.http, self.state, latest.tree_size, self.findings
            )
        targets = {size: roots for size, roots in self.roots.items() if size > start}
        if not targets:
            return None
        base = self.state.verified.compact_range() if self.state.verified else CompactRange()
        check = LeafCheck(self.log, self.findings, self.say)
        try:
            frontiers = check.run(base, targets)
        finally:
            if self.lawfulness is not None:
                self.lawfulness.disarm(self.log)
        self.report.stats.leaves_hashed += check.leaves_hashed
        self.leaf_hashes = check.hashes
        if latest is None or note is None or latest.tree_size not in frontiers:
            return None
        if check.computed[latest.tree_size] != latest.root_hash:
            return None
        self._extends_anchors(latest, check.computed)
        return VerifiedHead(latest.tree_size, latest.root_hash, note, frontiers[latest.tree_size])

    def _extends_anchors(self, latest: Checkpoint, computed: dict[int, bytes]) -> None:
        """Whether the latest checkpoint extends the anchored ones, decided by the leaves.

        The served leaves hash to the latest root, so they are that tree's leaves (no other
        list has that root); its prefix at an anchored size must then hash to the anchored root.
        No proof from the service is needed, and a damaged store cannot muddle the answer.
        """
        start = self.state.verified_size
        diverged = [
            size
            for size, anchor in sorted(self.anchors.items())
            if start < size < latest.tree_size and computed.get(size) != anchor.root_hash
        ]
        if diverged:
            self.find(
                FindingCode.INCONSISTENT,
                f"the latest checkpoint (size {latest.tree_size}) does not extend the roots "
                f"anchored at sizes {', '.join(map(str, diverged))}: the leaves that hash to it "
                "hash to other roots at those sizes",
                tree_size=latest.tree_size,
            )
