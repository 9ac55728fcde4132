"""Storage models: the tables of the log. Only ``ledger.store`` reads and writes them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel


class LogHead(SQLModel, table=True):
    """One row: the size and root of the integrated tree. Writers lock it to sequence."""

    __tablename__ = "log_head"

    id: int = Field(default=1, primary_key=True)
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class Leaf(SQLModel, table=True):
    """A leaf: its dense index, its canonical event bytes and its RFC 9162 leaf hash."""

    __tablename__ = "leaf"
    __table_args__ = {"sqlite_with_rowid": False}

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    leaf_data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    appended_at: float = Field(nullable=False)


class TreeNode(SQLModel, table=True):
    """The hash of every perfect subtree of even level >= 2; with the leaf hashes (level 0)
    every node of any level is one read or one hash of two reads away, so any proof costs
    O(log n) reads while a third of the rows of storing every level are written."""

    __tablename__ = "tree_node"
    __table_args__ = {"sqlite_with_rowid": False}

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    node_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class CheckpointRow(SQLModel, table=True):
    """A signed checkpoint of the tree at one size, as signed-note text."""

    __tablename__ = "checkpoint"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: float = Field(nullable=False)


class LogMeta(SQLModel, table=True):
    """Facts fixed when the log was created: origin and public key."""

    __tablename__ = "log_meta"

    name: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class AnchorRow(SQLModel, table=True):
    """The anchoring of one checkpoint: prepared (tx signed and recorded before it is sent),
    then confirmed with its block. Recording before sending makes a restart resend, not redo."""

    __tablename__ = "anchor"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    state: str = Field(sa_column=Column(Text, nullable=False))
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    contract: str = Field(sa_column=Column(Text, nullable=False))
    nonce: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    tx_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    raw_tx: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    record: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    block_number: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    prepared_at: float = Field(nullable=False)
    confirmed_at: float | None = Field(default=None)


class CosignatureRow(SQLModel, table=True):
    """A witness's cosignature line on the checkpoint of one size (the newest per witness)."""

    __tablename__ = "cosignature"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness: str = Field(sa_column=Column(Text, primary_key=True))
    line: str = Field(sa_column=Column(Text, nullable=False))
    cosigned_at: int = Field(sa_column=Column(BigInteger, nullable=False))
