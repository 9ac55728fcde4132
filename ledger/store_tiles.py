"""The reads C2SP tiles are cut from, as part of ``LedgerStore`` (the one owner of its
storage): a run of consecutive node hashes of one tree level, and the latest signed size.

No rows of their own: a tile at tile level ``L`` holds nodes of tree level ``8 * L``, an even
level, and the log already stores every even-level node (leaf hashes at level 0), each written
in the append that completed it. So tiles exist as soon as their nodes do.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from .engine import RawReader

_SIGNED_SIZE_SQL = "SELECT MAX(tree_size) FROM checkpoint"
_LEAF_HASHES_SQL = (
    "SELECT leaf_hash FROM leaf WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index"
)
_NODE_HASHES_SQL = (
    "SELECT hash FROM tree_node WHERE level = ? AND node_index >= ? AND node_index < ? "
    "ORDER BY node_index"
)


class TileRows:
    """Mixed into ``LedgerStore``, which provides ``raw_read``."""

    def raw_read(self) -> AbstractContextManager[RawReader]:
        raise NotImplementedError

    def signed_size(self) -> int | None:
        """The size of the newest signed checkpoint, or None before the first."""
        with self.raw_read() as reader:
            value = reader.rows(_SIGNED_SIZE_SQL, ())[0][0]
        return None if value is None else int(value)

    def node_run(self, level: int, first: int, count: int) -> tuple[int | None, list[bytes]]:
        """The newest signed size and the stored hashes of nodes ``(level, first + i)`` for
        ``i < count`` that exist (in order; fewer than ``count`` when some are not stored).

        The size is read first: rows below a signed size were committed before it, and rows
        are only ever added, so every node the size covers is in the run.
        """
        with self.raw_read() as reader:
            value = reader.rows(_SIGNED_SIZE_SQL, ())[0][0]
            if level == 0:
                rows = reader.rows(_LEAF_HASHES_SQL, (first, first + count))
            else:
                rows = reader.rows(_NODE_HASHES_SQL, (level, first, first + count))
        return None if value is None else int(value), [bytes(row[0]) for row in rows]
