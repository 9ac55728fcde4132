"""The auditor's own state: one JSON file in a directory the regulator gives.

It pins what the auditor learned on first use (the log's public key and origin, the chain and
registry), and keeps what makes the next run incremental: the last verified checkpoint with the
compact-range frontier at its size (so only newer leaves are hashed), the anchors already read
from the chain and the block read up to, and when each not yet anchored checkpoint was first
seen (for the anchoring-lag limit), and which blob holds the lawfulness replay of the verified
leaves (``replay_state``; written before this file names it). Bytes inside; hex only in the
file. The file is replaced atomically, and loading checks it (the frontier must hash to the
recorded root), so a damaged file stops the audit instead of silently vouching for a log.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashing import CompactRange

from .errors import StateError, StateMismatchError

STATE_FILE = "auditor-state.json"
FORMAT = 1
_HASH_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class VerifiedHead:
    """The last checkpoint whose every leaf this auditor hashed, and the frontier at its size."""

    tree_size: int
    root_hash: bytes
    checkpoint: str
    frontier: tuple[bytes, ...]

    def compact_range(self) -> CompactRange:
        return CompactRange.from_frontier(self.tree_size, self.frontier)


@dataclass(frozen=True)
class KnownAnchor:
    """An anchor read from the chain's ``Anchored`` events (never from the service)."""

    tree_size: int
    root_hash: bytes
    block_number: int
    timestamp: int
    tx_hash: bytes


@dataclass(frozen=True)
class Observation:
    """A signed checkpoint first seen at ``first_seen`` (Unix time) while not yet anchored."""

    tree_size: int
    first_seen: float


@dataclass(frozen=True)
class ReplayRef:
    """The lawfulness replay's state blob that goes with this state (``auditor.replay_state``)."""

    file: str
    sha256: str
    tree_size: int


@dataclass
class AuditorState:
    log_key: str | None = None
    origin: str | None = None
    chain_id: int | None = None
    contract: str | None = None
    verified: VerifiedHead | None = None
    anchors: list[KnownAnchor] = field(default_factory=list)
    scanned_to_block: int = -1
    anchors_checked_to: int = 0
    observations: list[Observation] = field(default_factory=list)
    replay: ReplayRef | None = None

    @property
    def verified_size(self) -> int:
        return 0 if self.verified is None else self.verified.tree_size

    def pin(self, name: str, value: str | int) -> None:
        """Pin ``name`` (chain_id, contract, log_key, origin) on first use; refuse another."""
        pinned = getattr(self, name)
        if pinned is None:
            setattr(self, name, value)
        elif pinned != value:
            raise StateMismatchError(name, pinned, value)

    # -- file -----------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path) -> AuditorState:
        """The state in ``directory``; a fresh one when there is no state file yet."""
        path = directory / STATE_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise StateError(f"cannot read {path}: {exc}") from exc
        try:
            return _from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{path} is damaged: {exc}") from exc

    def save(self, directory: Path) -> Path:
        """Write the state atomically (temporary file, fsync, rename, fsync the directory).

        The directory is synced before returning: callers delete the replay blobs the old
        state named right after, and a power loss must not leave the old name pointing at one.
        """
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / STATE_FILE
        tmp = directory / f".{STATE_FILE}.{os.getpid()}.tmp"
        data = json.dumps(_to_dict(self), indent=1, sort_keys=True) + "\n"
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return path


def _to_dict(state: AuditorState) -> dict[str, Any]:
    verified = state.verified
    return {
        "format": FORMAT,
        "log_key": state.log_key,
        "origin": state.origin,
        "chain_id": state.chain_id,
        "contract": state.contract,
        "verified": None
        if verified is None
        else {
            "tree_size": verified.tree_size,
            "root_hash": verified.root_hash.hex(),
            "checkpoint": verified.checkpoint,
            "frontier": [node.hex() for node in verified.frontier],
        },
        "anchors": [
            {
                "tree_size": a.tree_size,
                "root_hash": a.root_hash.hex(),
                "block_number": a.block_number,
                "timestamp": a.timestamp,
                "tx_hash": a.tx_hash.hex(),
            }
            for a in state.anchors
        ],
        "scanned_to_block": state.scanned_to_block,
        "anchors_checked_to": state.anchors_checked_to,
        "observations": [
            {"tree_size": o.tree_size, "first_seen": o.first_seen} for o in state.observations
        ],
        "replay": None
        if state.replay is None
        else {
            "file": state.replay.file,
            "sha256": state.replay.sha256,
            "tree_size": state.replay.tree_size,
        },
    }


def _from_dict(data: Any) -> AuditorState:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not an auditor state of format {FORMAT}")
    verified = None
    if data["verified"] is not None:
        v = data["verified"]
        verified = VerifiedHead(
            tree_size=_int(v["tree_size"], "verified.tree_size"),
            root_hash=_hash(v["root_hash"], "verified.root_hash"),
            checkpoint=_str(v["checkpoint"], "verified.checkpoint"),
            frontier=tuple(_hash(h, "verified.frontier") for h in v["frontier"]),
        )
        # The frontier is what the next run builds on: it must be the tree it says it is.
        if verified.compact_range().root() != verified.root_hash:
            raise ValueError("the verified frontier does not hash to the verified root")
    anchors = [
        KnownAnchor(
            tree_size=_int(a["tree_size"], "anchors.tree_size"),
            root_hash=_hash(a["root_hash"], "anchors.root_hash"),
            block_number=_int(a["block_number"], "anchors.block_number"),
            timestamp=_int(a["timestamp"], "anchors.timestamp"),
            tx_hash=_hash(a["tx_hash"], "anchors.tx_hash"),
        )
        for a in data["anchors"]
    ]
    replay = None
    if data.get("replay") is not None:  # absent from states written before the replay existed
        r = data["replay"]
        replay = ReplayRef(
            file=_str(r["file"], "replay.file"),
            sha256=_hash(r["sha256"], "replay.sha256").hex(),
            tree_size=_int(r["tree_size"], "replay.tree_size"),
        )
        if verified is None or replay.tree_size != verified.tree_size:
            raise ValueError("the replay state is not of the verified tree size")
    sizes = [a.tree_size for a in anchors]
    if sizes != sorted(set(sizes)):
        raise ValueError("anchors are not in strictly increasing tree size")
    return AuditorState(
        log_key=_optional_str(data["log_key"], "log_key"),
        origin=_optional_str(data["origin"], "origin"),
        chain_id=None if data["chain_id"] is None else _int(data["chain_id"], "chain_id"),
        contract=_optional_str(data["contract"], "contract"),
        verified=verified,
        anchors=anchors,
        scanned_to_block=_int(data["scanned_to_block"], "scanned_to_block", minimum=-1),
        anchors_checked_to=_int(data["anchors_checked_to"], "anchors_checked_to"),
        observations=[
            Observation(
                _int(o["tree_size"], "observations.tree_size"),
                float(o["first_seen"]),
            )
            for o in data["observations"]
        ],
        replay=replay,
    )


def _int(value: Any, name: str, *, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _optional_str(value: Any, name: str) -> str | None:
    return None if value is None else _str(value, name)


def _hash(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not _HASH_HEX.fullmatch(value):
        raise ValueError(f"{name} must be 64 lower-case hex digits")
    return bytes.fromhex(value)
