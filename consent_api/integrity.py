"""Checking projected rows against the log before they are relied on or shown.

The projection (``records``) is a cache of the log, and the database that holds it can be
changed behind the service's back: a row inserted by hand, a decision flipped, a row pointing
at a leaf the log does not have. Every row read for a decision or a page is checked here: its
leaf index is below the tree size, and the event the row stands for (its kind and body, with
the parts of the logged event the row does not keep taken from the stored leaf) hashes, as an
RFC 9162 leaf, to the leaf hash stored at that index. A row that passes is remembered by leaf
index and the SHA-256 of what was read, so the hot path hashes a few hundred bytes per row and
reads the log only the first time it meets a row (or when the row changed since).

A mismatch is refused (``StorageIntegrityError``), logged, and counted (``counts``, served by
``GET /v1/health``); never skipped, since skipping a forged revocation would bring back the
version it replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from hashing import CanonicalEncodingError, canonical_json, leaf_hash
from ledger.store import LedgerStore, StoredLeaf

from .errors import StorageIntegrityError

VERIFIED_ROWS: Final = 400_000
"""How many verified rows a process remembers (the oldest verified is forgotten first)."""

log = logging.getLogger(__name__)

LoggedConsent = Callable[[dict[str, Any]], dict[str, Any]]
"""A projected consent back in its logged form (what the leaf holds a commitment to, as the
commitment): the inverse of the projection's restore."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    table: str
    leaf_index: int
    reason: str


@dataclass(frozen=True, slots=True)
class Row:
    """A projected row as read: its table, leaf index, event kind and body (JSON text)."""

    table: str
    leaf_index: int
    kind: str
    body: str


class ProjectionVerifier:
    """Verifies projected rows against the stored leaves; remembers those that verified."""

    def __init__(self, store: LedgerStore, logged_consent: LoggedConsent) -> None:
        self._store = store
        self._logged_consent = logged_consent
        self._verified: dict[tuple[str, int], bytes] = {}
        self._lock = threading.Lock()
        self.mismatches = 0
        self.last: Mismatch | None = None

    def counts(self) -> dict[str, Any]:
        last = self.last
        return {
            "mismatches": self.mismatches,
            "verified_rows": len(self._verified),
            "last_mismatch": None
            if last is None
            else {"table": last.table, "leaf_index": last.leaf_index, "reason": last.reason},
        }

    def check(self, rows: Sequence[Row]) -> None:
        """Raise ``StorageIntegrityError`` unless every row is the projection of its leaf."""
        unverified = []
        for row in rows:
            key = (row.table, row.leaf_index)
            if self._verified.get(key) != _digest(row.kind, row.body):
                unverified.append(row)
        if not unverified:
            return
        found = self.find_mismatches(unverified)
        if found:
            self.refuse(found[0])
        with self._lock:
            for row in unverified:
                if len(self._verified) >= VERIFIED_ROWS:
                    self._verified.pop(next(iter(self._verified)))
                self._verified[(row.table, row.leaf_index)] = _digest(row.kind, row.body)

    def find_mismatches(self, rows: Sequence[Row]) -> list[Mismatch]:
        """Every row of ``rows`` that is not the projection of its leaf (none counted)."""
        size, leaves = self._store.leaves_at([row.leaf_index for row in rows])
        found = []
        for row in rows:
            reason = self._mismatch(row, size, leaves.get(row.leaf_index))
            if reason is not None:
                found.append(Mismatch(row.table, row.leaf_index, reason))
        return found

    def check_leaves(
        self, table: str, wanted: Iterable[tuple[int, Callable[[str, Any], bool]]]
    ) -> None:
        """Raise unless each named leaf is stored, hashes to its stored hash, and satisfies its
        predicate (given the leaf's kind and data): for rows derived from leaves whose body they
        do not keep (a break-glass case)."""
        wanted = list(wanted)
        size, leaves = self._store.leaves_at([index for index, _ in wanted])
        for index, holds in wanted:
            leaf = leaves.get(index)
            if index >= size or leaf is None:
                self.refuse(Mismatch(table, index, f"names leaf {index}, beyond the log's {size}"))
            if leaf_hash(leaf.leaf_data) != leaf.leaf_hash:
                self.refuse(
                    Mismatch(table, index, "the stored leaf does not hash to its leaf hash")
                )
            try:
                value = json.loads(leaf.leaf_data)
                ok = holds(str(value["kind"]), value["data"])
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                self.refuse(Mismatch(table, index, "the row does not match its leaf"))

    def refuse(self, mismatch: Mismatch) -> NoReturn:
        """Count and log ``mismatch``, and raise it as ``StorageIntegrityError``."""
        with self._lock:
            self.mismatches += 1
            self.last = mismatch
        log.error(
            "storage integrity: %s row at leaf %d: %s",
            mismatch.table,
            mismatch.leaf_index,
            mismatch.reason,
        )
        raise StorageIntegrityError(
            f"the {mismatch.table} row at leaf {mismatch.leaf_index} does not match the log: "
            f"{mismatch.reason}",
            table=mismatch.table,
            leaf_index=mismatch.leaf_index,
        )

    def _mismatch(self, row: Row, size: int, leaf: StoredLeaf | None) -> str | None:
        if not 0 <= row.leaf_index < size or leaf is None:
            return f"there is no leaf {row.leaf_index} in the log's {size}"
        try:
            body = json.loads(row.body)
            if row.table == "consent_record":
                logged = json.loads(leaf.leaf_data)["data"]
                data = {**logged, "consent": self._logged_consent(body)}
            else:
                data = body
            event = canonical_json({"kind": row.kind, "data": data})
        except (CanonicalEncodingError, KeyError, TypeError, ValueError) as exc:
            return f"the row cannot be read as an event ({exc})"
        if leaf_hash(event) != leaf.leaf_hash:
            return "its event does not hash to the leaf hash stored at its index"
        return None


def _digest(kind: str, body: str) -> bytes:
    return hashlib.sha256(f"{kind}\x00{body}".encode()).digest()
