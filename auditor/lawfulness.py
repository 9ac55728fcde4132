"""The lawfulness half of the audit, wired into the integrity half's one pass over the leaves.

The integrity audit fetches each new leaf once, to hash it; ``TappedLogClient`` hands the same
leaves, in order, to the replay as they stream past (nothing is fetched twice, nothing is
buffered). The replay is speculative until the integrity audit has verified the leaves: it is
kept (written to the state directory with the verified head) only when the head the integrity
audit verified (the latest signed checkpoint it checked, anchored or not yet) is exactly the
size replayed; otherwise it is dropped and the last committed replay is reported, so only
leaves verified against a signed tree head are ever judged.

A state written by an auditor without the replay (verified head, no replay) is caught up once:
the leaves below the verified size are fetched, rehashed to the verified root, and replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from hashing import CompactRange, leaf_hash

from .errors import OutdatedReplayError, StateError
from .fetch import DEFAULT_TIMEOUT_S, LogClient, ServedLeaf
from .findings import Finding, FindingCode, Findings, Report
from .openings import Openings, fetch_openings
from .policy import Policy
from .replay import Replay
from .replay_state import ReplayState, read_blob, remove_other_blobs, write_blob
from .report_sections import activity_section, lawfulness_section, overdue_findings
from .state import AuditorState, ReplayRef

PROGRESS_EVERY = 100_000

Progress = Callable[[str], None]


class TappedLogClient(LogClient):
    """A ``LogClient`` whose ``leaves`` also feed ``tap`` (when one is set) as they stream."""

    tap: Callable[[ServedLeaf], None] | None = None

    def leaves(self, start: int, end: int) -> Iterator[ServedLeaf]:
        for leaf in super().leaves(start, end):
            if self.tap is not None:
                self.tap(leaf)
            yield leaf


class Lawfulness:
    """One run's replay: loaded with the auditor state, fed by the leaf pass, then settled."""

    def __init__(
        self,
        state_dir: Path,
        *,
        token: str | None = None,
        progress: Progress | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.policy = policy or Policy()
        self.token = token
        self.say: Progress = progress or (lambda _message: None)
        self.replay_state = ReplayState()
        self.committed: ReplayState | None = None
        self.broken = False
        self.replayed = 0
        self.requests = 0
        self.limit = 0
        self.replay: Replay | None = None
        self.loaded_size: int | None = None

    def load(self, state: AuditorState) -> None:
        """Read the replay the state file names (a fresh one if it names none)."""
        if state.replay is not None:
            try:
                loaded = read_blob(self.state_dir, state.replay.file, state.replay.sha256)
            except OutdatedReplayError as exc:
                self.say(f"{exc}: replaying the verified leaves again")
                state.replay = None
        if state.replay is not None:
            verified = state.verified
            if (
                verified is None
                or loaded.tree_size != state.replay.tree_size
                or loaded.root_hash != verified.root_hash
            ):
                raise StateError("the replay state does not belong to the verified checkpoint")
            self.replay_state = loaded
        self.committed = self.replay_state if state.replay is not None else None
        self.loaded_size = None if state.replay is None else state.replay.tree_size

    def client(self, api_url: str, http: httpx.Client | None) -> TappedLogClient:
        return TappedLogClient(api_url, http=http)

    def before_leaves(
        self,
        log: LogClient,
        http: httpx.Client | None,
        state: AuditorState,
        latest_size: int,
        findings: Findings,
    ) -> None:
        """Catch up if needed, fetch lapse openings, and arm the tap up to ``latest_size``.

        Guardian lapse commitments an earlier run could not open (``ReplayState.pending``) are
        asked for again. Once one opens, the decisions it bears on may be judged otherwise: the
        replay then starts over from leaf 0 with every opening, exactly as a first run would.
        """
        start = self.replay_state.tree_size
        openings: Openings = {}
        pending = self.replay_state.pending
        first = min([start, *pending.values()])
        if self.token is not None and (latest_size > start or pending):
            openings = self._openings(log, http, first, max(latest_size, start))
            if first < start and not pending.keys().isdisjoint(openings):
                self.say("a lapse commitment left open before is opened now: replaying anew")
                self.replay_state = ReplayState()
                self.loaded_size = None
                start = 0
                if first > 0:
                    openings.update(self._openings(log, http, 0, first))
            self.say(f"opened {len(openings)} guardian lapse commitments")
        anchored = frozenset(a.tree_size for a in state.anchors)
        self.replay = Replay(self.replay_state, openings, anchored, self.policy)
        self.limit = latest_size
        if start < state.verified_size and state.verified is not None:
            self._catch_up(log, state.verified_size, state.verified.root_hash, findings)
        if isinstance(log, TappedLogClient):
            log.tap = self._feed

    def _openings(
        self, log: LogClient, http: httpx.Client | None, start: int, end: int
    ) -> Openings:
        assert self.token is not None
        client = httpx.Client(timeout=DEFAULT_TIMEOUT_S) if http is None else http
        try:
            openings, requests = fetch_openings(client, log.base_url, self.token, start, end)
        finally:
            if client is not http:
                client.close()
        self.requests += requests
        return openings

    def disarm(self, log: LogClient) -> None:
        if isinstance(log, TappedLogClient):
            log.tap = None

    def _catch_up(self, log: LogClient, size: int, root: bytes, findings: Findings) -> None:
        self.say(f"replaying leaves 0..{size}, verified before without a replay")
        tree = CompactRange()
        for leaf in log.leaves(0, size):
            if leaf.leaf_index != tree.size:
                break
            tree.append(leaf_hash(leaf.leaf_data))
            self._feed(leaf)
        if tree.size != size or tree.root() != root:
            self.broken = True  # nothing is replayed
            findings.add(
                FindingCode.LEAVES_MISMATCH,
                f"the service now serves {tree.size} leaves below the size {size} verified "
                "before, and they do not hash to the root verified then",
                tree_size=size,
            )

    def _feed(self, leaf: ServedLeaf) -> None:
        replay = self.replay
        if self.broken or replay is None or leaf.leaf_index >= self.limit:
            return
        if leaf.leaf_index != replay.tree_size:
            self.broken = True
            return
        replay.apply(leaf.leaf_index, leaf.leaf_data)
        self.replayed += 1
        if self.replayed % PROGRESS_EVERY == 0:
            self.say(f"  replayed {self.replayed} leaves (up to {leaf.leaf_index + 1})")

    def settle(self, state: AuditorState) -> None:
        """Keep the replay if it reached the verified head exactly; else drop it."""
        replayed = self.replay_state
        verified = state.verified
        if not self.broken and verified is not None and replayed.tree_size == verified.tree_size:
            if self.loaded_size == verified.tree_size:
                return  # nothing new
            replayed.root_hash = verified.root_hash
            if replayed.last_at is not None:
                # Checkpoints are anchored after they are seen: remember this one's last event.
                replayed.anchored_event_time[verified.tree_size] = replayed.last_at
            name, digest = write_blob(self.state_dir, replayed.to_blob())
            state.replay = ReplayRef(name, digest, verified.tree_size)
            self.committed = replayed
            return
        if self.replayed:
            self.say("the new leaves are not verified: their replay is set aside")
        self.replayed = 0
        ref = state.replay
        if ref is not None and ref.tree_size != state.verified_size:
            state.replay = None  # the next run catches up from the start
            self.committed = None
        elif ref is not None and self.replay_state.tree_size != ref.tree_size:
            # The copy in memory went on with unverified leaves: report the one on disk.
            self.committed = read_blob(self.state_dir, ref.file, ref.sha256)

    def after_save(self, state: AuditorState) -> None:
        if state.replay is not None:
            remove_other_blobs(self.state_dir, state.replay.file)

    def fill(self, report: Report, state: AuditorState, now: float) -> None:
        """The replay's sections and findings in ``report`` (of the committed replay only)."""
        shown = self.committed or ReplayState()
        report.stats.leaves_replayed = self.replayed
        report.stats.requests += self.requests
        report.lawfulness = lawfulness_section(shown)
        report.activity = activity_section(shown, now)
        findings = Findings()
        for code, message, leaves in shown.findings:
            findings.add(FindingCode(code), message, leaf_indices=leaves)
        overdue_findings(shown, now, findings)
        extra: list[Finding] = findings.items
        report.findings.extend(extra)
