"""The reads the log's self-checks make, as part of ``LedgerStore`` (the one owner of its
storage): a proof with what vouches for its root, the head with the end of the leaf rows, and
the node listings ``fsck`` scrubs against."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from hashing import CompactRange, NodeID

from .errors import TreeSizeError
from .models import CheckpointRow, Leaf, LogHead, TreeNode

_LEAF = Leaf.__table__  # type: ignore[attr-defined]
_NODE = TreeNode.__table__  # type: ignore[attr-defined]
_HEAD = LogHead.__table__  # type: ignore[attr-defined]
_CHECKPOINT = CheckpointRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ProofRead:
    """What a proof is built and checked from, read in one transaction: the resolved size, the
    node hashes asked for, the head, the notes of checkpoints sealed at the sizes asked about,
    and, for an inclusion proof, the leaf's stored bytes and hash."""

    tree_size: int
    hashes: list[bytes]
    head_size: int
    head_root: bytes
    notes: dict[int, str]
    leaf: tuple[bytes, bytes] | None
    # The stored frontier at each size asked about that neither the head nor a note vouches for.
    frontiers: dict[int, list[bytes]]


class StorageChecks:
    """Mixed into ``LedgerStore``, which provides ``read`` and ``_node_hashes``."""

    def read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _node_hashes(
        self, conn: Connection, ids: Sequence[NodeID], leaf_data: dict[int, bytes] | None = None
    ) -> list[bytes]:
        raise NotImplementedError

    def proof_read(
        self,
        tree_size: int | None,
        ids_for: Callable[[int], Sequence[NodeID]],
        *,
        leaf_index: int | None = None,
        root_also_at: int | None = None,
    ) -> ProofRead:
        """``node_hashes``, plus what vouches for the roots at the resolved size (and at
        ``root_also_at``): the head's root, a checkpoint's note, or else the stored frontier;
        and, with ``leaf_index``, that leaf's row. One read transaction, a constant number of
        statements."""
        # The notes ride on the head's statement, one scalar subquery per size asked about; in
        # plain driver SQL, as the node reads are (building the expression costs more than
        # SQLite takes to answer it).
        asked = sorted({n for n in (tree_size, root_also_at) if n is not None})
        with self.read() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            notes_sql = "".join(
                f", (SELECT note FROM checkpoint WHERE tree_size = {mark})"  # noqa: S608
                for _ in asked
            )
            sql = f"SELECT tree_size, root_hash{notes_sql} FROM log_head WHERE id = 1"  # noqa: S608
            head = conn.exec_driver_sql(sql, tuple(asked)).one()
            current = int(head[0])
            size = current if tree_size is None else tree_size
            if not 0 <= size <= current:
                raise TreeSizeError(f"tree size {size} is not between 0 and the log's {current}")
            notes = {n: str(note) for n, note in zip(asked, head[2:], strict=True) if note}
            ids = list(ids_for(size))
            count = len(ids)
            unvouched = [
                n
                for n in sorted({size, *([] if root_also_at is None else [root_also_at])})
                if 0 < n != current and n not in notes
            ]
            spans = []
            for n in unvouched:
                frontier = CompactRange.frontier_ids(n)
                spans.append((n, len(ids), len(ids) + len(frontier)))
                ids.extend(frontier)
            data: dict[int, bytes] | None = None
            if leaf_index is not None:
                data = {}
                ids.append(NodeID(0, leaf_index))
            hashes = self._node_hashes(conn, ids, data)
            frontiers = {n: hashes[a:b] for n, a, b in spans}
            leaf = None
            if data is not None and leaf_index is not None:
                leaf = (data[leaf_index], hashes[-1])
            return ProofRead(size, hashes[:count], current, bytes(head[1]), notes, leaf, frontiers)

    def leaf_extent(self) -> tuple[int, int]:
        """The number of stored leaves and the largest stored leaf index plus one: both equal
        the head's tree size unless leaf rows went missing."""
        with self.read() as conn:
            row = conn.execute(
                select(func.count(), func.max(_LEAF.c.leaf_index)).select_from(_LEAF)
            ).one()
        return int(row[0]), 0 if row[1] is None else int(row[1]) + 1

    def head_and_leaf_end(self) -> tuple[int, bytes, int]:
        """The head's size and root, and the largest stored leaf index plus one, from one
        statement (one snapshot on both databases; an index lookup, no scan)."""
        end = select(func.max(_LEAF.c.leaf_index)).scalar_subquery()
        with self.read() as conn:
            row = conn.execute(select(_HEAD.c.tree_size, _HEAD.c.root_hash, end)).one()
        return int(row[0]), bytes(row[1]), 0 if row[2] is None else int(row[2]) + 1

    def nodes_at_level(self, level: int, first: int, last: int) -> dict[int, bytes]:
        """Stored nodes of ``level`` with ``first <= node_index <= last`` (for scrubbing)."""
        query = select(_NODE.c.node_index, _NODE.c.hash).where(
            _NODE.c.level == level, _NODE.c.node_index >= first, _NODE.c.node_index <= last
        )
        with self.read() as conn:
            return {int(row.node_index): bytes(row.hash) for row in conn.execute(query)}

    def node_levels(self) -> dict[int, tuple[int, int]]:
        """Per stored level: the number of nodes and the largest node index plus one."""
        query = select(_NODE.c.level, func.count(), func.max(_NODE.c.node_index)).group_by(
            _NODE.c.level
        )
        with self.read() as conn:
            return {int(r[0]): (int(r[1]), int(r[2]) + 1) for r in conn.execute(query)}
