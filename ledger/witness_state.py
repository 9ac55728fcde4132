"""A witness's durable state: its cosigning key and, per log origin, the latest checkpoint
it cosigned (C2SP tlog-witness).

The state is one SQLite file in WAL mode with full sync. Checking a submission against the
stored checkpoint, cosigning it and storing it happen in one ``BEGIN IMMEDIATE`` transaction,
and the cosignature is returned only after the commit: two requests (threads or processes)
cannot both pass the check against the same old state, and a ``kill -9`` at any moment leaves
either the old checkpoint (the signature never left the process) or the new one.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hashing import (
    EMPTY_ROOT,
    Checkpoint,
    CosignatureSigner,
    VerificationError,
    add_signature_lines,
    verify_consistency,
)

from .errors import KeyFileError, WitnessRefusal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY,
    tree_size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The latest checkpoint a witness cosigned for one origin, with its signatures."""

    origin: str
    tree_size: int
    root_hash: bytes
    note: str


def load_or_create_cosigner(path: Path, name: str) -> CosignatureSigner:
    """The witness key at ``path`` (mode 0600), created with ``name`` on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        signer = CosignatureSigner.generate(name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(signer.to_skey() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic, and refuses an existing name: one key wins whole
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} is readable by others; run: chmod 600 {path}")
    try:
        signer = CosignatureSigner.from_skey(path.read_text(encoding="utf-8").strip())
    except ValueError as exc:
        raise KeyFileError(f"{path} does not hold a witness key: {exc}") from exc
    if signer.name != name:
        raise KeyFileError(f"{path} is the key of witness {signer.name!r}, not {name!r}")
    return signer


class WitnessState:
    """The per-origin latest cosigned checkpoint, advanced only by compare-and-swap."""

    def __init__(self, path: Path, signer: CosignatureSigner) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.signer = signer
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def latest(self, origin: str) -> Cosigned | None:
        with self._lock:
            row = self._db.execute(
                "SELECT tree_size, root_hash, note FROM latest WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else Cosigned(origin, row[0], bytes(row[1]), row[2])

    def add_checkpoint(
        self, old_size: int, proof: list[bytes], checkpoint: Checkpoint, note: str
    ) -> str:
        """Cosign ``checkpoint`` (already verified under a trusted log key) if it extends the
        latest one cosigned for its origin; return the cosignature line.

        Raises WitnessRefusal with the spec's status: 400, 409 (with the latest size) or 422.
        """
        if old_size > checkpoint.tree_size:
            raise WitnessRefusal(
                400,
                f"old size {old_size} is larger than the checkpoint size {checkpoint.tree_size}",
            )
        if checkpoint.tree_size == 0 and checkpoint.root_hash != EMPTY_ROOT:
            raise WitnessRefusal(422, "a checkpoint of size 0 must have the empty tree's root")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                line = self._advance(old_size, proof, checkpoint, note)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return line

    def _advance(self, old_size: int, proof: list[bytes], checkpoint: Checkpoint, note: str) -> str:
        row = self._db.execute(
            "SELECT tree_size, root_hash FROM latest WHERE origin = ?", (checkpoint.origin,)
        ).fetchone()
        latest_size, latest_root = (0, EMPTY_ROOT) if row is None else (row[0], bytes(row[1]))
        if old_size != latest_size:
            raise WitnessRefusal(
                409,
                f"old size {old_size} is not the size of the latest cosigned checkpoint",
                latest_size=latest_size,
            )
        if old_size == 0:
            if proof:
                raise WitnessRefusal(422, "a proof from old size 0 must be empty")
        elif old_size == checkpoint.tree_size:
            if proof or checkpoint.root_hash != latest_root:
                raise WitnessRefusal(
                    422,
                    f"the checkpoint has the size {old_size} of the latest cosigned one "
                    "but another root hash",
                )
        else:
            try:
                verify_consistency(
                    old_size, checkpoint.tree_size, proof, latest_root, checkpoint.root_hash
                )
            except VerificationError as exc:
                raise WitnessRefusal(
                    422,
                    f"the consistency proof from size {old_size} to {checkpoint.tree_size} "
                    f"does not verify: {exc}",
                ) from exc
        # Signed inside the transaction: if it never commits, the signature never leaves.
        line = self.signer.cosign(checkpoint.body(), int(time.time()))
        stored = add_signature_lines(note, [line])
        self._db.execute(
            "INSERT INTO latest (origin, tree_size, root_hash, note, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET "
            "tree_size = excluded.tree_size, root_hash = excluded.root_hash, "
            "note = excluded.note, updated_at = excluded.updated_at",
            (checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash, stored, time.time()),
        )
        return line
