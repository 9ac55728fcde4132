"""The log's own witness: the newest checkpoint it signed, kept outside its database.

A database restored from an old backup, or edited by hand, looks healthy from inside: its
leaves, nodes and checkpoints agree with each other. What it cannot hide is that this log has
already signed a larger tree. ``<data_dir>/latest-checkpoint`` holds the newest signed
checkpoint note, beside the signing key. It only ever moves forward, and only to a checkpoint
consistent with the one it held: a compare-and-swap under a file lock, written atomically
(temporary file, fsync, rename, fsync of the directory), as Sunlight keeps its latest
checkpoint in a lock backend apart from its storage.

A log is opened for use only if its tree is at least the witness's size and has the witness's
root at that size (``Ledger.open``); an append is refused below that size (``LedgerStore``).
The way out of a refusal is a newer backup, or ``accept_rollback`` (``consent-ledger recover
--accept-rollback``), which keeps the old witness aside and says what was lost.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hashing import (
    Checkpoint,
    HashingError,
    NoteVerifier,
    VerificationError,
    open_checkpoint,
    verify_consistency,
)

from .errors import IntegrityError, RollbackError

WITNESS_FILE = "latest-checkpoint"

ConsistencyProver = Callable[[int, int], Sequence[bytes]]
"""The log's consistency proof from ``size1`` to ``size2``, as hashes."""


class Witness:
    """The newest checkpoint this log signed, in a file of the data dir."""

    def __init__(self, data_dir: Path, verifier: NoteVerifier, origin: str) -> None:
        self.path = data_dir / WITNESS_FILE
        self.verifier = verifier
        self.origin = origin

    def read(self) -> Checkpoint | None:
        """The witnessed checkpoint, or None if there is none yet; a file that is not a
        checkpoint signed by this log's key raises IntegrityError."""
        try:
            note = self.path.read_text("utf-8")
        except FileNotFoundError:
            return None
        try:
            return open_checkpoint(note, self.verifier, self.origin)
        except (HashingError, VerificationError, ValueError) as exc:
            raise IntegrityError(
                f"{self.path} does not hold a checkpoint signed by this log's key ({exc}); "
                "restore it from the backup of the data dir"
            ) from exc

    def advance(self, note: str, prove: ConsistencyProver) -> Checkpoint:
        """Witness ``note`` if it is newer; either way it must be consistent with the witness.

        Returns the checkpoint witnessed afterwards (``note``'s, or a newer one another process
        witnessed meanwhile). Raises RollbackError when the two trees are not one log.
        """
        new = open_checkpoint(note, self.verifier, self.origin)
        with self._locked():
            current = self.read()
            if current is not None:
                check_consistent(current, new, prove, self.path)
                if new.tree_size <= current.tree_size:
                    return current
            _write_atomically(self.path, note)
        return new

    def set_aside(self) -> Path | None:
        """Move the witness file out of the way (kept, renamed); return its new path."""
        with self._locked():
            if not self.path.exists():
                return None
            kept = self.path.with_name(f"{WITNESS_FILE}.rolled-back-{int(time.time())}")
            os.replace(self.path, kept)
            _fsync_directory(self.path.parent)
            return kept

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Several processes share a data dir (serve workers, anchor): the read-compare-write
        # must be one step among them.
        lock = os.open(self.path.with_name(f".{WITNESS_FILE}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)


def check_consistent(
    first: Checkpoint, second: Checkpoint, prove: ConsistencyProver, where: Path | str
) -> None:
    """Raise RollbackError unless the smaller of two checkpoints is a prefix of the larger."""
    old, new = sorted((first, second), key=lambda c: c.tree_size)
    if old.tree_size == new.tree_size:
        if old.root_hash != new.root_hash:
            raise RollbackError(
                f"the log signed two different trees of size {old.tree_size} ({where}): "
                "the database was forked (restored from an old backup, then appended to)"
            )
        return
    if old.tree_size == 0:
        return
    try:
        verify_consistency(
            old.tree_size,
            new.tree_size,
            prove(old.tree_size, new.tree_size),
            old.root_hash,
            new.root_hash,
        )
    except (HashingError, VerificationError) as exc:
        raise RollbackError(
            f"the tree of size {new.tree_size} does not extend the one of size {old.tree_size} "
            f"this log signed before ({where}): the database was forked ({exc})"
        ) from exc


def rollback_message(path: Path, witnessed: int, size: int) -> str:
    return (
        f"the database holds {size} leaves, but this log already signed a checkpoint of size "
        f"{witnessed} ({path}): it was restored from an older backup or rolled back, and "
        "sequencing on it would reuse leaf indices that were handed out. Restore a backup "
        f"holding at least {witnessed} leaves; or, knowingly giving up the events past {size}, "
        "run: consent-ledger recover --accept-rollback"
    )


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
