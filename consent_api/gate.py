"""Decisions and consent changes about one resident, put in an order the log can show.

A decision is stamped when its request arrives and then reads the resident's consents; a
consent change (a narrowing, a revocation, a renewal) is stamped, logged and projected. Were a
decision to read between a change's stamp and its projection, it would be logged after the
change, as permitted by a consent already revoked at its own time: the service would break the
rule it enforces, and the auditor would rightly say so.

So a change holds its resident exclusively from before its stamp until its projection has
committed, and a decision reads the consents holding the resident shared. A decision that read
before a change was stamped earlier than it (its consent was still in force at its time); one
that reads after sees the change. In one process a striped readers-writer gate does it (a
stripe shared by two residents only makes one wait for the other's change, a few milliseconds);
across PostgreSQL workers a change holds a session advisory lock on the resident
(``consents.SubjectLocks``) and a decision's read transaction the same lock, shared.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

STRIPES: Final = 4096
SHARED_LOCK_SQL: Final = "SELECT pg_advisory_xact_lock_shared(?)"
"""The decision's side on PostgreSQL, first in its read transaction (released at its end)."""


def advisory_key(subject: str) -> int:
    """The PostgreSQL advisory lock key of a resident (a signed 64-bit integer)."""
    return int.from_bytes(hashlib.sha256(subject.encode()).digest()[:8], "big", signed=True)


class SubjectGate:
    """Shared for decisions, exclusive for consent changes, per resident (striped)."""

    def __init__(self, stripes: int = STRIPES) -> None:
        self._changed = threading.Condition()
        self._readers = [0] * stripes
        self._writers = [0] * stripes

    def _stripe(self, subject: str) -> int:
        return zlib.crc32(subject.encode()) % len(self._readers)

    @contextmanager
    def reading(self, subject: str) -> Iterator[None]:
        """Read ``subject``'s consents with no change of them under way."""
        stripe = self._stripe(subject)
        with self._changed:
            while self._writers[stripe]:
                self._changed.wait()
            self._readers[stripe] += 1
        try:
            yield
        finally:
            with self._changed:
                self._readers[stripe] -= 1
                if not self._readers[stripe]:
                    self._changed.notify_all()

    @contextmanager
    def changing(self, subject: str) -> Iterator[None]:
        """Change ``subject``'s consents: new readers wait, and the ones reading finish first."""
        stripe = self._stripe(subject)
        with self._changed:
            self._writers[stripe] += 1
            while self._readers[stripe]:
                self._changed.wait()
        try:
            yield
        finally:
            with self._changed:
                self._writers[stripe] -= 1
                self._changed.notify_all()
