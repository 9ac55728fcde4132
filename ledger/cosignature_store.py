"""Storage of witness cosignatures, beside ``ledger.store`` and on the same engine.

Only cosignatures the witnessing verified under the witness's key are stored, keyed by tree
size and the witness's policy name; a newer cosignature of the same checkpoint replaces the
older one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select

from .models import CosignatureRow
from .store import LedgerStore

_COSIGNATURE = CosignatureRow.__table__  # type: ignore[attr-defined]


class CosignatureStore:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        store.create_schema(extra_tables=[_COSIGNATURE])

    def record(self, tree_size: int, cosignatures: Sequence[tuple[str, str, int]]) -> None:
        """Keep (witness, line, cosigned_at) for the checkpoint of ``tree_size``, in one commit."""
        if not cosignatures:
            return
        with self.store.write() as conn:
            for witness, line, cosigned_at in cosignatures:
                conn.execute(
                    delete(_COSIGNATURE).where(
                        (_COSIGNATURE.c.tree_size == tree_size)
                        & (_COSIGNATURE.c.witness == witness)
                    )
                )
                conn.execute(
                    insert(_COSIGNATURE).values(
                        tree_size=tree_size, witness=witness, line=line, cosigned_at=cosigned_at
                    )
                )

    def lines(self, tree_size: int) -> dict[str, str]:
        """Witness name to cosignature line, for the checkpoint of ``tree_size``."""
        query = select(_COSIGNATURE.c.witness, _COSIGNATURE.c.line).where(
            _COSIGNATURE.c.tree_size == tree_size
        )
        with self.store.read() as conn:
            return {row.witness: row.line for row in conn.execute(query)}

    def recent(self, limit: int = 64) -> dict[int, set[str]]:
        """The witnesses of each of the ``limit`` largest cosigned sizes."""
        sizes = (
            select(_COSIGNATURE.c.tree_size)
            .group_by(_COSIGNATURE.c.tree_size)
            .order_by(_COSIGNATURE.c.tree_size.desc())
            .limit(limit)
            .subquery()
        )
        query = select(_COSIGNATURE.c.tree_size, _COSIGNATURE.c.witness).where(
            _COSIGNATURE.c.tree_size.in_(select(sizes.c.tree_size))
        )
        found: dict[int, set[str]] = {}
        with self.store.read() as conn:
            for row in conn.execute(query):
                found.setdefault(row.tree_size, set()).add(row.witness)
        return found

    def latest_size(self, witness: str) -> int | None:
        """The largest size ``witness`` cosigned for this log, as far as we stored."""
        query = select(func.max(_COSIGNATURE.c.tree_size)).where(_COSIGNATURE.c.witness == witness)
        with self.store.read() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)
