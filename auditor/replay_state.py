"""What the lawfulness replay carries from one run to the next, and how it is kept on disk.

The replay of leaves ``[0, tree_size)`` leaves behind everything later leaves can be judged by:
consents per subject, institutions and their types, grants and their use, break-glass cases,
the access index per subject, the activity aggregate and the findings made so far (a finding
about a verified leaf is a fact; every report repeats it). Plain dicts, tuples and integers, so
a run holds it cheaply and ``marshal`` writes and reads it fast.

On disk it is one blob named by its SHA-256 (``replay-<hex>.bin``) in the auditor's state
directory; the state file (``auditor-state.json``) names the blob, its hash and size, and is
replaced atomically after the blob is durable, so a crash at any point leaves a state file and
a blob that belong together. ``marshal`` is not meant for untrusted input: the blob is read
only once its hash matches the one the state file recorded.
"""

from __future__ import annotations

import gc
import hashlib
import marshal
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .errors import OutdatedReplayError, StateError
from .rules import Rule, Version

FORMAT: Final = 2
PREFIX: Final = "replay-"

#: (permit leaf, requester, holder, subject, categories (sorted), purpose, expires, breakglass)
Grant = tuple[int, str, str, str, tuple[str, ...], str, int | None, bool]
#: (permit leaf, leaf that used the grant up, expires): a grant redeemed (or claimed)
Settled = tuple[int, int, int | None]
#: [decision leaf, at, requester, holder, justify_by, justified_at, justification leaf]
Case = list[Any]
#: (code, message, leaf indices)
Recorded = tuple[str, str, tuple[int, ...]]
#: (day, requester, holder, purpose, decision, breakglass)
ActivityKey = tuple[str, str, str, str, str, bool]

COUNTERS: Final = (
    "events",
    "permits",
    "denials",
    "releases",
    "refusals",
    "breakglass",
    "unverifiable_guardian_consents",
)


@dataclass
class ReplayState:
    tree_size: int = 0
    root_hash: bytes = b""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    institutions: dict[str, str] = field(default_factory=dict)
    consents: dict[str, dict[str, list[Version]]] = field(default_factory=dict)
    consent_subject: dict[str, str] = field(default_factory=dict)
    erased: dict[str, int] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    used: dict[str, Settled] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    activity: dict[ActivityKey, int] = field(default_factory=dict)
    accesses: dict[str, array[int]] = field(default_factory=dict)
    """Each subject's access events by leaf index (the per-resident report's index)."""
    findings: list[Recorded] = field(default_factory=list)
    last_at: int | None = None
    """The instant of the last timed event replayed (microseconds)."""
    latest_at: int | None = None
    """The latest instant of any event replayed (µs): later events may not be much earlier."""
    latest_leaf: int = -1
    """The leaf that carried ``latest_at``."""
    deactivated: dict[str, int] = field(default_factory=dict)
    """Institutions deactivated (``institution.revoked``), with the leaf that did it."""
    spent: dict[str, int] = field(default_factory=dict)
    """Request ids of grants expired long ago (pruned), with their permit leaf: ids only, so a
    reuse of one is still caught however long ago it was issued."""
    next_prune: int | None = None
    """The event time (µs) at which the replay next prunes long-expired grants."""
    pending: dict[tuple[str, int], int] = field(default_factory=dict)
    """Guardian lapse commitments not opened yet ((consent_id, version) -> leaf index)."""
    anchored_event_time: dict[int, int] = field(default_factory=dict)
    """``last_at`` at each size anchored when it was replayed, and at each verified size a run
    ended at (anchored later, maybe): the anchoring lag is measured from it."""
    stored: dict[str, bytes] = field(default_factory=dict)
    """Each subject's consents as read from disk (marshalled on their own), made ``Version``s
    only when the subject is next seen: a run pays for the subjects it touches, not for all."""
    stored_accesses: dict[str, bytes] = field(default_factory=dict)
    """``accesses`` as read from disk (int64 arrays), likewise taken up when next needed."""

    def consents_of(self, subject: str, *, create: bool = False) -> dict[str, list[Version]]:
        """The consents of ``subject`` (consent_id -> versions); a new entry if ``create``."""
        found = self.consents.get(subject)
        if found is None:
            raw = self.stored.pop(subject, None)
            if raw is None:
                if not create:
                    return {}
                found = {}
            else:
                loaded = marshal.loads(raw)  # noqa: S302 (part of a blob whose hash was checked)
                found = {cid: [_version(t) for t in history] for cid, history in loaded.items()}
            self.consents[subject] = found
        return found

    def accesses_of(self, subject: str) -> array[int]:
        """The leaves of the access events about ``subject`` (appended to by the replay)."""
        found = self.accesses.get(subject)
        if found is None:
            found = self.accesses[subject] = array("q", self.stored_accesses.pop(subject, b""))
        return found

    def prune_grants(self, expired_before: int) -> int:
        """Keep only the id (``spent``) of grants that expired before ``expired_before`` (µs).

        A later release or permit under one of those ids is still a finding, so pruning changes
        no verdict; the replay calls it at instants fixed by the events alone.
        """
        gone = [rid for rid, g in self.grants.items() if g[6] is not None and g[6] < expired_before]
        for request_id in gone:
            self.spent[request_id] = self.grants.pop(request_id)[0]
        settled = [
            rid for rid, s in self.used.items() if s[2] is not None and s[2] < expired_before
        ]
        for request_id in settled:
            self.spent[request_id] = self.used.pop(request_id)[0]
        return len(gone) + len(settled)

    # -- blob -----------------------------------------------------------------------------------

    def to_blob(self) -> bytes:
        consents = dict(self.stored)
        for subject, ids in self.consents.items():
            consents[subject] = marshal.dumps(
                {cid: [_version_tuple(v) for v in history] for cid, history in ids.items()}
            )
        return marshal.dumps(
            (
                FORMAT,
                self.tree_size,
                self.root_hash,
                self.counts,
                self.institutions,
                consents,
                self.consent_subject,
                self.erased,
                self.grants,
                self.used,
                self.cases,
                self.activity,
                {**self.stored_accesses, **{s: a.tobytes() for s, a in self.accesses.items()}},
                self.findings,
                self.last_at,
                self.anchored_event_time,
                self.latest_at,
                self.latest_leaf,
                self.deactivated,
                self.spent,
                self.next_prune,
                self.pending,
            )
        )

    @classmethod
    def from_blob(cls, blob: bytes) -> ReplayState:
        collecting = gc.isenabled()
        gc.disable()  # millions of young tuples, none of them garbage: a pass would find none
        try:
            data = marshal.loads(blob)  # noqa: S302 (read only after its hash is checked)
            if isinstance(data, tuple) and data and data[0] != FORMAT:
                raise OutdatedReplayError(f"a replay state of format {data[0]!r}, not {FORMAT}")
            if not isinstance(data, tuple) or len(data) != 22:
                raise ValueError(f"not a replay state of format {FORMAT}")
            if not isinstance(data[5], dict):
                raise ValueError("consents must be a dict")
            return cls(
                tree_size=data[1],
                root_hash=data[2],
                counts=data[3],
                institutions=data[4],
                consent_subject=data[6],
                erased=data[7],
                grants=data[8],
                used=data[9],
                cases=data[10],
                activity=data[11],
                stored_accesses=data[12],
                findings=data[13],
                last_at=data[14],
                anchored_event_time=data[15],
                latest_at=data[16],
                latest_leaf=data[17],
                deactivated=data[18],
                spent=data[19],
                next_prune=data[20],
                pending=data[21],
                stored=data[5],
            )
        except (ValueError, TypeError, EOFError, IndexError, AttributeError) as exc:
            raise StateError(f"the replay state is damaged: {exc}") from exc
        finally:
            if collecting:
                gc.enable()


def _rule_tuple(rule: Rule) -> tuple[Any, ...]:
    return (*rule[:7], tuple(_rule_tuple(p) for p in rule.provisions))


def _rule(data: tuple[Any, ...]) -> Rule:
    return Rule._make((*data[:7], tuple(_rule(p) for p in data[7])))


def _version_tuple(version: Version) -> tuple[Any, ...]:
    return (*version[:6], _rule_tuple(version.rule))


def _version(data: tuple[Any, ...]) -> Version:
    return Version._make((*data[:6], _rule(data[6])))


# -- files --------------------------------------------------------------------------------------


def write_blob(directory: Path, blob: bytes) -> tuple[str, str]:
    """Write ``blob`` durably under its hash; return (file name, hex SHA-256)."""
    digest = hashlib.sha256(blob).hexdigest()
    name = f"{PREFIX}{digest[:32]}.bin"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    with tmp.open("wb") as handle:
        handle.write(blob)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    _fsync_directory(directory)
    return name, digest


def read_blob(directory: Path, name: str, sha256: str) -> ReplayState:
    """The replay state the state file names; StateError if missing or not the recorded one."""
    if "/" in name or not name.startswith(PREFIX):
        raise StateError(f"the state file names an odd replay file {name!r}")
    path = directory / name
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise StateError(f"cannot read the replay state {path}: {exc}") from exc
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise StateError(f"{path} is not the replay state the state file recorded (hash differs)")
    return ReplayState.from_blob(blob)


def remove_other_blobs(directory: Path, keep: str) -> None:
    """Delete replay blobs the state file no longer names (after it was replaced)."""
    for path in directory.glob(f"{PREFIX}*.bin"):
        if path.name != keep:
            path.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
