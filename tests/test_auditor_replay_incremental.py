"""An incremental replay (runs split anywhere, state saved and loaded in between) is a full one.

The replay's state after leaves ``[0, n)`` must not depend on where earlier runs stopped: the
same findings, and the very same state (so every later leaf is judged the same too). Pruning
of long-expired grants happens at instants fixed by the events, and keeps their ids.
"""

from __future__ import annotations

import hashlib
import marshal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.fetch import ServedLeaf
from auditor.findings import FindingCode, Findings
from auditor.lawfulness import Lawfulness, TappedLogClient
from auditor.replay import Replay
from auditor.replay_state import ReplayState, read_blob, write_blob
from auditor.state import AuditorState, ReplayRef, VerifiedHead
from bench.audit_world import World
from hashing import CompactRange, leaf_hash
from tests.test_auditor_replay_rules import CHILD, SUBJECT, consent_body

Code = FindingCode


def event(kind: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"kind": kind, "data": data})


def decided(request_id: str, at: str, expires: str) -> bytes:
    return event(
        "access.decided",
        {
            "request_id": request_id,
            "requester": "h-req",
            "requester_type": "hospital",
            "holder": "h-hold",
            "subject": SUBJECT,
            "categories": ["lab-results"],
            "purpose": "treatment",
            "at": at,
            "decision": "permit",
            "reason": "permitted",
            "relied_on": [{"consent_id": "c-1", "leaf_index": 2}],
            "breakglass": False,
            "grant_expires_at": expires,
        },
    )


def released(request_id: str, at: str, decision_leaf: int) -> bytes:
    return event(
        "access.released",
        {
            "request_id": request_id,
            "subject": SUBJECT,
            "requester": "h-req",
            "holder": "h-hold",
            "categories": ["lab-results"],
            "purpose": "treatment",
            "grant_ref": "x",
            "decision_leaf_index": decision_leaf,
            "breakglass": False,
            "relied_on": [{"consent_id": "c-1", "leaf_index": 2}],
            "at": at,
        },
    )


def day(time: str) -> str:
    return f"2026-03-01T{time}.000000Z"


#: The reviewer's sequence: grants used and unused, then reused hours later (after an
#: incremental run used to forget them), then more of a lawful world.
LEAVES = [
    event("institution.registered", {"institution_id": "h-req", "institution_type": "hospital"}),
    event("institution.registered", {"institution_id": "h-hold", "institution_type": "hospital"}),
    event(
        "consent.granted",
        {"consent": consent_body(granted_at=day("09:00:00")), "at": day("09:00:00")},
    ),
    decided("r-A", day("10:00:00"), day("10:05:00")),  # 3
    released("r-A", day("10:01:00"), 3),  # 4
    decided("r-B", day("10:02:00"), day("10:07:00")),  # 5, never redeemed in time
    decided("r-X", day("13:00:00"), day("13:05:00")),  # 6, hours later
    released("r-A", day("13:10:00"), 3),  # 7, a second use of r-A
    released("r-B", day("13:11:00"), 5),  # 8, r-B after its expiry
    decided("r-A", day("13:12:00"), day("13:17:00")),  # 9, the request id again
    released("r-X", day("13:20:00"), 6),  # 10, r-X after its expiry
    *(event(kind, data) for kind, data in World(400, first_index=11, seed=5).take(400)),
]


def replay(leaves: list[bytes], splits: list[int]) -> ReplayState:
    """Replay ``leaves`` in runs ending at ``splits``, each run loaded and settled as the
    auditor does (``Lawfulness.load`` and ``settle``: the state written and read again)."""
    state = AuditorState()
    position = 0
    with tempfile.TemporaryDirectory() as directory:
        for end in [*sorted(set(splits)), len(leaves)]:
            lawfulness = Lawfulness(Path(directory))
            lawfulness.load(state)
            runner = Replay(lawfulness.replay_state)
            for leaf_index in range(position, end):
                runner.apply(leaf_index, leaves[leaf_index])
            position = end
            root = hashlib.sha256(b"%d" % end).digest()
            state.verified = VerifiedHead(end, root, "checkpoint", ())
            lawfulness.settle(state)
            lawfulness.after_save(state)
        assert state.replay is not None
        return read_blob(Path(directory), state.replay.file, state.replay.sha256)


def codes(state: ReplayState) -> list[tuple[str, tuple[int, ...]]]:
    return [(code, leaves) for code, _, leaves in state.findings]


FULL = replay(LEAVES, [])


def test_the_full_replay_finds_each_misuse_of_a_grant() -> None:
    assert codes(FULL) == [
        (Code.GRANT_EXPIRED, (3, 7)),  # used before, and long expired: kept as an id
        (Code.GRANT_EXPIRED, (5, 8)),
        (Code.BAD_EVENT, (9,)),  # a permit under a request id already used
        (Code.GRANT_EXPIRED, (6, 10)),
    ]
    assert FULL.spent  # long-expired grants are kept as ids only


@given(st.lists(st.integers(min_value=0, max_value=len(LEAVES)), max_size=6))
@settings(max_examples=60, deadline=None)
def test_an_incremental_replay_equals_the_full_one(splits: list[int]) -> None:
    split = replay(LEAVES, splits)
    assert codes(split) == codes(FULL)
    assert judged(split) == judged(FULL)


def judged(state: ReplayState) -> tuple[Any, ...]:
    """The whole state but the event time at each size a run ended (for the anchoring lag)."""
    everything: tuple[Any, ...] = marshal.loads(state.to_blob())
    return everything[:15] + everything[16:]


def test_every_single_split_point_gives_the_full_findings() -> None:
    for cut in range(len(LEAVES) + 1):
        assert codes(replay(LEAVES, [cut])) == codes(FULL), cut


# -- lapse commitments opened only on a later run -------------------------------------------------

SALT = bytes(range(32))
LAPSE = "2026-03-10"  # the child's 14th birthday: the guardian's consent ends then
GUARDIAN_LEAVES = [
    *LEAVES[:2],
    event(
        "consent.granted",
        {
            "consent": consent_body(
                subject=CHILD,
                granted_at=day("09:00:00"),
                guardian_ends={"sha256": hashlib.sha256(SALT + LAPSE.encode()).hexdigest()},
            ),
            "at": day("09:00:00"),
        },
    ),
    decided("r-1", "2026-03-11T10:00:00.000000Z", "2026-03-11T10:05:00.000000Z"),
    event("subject.erased", {"subject": "someone", "at": "2026-03-11T10:01:00.000000Z"}),
]
GUARDIAN_LEAVES[3] = GUARDIAN_LEAVES[3].replace(SUBJECT.encode(), CHILD.encode())


class ServedLog(TappedLogClient):
    """The service's log endpoints, served from a list; lapse openings from ``opened``."""

    def __init__(self, leaves: list[bytes], opened: bool) -> None:
        def openings(request: httpx.Request) -> httpx.Response:
            items = [{"consent_id": "c-1", "version": 1, "guardian_authority_ends": LAPSE}]
            body = {"openings": [{**items[0], "salt": SALT.hex()}] if opened else [], "next": None}
            return httpx.Response(200, json=body)

        self.http = httpx.Client(transport=httpx.MockTransport(openings))
        super().__init__("http://platform", http=self.http)
        self.served = leaves

    def _pages(self, start: int, end: int) -> Iterator[list[ServedLeaf]]:
        end = min(end, len(self.served))
        yield [ServedLeaf(i, self.served[i]) for i in range(start, end)]


def audit_run(directory: Path, state: AuditorState, leaves: list[bytes], opened: bool) -> Any:
    """One run of the replay over ``leaves`` (all verified), as ``audit_integrity`` drives it."""
    lawfulness = Lawfulness(directory, token="regulator")
    lawfulness.load(state)
    log = ServedLog(leaves, opened)
    lawfulness.before_leaves(log, log.http, state, len(leaves), Findings())
    for _ in log.leaves(lawfulness.replay_state.tree_size, len(leaves)):
        pass  # the tap replays them, as the integrity audit hashes them
    lawfulness.disarm(log)
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf_hash(leaf))
    state.verified = VerifiedHead(len(leaves), tree.root(), "checkpoint", ())
    lawfulness.settle(state)
    lawfulness.after_save(state)
    return lawfulness.committed


def test_a_lapse_opened_on_a_later_run_rejudges_as_a_full_run_would(tmp_path: Path) -> None:
    state = AuditorState()
    first = audit_run(tmp_path / "inc", state, GUARDIAN_LEAVES[:4], opened=False)
    assert codes(first) == []  # judged without the lapse: unverifiable, not unlawful
    assert first.counts["unverifiable_guardian_consents"] == 1
    assert first.pending == {("c-1", 1): 2}
    still = audit_run(tmp_path / "inc", state, GUARDIAN_LEAVES[:4], opened=False)
    assert still.pending == {("c-1", 1): 2}  # asked again, still not opened
    later = audit_run(tmp_path / "inc", state, GUARDIAN_LEAVES, opened=True)
    full = audit_run(tmp_path / "full", AuditorState(), GUARDIAN_LEAVES, opened=True)
    assert codes(later) == codes(full) == [(Code.UNCOVERED_PERMIT, (3,))]  # after the lapse
    assert judged(later) == judged(full)
    assert later.pending == {}
    assert later.counts["unverifiable_guardian_consents"] == 0


def test_an_unopened_lapse_is_judged_alike_by_full_and_incremental_runs(tmp_path: Path) -> None:
    state = AuditorState()
    audit_run(tmp_path / "inc", state, GUARDIAN_LEAVES[:4], opened=False)
    later = audit_run(tmp_path / "inc", state, GUARDIAN_LEAVES, opened=False)
    full = audit_run(tmp_path / "full", AuditorState(), GUARDIAN_LEAVES, opened=False)
    assert judged(later) == judged(full)
    assert later.counts["unverifiable_guardian_consents"] == 1


def test_a_replay_state_of_an_older_format_is_replayed_anew(tmp_path: Path) -> None:
    name, digest = write_blob(tmp_path, marshal.dumps((1, 5, b"", {})))
    root = hashlib.sha256(b"5").digest()
    state = AuditorState(
        verified=VerifiedHead(5, root, "checkpoint", ()), replay=ReplayRef(name, digest, 5)
    )
    lawfulness = Lawfulness(tmp_path)
    lawfulness.load(state)
    assert state.replay is None  # the next steps catch up from leaf 0, verified to the root
    assert lawfulness.replay_state.tree_size == 0
