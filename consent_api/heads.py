"""Per-subject heads of the consent projection: a deleted consent row is refused, not skipped.

Verifying each row read against its leaf (``integrity``) catches a row changed or inserted by
hand, not one deleted: a resident's history without its revocation row is a true history of
an earlier time, and would bring back the consent the revocation ended. So each consent row is
written with an upsert of its subject's head (``consent_head``: the newest consent leaf and how
many versions), in the same transaction, and every read of a subject's history is held to it:
the newest row read must be the head's leaf, and there must be as many rows as the head counts.
The head's leaf needs no read of its own: it is the newest row's, which is verified against its
leaf and found about that subject.

A process also remembers, per subject (bounded), the newest leaf and count it projected or
verified, so a row deleted under a running service is caught even if the head is edited to
match (but not a subject's every row and head deleted: that is what erasing a child leaves,
maybe seen from another worker, and it permits nothing). What neither catches: rows and head
both edited, and the service restarted (or the subject forgotten) since; the auditor's replay
of the log catches that, after the fact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any, Final

from sqlalchemy import Connection, Executable, delete, func, insert, select, text

from .integrity import Mismatch, ProjectionVerifier
from .projection_tables import CONSENT, CONSENT_HEAD

REMEMBERED_SUBJECTS: Final = 200_000
"""How many subjects' newest consent leaf a process remembers (the oldest noted is dropped)."""

# A subject's consent rows and head in one statement, so one snapshot on either database (two
# statements under PostgreSQL's READ COMMITTED could see a version projected between them); the
# head comes back as the row whose first column is NULL.
HISTORY_SQL = (
    "SELECT leaf_index, kind, body, NULL, NULL FROM consent_record WHERE subject = ? "
    "UNION ALL SELECT NULL, NULL, NULL, leaf_index, versions FROM consent_head WHERE subject = ?"
)
HISTORY = text(HISTORY_SQL.replace("?", ":history_subject"))

Head = tuple[int, int] | None
"""A subject's head as read: its newest consent leaf and how many versions (None: no head)."""


def split_history(rows: Iterable[Any]) -> tuple[list[tuple[int, str, str]], Head]:
    """``HISTORY``'s rows as the consent rows (leaf index, kind, body) in log order and the head."""
    consents: list[tuple[int, str, str]] = []
    head: Head = None
    for leaf, kind, body, head_leaf, versions in rows:
        if leaf is None:
            head = (int(head_leaf), int(versions))
        else:
            consents.append((int(leaf), str(kind), str(body)))
    consents.sort()
    return consents, head


def head_upsert(insert: Any) -> Executable:
    """The head's upsert for one consent row (parameters ``subject``, ``leaf_index``,
    ``versions`` = 1): a leaf newer than the head moves it and counts one more version; a leaf
    replayed (at or below the head) changes nothing, so replaying is harmless."""
    statement = insert(CONSENT_HEAD)
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[CONSENT_HEAD.c.subject],
        set_={
            "leaf_index": statement.excluded.leaf_index,
            "versions": CONSENT_HEAD.c.versions + 1,
        },
        where=statement.excluded.leaf_index > CONSENT_HEAD.c.leaf_index,
    )
    return upsert


def rebuild_head(conn: Connection, subject: str) -> None:
    """Set ``subject``'s head from their rows, in ``conn``'s transaction: only for the service's
    own removal of rows (an erased child's guardian consents, which a replay would not project
    either), never to make a read pass."""
    conn.execute(delete(CONSENT_HEAD).where(CONSENT_HEAD.c.subject == subject))
    rows = select(func.max(CONSENT.c.leaf_index), func.count()).where(CONSENT.c.subject == subject)
    newest, versions = conn.execute(rows).one()
    if versions:
        conn.execute(
            insert(CONSENT_HEAD).values(subject=subject, leaf_index=newest, versions=versions)
        )


class ConsentHeads:
    """Holds each read of a subject's consent rows to the subject's head and to this process's
    memory of it; a shortfall is refused through ``integrity`` (logged, counted)."""

    def __init__(self, integrity: ProjectionVerifier) -> None:
        self._integrity = integrity
        self._seen: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def seen(self, subject: str) -> tuple[int, int] | None:
        """What this process knows of ``subject``'s head: taken before a read, so everything
        it names was committed before the read began."""
        return self._seen.get(subject)

    def noted(self, subject: str, leaf_index: int) -> None:
        """This process projected consent leaf ``leaf_index`` of ``subject`` (committed)."""
        with self._lock:
            known = self._seen.pop(subject, None)
            if known is None:
                self._remember(subject, (leaf_index, 0))
            else:
                newer = leaf_index > known[0]
                self._remember(
                    subject, (max(leaf_index, known[0]), known[1] + 1 if newer else known[1])
                )

    def forget(self, subject: str) -> None:
        """Forget ``subject`` (the service removed rows of theirs: ``rebuild_head``)."""
        with self._lock:
            self._seen.pop(subject, None)

    def check(
        self, subject: str, leaves: Sequence[int], head: Head, known: tuple[int, int] | None
    ) -> None:
        """Raise unless ``leaves`` (the subject's consent rows read, in log order, each already
        verified) are all that the head and this process (``known``, from ``seen`` before the
        read) know of."""
        newest = leaves[-1] if leaves else -1
        if head is None:
            if leaves:
                self._refuse(newest, "the subject's consent head is missing")
        else:
            head_leaf, versions = head
            if newest != head_leaf:
                self._refuse(
                    head_leaf, f"the head names leaf {head_leaf}, the newest row is {newest}"
                )
            if len(leaves) != versions:
                self._refuse(
                    head_leaf, f"the head counts {versions} versions, {len(leaves)} rows are left"
                )
        # Nothing left and no head is what erasing a child leaves (``rebuild_head``, maybe in
        # another worker), and it permits nothing: only a shortfall that leaves some consent
        # is held to memory.
        gone = head is None and not leaves
        if known is not None and not gone and (newest < known[0] or len(leaves) < known[1]):
            self._refuse(
                known[0],
                f"this process saw leaf {known[0]} and {known[1]} versions; the rows and head "
                f"now end at {newest} with {len(leaves)}",
            )
        if leaves and self._seen.get(subject) != (newest, len(leaves)):
            with self._lock:
                current = self._seen.pop(subject, (newest, len(leaves)))
                self._remember(subject, max(current, (newest, len(leaves))))

    def _remember(self, subject: str, value: tuple[int, int]) -> None:
        if len(self._seen) >= REMEMBERED_SUBJECTS:
            self._seen.pop(next(iter(self._seen)))
        self._seen[subject] = value

    def _refuse(self, leaf_index: int, why: str) -> None:
        self._integrity.refuse(
            Mismatch("consent_record", leaf_index, f"a consent row is missing: {why}")
        )
