"""Storage of anchor rows, beside ``ledger.store`` and on the same engine and locking rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from .models import AnchorRow
from .store import LedgerStore

_ANCHOR = AnchorRow.__table__  # type: ignore[attr-defined]

PREPARED = "prepared"
CONFIRMED = "confirmed"
SUPERSEDED = "superseded"  # passed on chain by a later anchor before this one could be sent


@dataclass(frozen=True, slots=True)
class StoredAnchor:
    tree_size: int
    state: str
    chain_id: int
    contract: str
    nonce: int | None
    tx_hash: bytes
    raw_tx: bytes | None
    record: str | None
    block_number: int | None
    prepared_at: float
    confirmed_at: float | None


def _anchor(row: Any) -> StoredAnchor:
    return StoredAnchor(
        tree_size=row.tree_size,
        state=row.state,
        chain_id=row.chain_id,
        contract=row.contract,
        nonce=row.nonce,
        tx_hash=bytes(row.tx_hash),
        raw_tx=None if row.raw_tx is None else bytes(row.raw_tx),
        record=row.record,
        block_number=row.block_number,
        prepared_at=row.prepared_at,
        confirmed_at=row.confirmed_at,
    )


class AnchorStore:
    """Anchor rows: at most one prepared at a time, confirmed ones in growing tree size."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store  # the anchor table is created with the log's own tables

    def prepared(self) -> StoredAnchor | None:
        query = select(_ANCHOR).where(_ANCHOR.c.state == PREPARED).order_by(_ANCHOR.c.tree_size)
        with self.store.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _anchor(row)

    def record_prepared(
        self,
        *,
        tree_size: int,
        chain_id: int,
        contract: str,
        nonce: int,
        tx_hash: bytes,
        raw_tx: bytes,
        now: float,
    ) -> None:
        with self.store.write() as conn:
            conn.execute(
                insert(_ANCHOR).values(
                    tree_size=tree_size,
                    state=PREPARED,
                    chain_id=chain_id,
                    contract=contract,
                    nonce=nonce,
                    tx_hash=tx_hash,
                    raw_tx=raw_tx,
                    prepared_at=now,
                )
            )

    def record_confirmed(
        self,
        tree_size: int,
        record: str,
        block_number: int,
        now: float,
        *,
        chain_id: int,
        contract: str,
        tx_hash: bytes,
    ) -> None:
        """Mark an anchoring confirmed; insert the row when the anchor was found on chain
        without a prepared row of ours (adopted after a restore or a lost journal)."""
        with self.store.write() as conn:
            updated = conn.execute(
                update(_ANCHOR)
                .where(_ANCHOR.c.tree_size == tree_size)
                .values(
                    state=CONFIRMED,
                    record=record,
                    block_number=block_number,
                    confirmed_at=now,
                    tx_hash=tx_hash,
                )
            )
            if updated.rowcount == 0:
                conn.execute(
                    insert(_ANCHOR).values(
                        tree_size=tree_size,
                        state=CONFIRMED,
                        chain_id=chain_id,
                        contract=contract,
                        tx_hash=tx_hash,
                        record=record,
                        block_number=block_number,
                        prepared_at=now,
                        confirmed_at=now,
                    )
                )

    def discard_prepared(self, tree_size: int) -> None:
        """Forget a prepared transaction that can never be mined (its nonce was used)."""
        with self.store.write() as conn:
            conn.execute(
                delete(_ANCHOR).where(_ANCHOR.c.tree_size == tree_size, _ANCHOR.c.state == PREPARED)
            )

    def record_superseded(self, tree_size: int, now: float) -> None:
        with self.store.write() as conn:
            conn.execute(
                insert(_ANCHOR).values(
                    tree_size=tree_size,
                    state=SUPERSEDED,
                    chain_id=0,
                    contract="",
                    tx_hash=bytes(32),
                    prepared_at=now,
                    confirmed_at=now,
                )
            )

    def latest_settled(self) -> int | None:
        """The largest tree size confirmed or superseded: the anchorer's queue starts after it."""
        query = select(func.max(_ANCHOR.c.tree_size)).where(
            _ANCHOR.c.state.in_((CONFIRMED, SUPERSEDED))
        )
        with self.store.read() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def latest_confirmed(self) -> StoredAnchor | None:
        query = (
            select(_ANCHOR)
            .where(_ANCHOR.c.state == CONFIRMED)
            .order_by(_ANCHOR.c.tree_size.desc())
            .limit(1)
        )
        with self.store.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _anchor(row)

    def confirmed(self, after_size: int = -1, limit: int = 1000) -> list[StoredAnchor]:
        query = (
            select(_ANCHOR)
            .where(_ANCHOR.c.state == CONFIRMED, _ANCHOR.c.tree_size > after_size)
            .order_by(_ANCHOR.c.tree_size)
            .limit(limit)
        )
        with self.store.read() as conn:
            return [_anchor(row) for row in conn.execute(query)]

    def confirmed_descending(
        self, before_size: int | None = None, limit: int = 100
    ) -> list[StoredAnchor]:
        """Confirmed anchors below ``before_size`` (None: all), newest first."""
        query = select(_ANCHOR).where(_ANCHOR.c.state == CONFIRMED)
        if before_size is not None:
            query = query.where(_ANCHOR.c.tree_size < before_size)
        query = query.order_by(_ANCHOR.c.tree_size.desc()).limit(limit)
        with self.store.read() as conn:
            return [_anchor(row) for row in conn.execute(query)]

    def forget_above(self, tree_size: int) -> None:
        """Forget confirmed and superseded anchors above ``tree_size`` (the chain lost them):
        their checkpoints queue again."""
        with self.store.write() as conn:
            conn.execute(
                delete(_ANCHOR).where(
                    _ANCHOR.c.tree_size > tree_size,
                    _ANCHOR.c.state.in_((CONFIRMED, SUPERSEDED)),
                )
            )

    def covering(self, leaf_index: int) -> StoredAnchor | None:
        """The first confirmed anchor whose tree holds ``leaf_index``."""
        query = (
            select(_ANCHOR)
            .where(_ANCHOR.c.state == CONFIRMED, _ANCHOR.c.tree_size > leaf_index)
            .order_by(_ANCHOR.c.tree_size)
            .limit(1)
        )
        with self.store.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _anchor(row)
