"""The ledger as its users see it: append events, read proofs, seal signed checkpoints."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hashing import (
    Checkpoint,
    CompactRange,
    NodeID,
    NoteSigner,
    NoteVerifier,
    ProofNodes,
    consistency_nodes,
    inclusion_nodes,
)

from .errors import ConfigurationError, KeyFileError, TreeSizeError
from .events import EncodedEvent, encode_event
from .keys import load_or_create_signer
from .settings import LedgerSettings
from .store import LedgerStore, StoredCheckpoint, StoredLeaf, WithinAppend


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: list[bytes]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    size1: int
    size2: int
    hashes: list[bytes]


class Ledger:
    """One append-only log of consent and access events."""

    def __init__(self, store: LedgerStore, signer: NoteSigner, settings: LedgerSettings) -> None:
        self.store = store
        self.signer = signer
        self.settings = settings
        self.origin = settings.origin

    @classmethod
    def open(cls, settings: LedgerSettings | None = None) -> Ledger:
        """Open (creating on first use) the log, its tables and its signing key."""
        settings = settings or LedgerSettings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = LedgerStore.open(settings.resolved_database_url())
        signer = load_or_create_signer(settings.key_path, settings.origin)
        origin = store.set_meta_once("origin", settings.origin)
        if origin != settings.origin:
            store.close()
            raise ConfigurationError(
                f"this database holds the log {origin!r}, not {settings.origin!r}"
            )
        vkey = store.set_meta_once("vkey", signer.verifier().to_vkey())
        if vkey != signer.verifier().to_vkey():
            store.close()
            raise KeyFileError(
                f"{settings.key_path} is not the key this log was created with ({vkey})"
            )
        return cls(store, signer, settings)

    def close(self) -> None:
        self.store.close()

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier()

    # -- writing ------------------------------------------------------------------------------

    def encode(
        self, kind: str, data: Mapping[str, Any], position: int | None = None
    ) -> EncodedEvent:
        return encode_event(kind, data, max_bytes=self.settings.max_event_bytes, position=position)

    def append(self, kind: str, data: Mapping[str, Any]) -> int:
        """Append one event; return its leaf index once it is committed."""
        return self.append_encoded([self.encode(kind, data)])[0]

    def append_many(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> range:
        """Append events atomically: all are checked first, and a bad one appends none."""
        encoded = [
            self.encode(kind, data, position) for position, (kind, data) in enumerate(events)
        ]
        return self.append_encoded(encoded)

    def append_encoded(
        self, events: Sequence[EncodedEvent], *, within: WithinAppend | None = None
    ) -> range:
        """Append encoded events; ``within`` writes rows of the caller's in the same transaction."""
        if not events:
            return range(0)
        first = self.store.append(events, time.time(), within)
        return range(first, first + len(events))

    # -- reading ------------------------------------------------------------------------------

    def tree_size(self) -> int:
        return self.store.tree_size()

    def root(self, tree_size: int | None = None) -> bytes:
        size, hashes = self.store.node_hashes(tree_size, CompactRange.frontier_ids)
        return CompactRange.from_frontier(size, hashes).root()

    def leaves(self, start: int, end: int) -> list[StoredLeaf]:
        return self.store.leaves(start, end)

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> InclusionProof:
        nodes: list[ProofNodes] = []

        def ids_for(size: int) -> list[NodeID]:
            if not 0 <= leaf_index < size:
                raise TreeSizeError(f"leaf index {leaf_index} is not in a tree of size {size}")
            nodes.append(inclusion_nodes(leaf_index, size))
            return [*nodes[0].ids, NodeID(0, leaf_index)]

        size, hashes = self.store.node_hashes(tree_size, ids_for)
        return InclusionProof(leaf_index, size, hashes[-1], nodes[0].rehash(hashes[:-1]))

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        nodes: list[ProofNodes] = []

        def ids_for(size: int) -> list[NodeID]:
            if not 1 <= size1 <= size:
                # As in RFC 9162 and transparency-dev: no proof from the empty tree.
                raise TreeSizeError(f"size1 {size1} must be between 1 and size2 {size}")
            if size1 == size:
                return []  # a tree is consistent with itself
            nodes.append(consistency_nodes(size1, size))
            return nodes[0].ids

        size, hashes = self.store.node_hashes(size2, ids_for)
        return ConsistencyProof(size1, size, nodes[0].rehash(hashes) if nodes else [])

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoint(self) -> StoredCheckpoint:
        """Seal the current tree into a signed checkpoint (the same one again if nothing is new)."""
        size, root = self.store.head()
        existing = self.store.checkpoint_at(size)
        if existing is not None:
            return existing
        note = self.signer.sign(Checkpoint(self.origin, size, root))
        sealed = StoredCheckpoint(tree_size=size, root_hash=root, note=note, created_at=time.time())
        self.store.save_checkpoint(sealed)
        return self.store.checkpoint_at(size) or sealed

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self.store.latest_checkpoint()
