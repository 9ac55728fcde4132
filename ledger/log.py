"""The ledger as its users see it: append events, read proofs, seal signed checkpoints.

Nothing stored is taken on trust: opening checks the database against the log's own witness
(``ledger.witness``) and its leaf rows against its head, and every proof handed out is first
checked against a root that does not come from the nodes it is built from (the head's root,
or a signed checkpoint's). Damage found raises IntegrityError, never a proof that fails later.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hashing import (
    Checkpoint,
    CompactRange,
    HashingError,
    NodeID,
    NoteSigner,
    NoteVerifier,
    ProofNodes,
    VerificationError,
    consistency_nodes,
    inclusion_nodes,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)

from .errors import ConfigurationError, IntegrityError, KeyFileError, RollbackError, TreeSizeError
from .events import EncodedEvent, encode_event
from .keys import load_or_create_signer
from .origin import FORMAT_META, LOG_FORMAT, ORIGIN_META, format_problem, pin_origin
from .settings import LedgerSettings
from .store import LedgerStore, StoredCheckpoint, StoredLeaf, WithinAppend
from .store_checks import ProofRead
from .witness import Witness, check_consistent, rollback_message

_DAMAGED = "the log's storage is damaged (run: consent-ledger fsck)"
_TRUSTED_ROOTS_KEPT = 4096


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
        if settings.origin is None:
            raise ConfigurationError("a ledger is opened under its pinned origin (Ledger.open)")
        self.origin: str = settings.origin
        self.log_format: str | None = LOG_FORMAT
        self.witness = Witness(settings.data_dir, signer.verifier(), settings.origin)
        self._trusted_roots: dict[tuple[int, str], bytes] = {}

    @classmethod
    def open(cls, settings: LedgerSettings | None = None) -> Ledger:
        """Open (creating on first use) the log, its tables and its signing key.

        Refuses (RollbackError, IntegrityError) a database behind or forked from the newest
        checkpoint this log signed, or whose leaf rows do not reach its head, and
        (ConfigurationError) one from before format 2 (``consent-ledger migrate``). A new log
        is named (``ledger.origin``) and signs its size-0 checkpoint.
        """
        ledger = cls.open_unchecked(settings)
        try:
            if ledger.log_format != LOG_FORMAT:
                raise ConfigurationError(format_problem(ledger.log_format, ledger.origin))
            ledger.check_storage()
            if ledger.store.latest_checkpoint() is None and ledger.tree_size() == 0:
                # A new log signs its empty tree at once: readers, witnesses and tile clients
                # have a checkpoint from the start, not a 404 until the first seal.
                ledger.checkpoint()
        except BaseException:
            ledger.close()
            raise
        return ledger

    @classmethod
    def open_unchecked(cls, settings: LedgerSettings | None = None) -> Ledger:
        """Open the log without checking its database against the witness: for ``fsck``,
        which reports what is wrong, and ``recover``, which accepts it."""
        settings = settings or LedgerSettings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = LedgerStore.open(settings.resolved_database_url())
        try:
            pinned = store.get_meta(ORIGIN_META)
            origin = pin_origin(pinned, settings.origin, settings.key_path)
            if pinned is None:
                # The format before the origin: a database with an origin and no format is
                # one from before format 2, never a new one caught half-way.
                store.set_meta_once(FORMAT_META, LOG_FORMAT)
                origin = store.set_meta_once(ORIGIN_META, origin)  # another first start's
                origin = pin_origin(origin, settings.origin, settings.key_path)
            settings = settings.model_copy(update={"origin": origin})
            log_format = store.get_meta(FORMAT_META)
            known = store.get_meta("vkey")
            if known is not None and not settings.key_path.exists():
                # Checked before a key is made: a new key would only be refused below.
                raise KeyFileError(
                    f"the signing key {settings.key_path} is missing; this log's checkpoints "
                    f"are signed by {known}: restore the key file from the data dir's backup"
                )
            signer = load_or_create_signer(settings.key_path, origin)
            vkey = store.set_meta_once("vkey", signer.verifier().to_vkey())
            if vkey != signer.verifier().to_vkey():
                raise KeyFileError(
                    f"{settings.key_path} is not the key this log was created with ({vkey})"
                )
        except BaseException:
            store.close()
            raise
        ledger = cls(store, signer, settings)
        ledger.log_format = log_format
        return ledger

    def check_storage(self) -> None:
        """Refuse a database that went back in time or lost rows; arm the append guard.

        Cheap enough for every start: a few index lookups and node reads, no scan (``fsck``
        scans).
        """
        # The witness and the newest checkpoint first, the head after: the head only grows, so
        # a writer in another process appending (and signing) meanwhile cannot look like a
        # rollback. The head and the end of the leaf rows come from one statement (one snapshot).
        witnessed = self.witness.read()
        latest = self.store.latest_checkpoint()
        size, head_root, end = self.store.head_and_leaf_end()
        if end != size:
            raise IntegrityError(
                f"the log's head says {size} leaves but the leaf rows end at {end}: "
                f"{_DAMAGED}, or restore a backup"
            )
        if size and self.root(size) != head_root:
            raise IntegrityError(f"the stored tree's nodes do not give the head's root: {_DAMAGED}")
        if witnessed is not None:
            if size < witnessed.tree_size:
                raise RollbackError(rollback_message(self.witness.path, witnessed.tree_size, size))
            if witnessed.tree_size and self.root(witnessed.tree_size) != witnessed.root_hash:
                raise RollbackError(
                    f"the database's tree of size {witnessed.tree_size} is not the one this log "
                    f"signed ({self.witness.path}): it was forked (an old backup appended to) "
                    "or edited; restore a backup from before the fork"
                )
        if latest is not None and (witnessed is None or latest.tree_size > witnessed.tree_size):
            # The first start with a witness, or one lost: the database's own newest checkpoint
            # (signed by this key, and consistent with the witness) becomes the witness.
            if latest.tree_size > size:
                raise RollbackError(rollback_message(self.witness.path, latest.tree_size, size))
            witnessed = self._advance_witness(latest.note)
        self.store.min_tree_size = 0 if witnessed is None else witnessed.tree_size

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
        """The proof, checked against a trusted root before it is returned (IntegrityError if
        it does not verify: a stored node or the leaf's bytes are damaged)."""
        nodes: list[ProofNodes] = []

        def ids_for(size: int) -> list[NodeID]:
            if not 0 <= leaf_index < size:
                raise TreeSizeError(f"leaf index {leaf_index} is not in a tree of size {size}")
            nodes.append(inclusion_nodes(leaf_index, size))
            return nodes[0].ids

        read = self.store.proof_read(tree_size, ids_for, leaf_index=leaf_index)
        assert read.leaf is not None
        proof = InclusionProof(
            leaf_index, read.tree_size, read.leaf[1], nodes[0].rehash(read.hashes)
        )
        self._vouch_for_inclusion(proof, read.leaf[0], read)
        return proof

    def _vouch_for_inclusion(self, proof: InclusionProof, data: bytes, read: ProofRead) -> None:
        index, size = proof.leaf_index, proof.tree_size
        if leaf_hash(data) != proof.leaf_hash:
            raise IntegrityError(f"leaf {index}'s bytes do not hash to its leaf hash: {_DAMAGED}")
        root = self._trusted_root(read, size)
        try:
            verify_inclusion(proof.leaf_hash, index, size, proof.hashes, root)
        except (HashingError, VerificationError) as exc:
            raise IntegrityError(
                f"the stored proof of leaf {index} in the tree of size {size} does not verify "
                f"against the log's signed root: {_DAMAGED}"
            ) from exc

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        """The proof, checked against trusted roots of both sizes before it is returned."""
        proof, read = self._consistency(size1, size2)
        self._vouch_for_consistency(proof, read)
        return proof

    def _vouch_for_consistency(self, proof: ConsistencyProof, read: ProofRead) -> None:
        size1 = proof.size1
        if proof.hashes:
            try:
                verify_consistency(
                    size1,
                    proof.size2,
                    proof.hashes,
                    self._trusted_root(read, size1),
                    self._trusted_root(read, proof.size2),
                )
            except (HashingError, VerificationError) as exc:
                raise IntegrityError(
                    f"the stored consistency proof from {size1} to {proof.size2} does not verify "
                    f"against the log's signed roots: {_DAMAGED}"
                ) from exc

    def _consistency(self, size1: int, size2: int | None) -> tuple[ConsistencyProof, ProofRead]:
        nodes: list[ProofNodes] = []

        def ids_for(size: int) -> list[NodeID]:
            if not 1 <= size1 <= size:
                # As in RFC 9162 and transparency-dev: no proof from the empty tree.
                raise TreeSizeError(f"size1 {size1} must be between 1 and size2 {size}")
            if size1 == size:
                return []  # a tree is consistent with itself
            nodes.append(consistency_nodes(size1, size))
            return nodes[0].ids

        read = self.store.proof_read(size2, ids_for, root_also_at=size1)
        hashes = nodes[0].rehash(read.hashes) if nodes else []
        return ConsistencyProof(size1, read.tree_size, hashes), read

    def _trusted_root(self, read: ProofRead, tree_size: int) -> bytes:
        """The root at ``tree_size`` from what vouches for it, not from a proof's nodes: the
        head's root (the appender wrote it from its own compact range), a signed checkpoint's,
        or, for a size with neither, the stored frontier's (the best there is)."""
        if tree_size == read.head_size:
            return read.head_root
        note = read.notes.get(tree_size)
        if note is not None:
            return self.signed_root(tree_size, note)
        return CompactRange.from_frontier(tree_size, read.frontiers[tree_size]).root()

    def signed_root(self, tree_size: int, note: str) -> bytes:
        """The root a stored checkpoint ``note`` of ``tree_size`` vouches for, once its signature
        under this log's key is checked (IntegrityError if it is not)."""
        key = (tree_size, note)
        root = self._trusted_roots.get(key)
        if root is None:
            try:
                checkpoint = open_checkpoint(note, self.verifier, self.origin)
            except (HashingError, VerificationError) as exc:
                raise IntegrityError(
                    f"the stored checkpoint of size {tree_size} is not signed by this log's "
                    f"key: {_DAMAGED}"
                ) from exc
            if checkpoint.tree_size != tree_size:
                raise IntegrityError(
                    f"the stored checkpoint of size {tree_size} is not: {_DAMAGED}"
                )
            if len(self._trusted_roots) >= _TRUSTED_ROOTS_KEPT:
                self._trusted_roots.clear()
            root = self._trusted_roots[key] = checkpoint.root_hash
        return root

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoint(self) -> StoredCheckpoint:
        """Seal the current tree into a signed checkpoint (the same one again if nothing is new).

        The tree must extend the newest one this log signed before (RollbackError if not): a
        forked database gets no signature. The new checkpoint becomes the witness.
        """
        size, root = self.store.head()
        existing = self.store.checkpoint_at(size)
        if existing is not None:
            self._advance_witness(existing.note)
            return existing
        candidate = Checkpoint(self.origin, size, root)
        witnessed = self.witness.read()
        if witnessed is not None:
            check_consistent(witnessed, candidate, self._raw_consistency, self.witness.path)
        note = self.signer.sign(candidate)
        sealed = StoredCheckpoint(tree_size=size, root_hash=root, note=note, created_at=time.time())
        self.store.save_checkpoint(sealed)
        kept = self.store.checkpoint_at(size) or sealed
        self._advance_witness(kept.note)
        return kept

    def _advance_witness(self, note: str) -> Checkpoint:
        witnessed = self.witness.advance(note, self._raw_consistency)
        self.store.min_tree_size = max(self.store.min_tree_size, witnessed.tree_size)
        return witnessed

    def _raw_consistency(self, size1: int, size2: int) -> list[bytes]:
        # Checked by the caller against the two signed roots it holds.
        return self._consistency(size1, size2)[0].hashes

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self.store.latest_checkpoint()

    def signed_size(self, leaf_index: int | None = None) -> int:
        """The size of the newest signed checkpoint: what a proof is for when no size is asked
        for, so that it verifies against a checkpoint one can fetch. TreeSizeError if there is
        none, or if it does not hold ``leaf_index`` yet."""
        size = self.store.signed_size()
        if size is None:
            raise TreeSizeError("the log has no signed checkpoint yet")
        if leaf_index is not None and leaf_index >= size:
            raise TreeSizeError(
                f"leaf index {leaf_index} is not in a signed checkpoint yet (the newest is of "
                f"size {size}); ask again after the next seal, or name a tree size"
            )
        return size
