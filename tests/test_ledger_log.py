"""The durable log through its public face, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from hashing import (
    NoteSigner,
    NoteVerifier,
    consistency_proof,
    inclusion_proof,
    merkle_root,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from ledger.errors import ConfigurationError, InvalidEventError, KeyFileError, TreeSizeError
from ledger.log import Ledger
from ledger.models import TreeNode
from ledger.settings import LedgerSettings


def consent(n: int) -> tuple[str, dict[str, object]]:
    return "consent.granted", {"consent_id": f"c-{n}", "subject": f"s-{n % 7}", "n": n}


@pytest.fixture
def ledger(settings: LedgerSettings) -> Iterator[Ledger]:
    opened = Ledger.open(settings)
    yield opened
    opened.close()


def test_indices_are_dense_and_root_matches_the_leaves(ledger: Ledger) -> None:
    assert ledger.append(*consent(0)) == 0
    batch = ledger.append_many(consent(n) for n in range(1, 40))
    assert list(batch) == list(range(1, 40))
    assert ledger.append(*consent(40)) == 40
    leaves = ledger.leaves(0, 100)
    assert [leaf.leaf_index for leaf in leaves] == list(range(41))
    assert ledger.root() == merkle_root([leaf.leaf_hash for leaf in leaves])


def test_every_proof_matches_the_in_memory_tree(ledger: Ledger) -> None:
    for n in range(37):
        ledger.append(*consent(n))
    hashes = [leaf.leaf_hash for leaf in ledger.leaves(0, 37)]
    for size in range(1, 38):
        root = ledger.root(size)
        assert root == merkle_root(hashes[:size])
        for index in range(size):
            proof = ledger.inclusion_proof(index, size)
            assert proof.hashes == inclusion_proof(hashes, index, size)
            verify_inclusion(hashes[index], index, size, proof.hashes, root)
        with pytest.raises(TreeSizeError):
            ledger.consistency_proof(0, size)
        for size1 in range(1, size + 1):
            proof_c = ledger.consistency_proof(size1, size)
            assert proof_c.hashes == consistency_proof(hashes, size1, size)
            verify_consistency(size1, size, proof_c.hashes, ledger.root(size1), root)


def test_every_perfect_subtree_of_even_level_is_stored(ledger: Ledger) -> None:
    for chunk in range(5):
        ledger.append_many(consent(n) for n in range(chunk * 61, chunk * 61 + 61))
    size = ledger.tree_size()
    with ledger.store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(TreeNode)).scalar_one()
    # Perfect subtrees of even level >= 2 in a tree of n leaves: the sum of n >> level.
    assert stored == sum(size >> level for level in range(2, 64, 2))


def test_a_proof_costs_a_constant_number_of_queries(ledger: Ledger) -> None:
    ledger.append_many(consent(n) for n in range(3000))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(ledger.store.engine, "before_cursor_execute", count)
    try:
        for index in (0, 1234, 2999):
            statements.clear()
            ledger.inclusion_proof(index, 3000)
            reads_small = len(statements)
            statements.clear()
            ledger.consistency_proof(index + 1, 3000)
            assert reads_small <= 4
            assert len(statements) <= 4
    finally:
        event.remove(ledger.store.engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("consent.exploded", {}, "unknown event kind"),
        ("consent.granted", ["not", "an", "object"], "JSON object"),
        ("consent.granted", {"x": float("nan")}, "canonical"),
        ("consent.granted", {"blob": "x" * 20_000}, "limit"),
        (None, {}, "unknown event kind"),
    ],
)
def test_bad_events_are_refused_and_change_nothing(
    ledger: Ledger, kind: object, data: object, message: str
) -> None:
    ledger.append(*consent(0))
    before = (ledger.tree_size(), ledger.root())
    with pytest.raises(InvalidEventError, match=message):
        ledger.append(kind, data)  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match="event 2"):
        ledger.append_many([consent(1), consent(2), (kind, data)])  # type: ignore[list-item]
    assert (ledger.tree_size(), ledger.root()) == before


def test_checkpoints_are_signed_and_verify_offline(ledger: Ledger) -> None:
    ledger.append_many(consent(n) for n in range(10))
    first = ledger.checkpoint()
    assert ledger.checkpoint() == first  # nothing new: the same checkpoint
    ledger.append_many(consent(n) for n in range(10, 25))
    second = ledger.checkpoint()
    verifier = NoteVerifier.from_vkey(ledger.verifier.to_vkey())
    old = open_checkpoint(first.note, verifier)
    new = open_checkpoint(second.note, verifier)
    assert (old.tree_size, new.tree_size) == (10, 25)
    assert new.origin == "test.example/log"
    proof = ledger.consistency_proof(10, 25)
    verify_consistency(10, 25, proof.hashes, old.root_hash, new.root_hash)
    assert [c.tree_size for c in ledger.store.checkpoints()] == [0, 10, 25]  # 0: at creation


def test_out_of_range_proofs_are_typed_errors(ledger: Ledger) -> None:
    ledger.append_many(consent(n) for n in range(5))
    with pytest.raises(TreeSizeError):
        ledger.inclusion_proof(5, 5)
    with pytest.raises(TreeSizeError):
        ledger.inclusion_proof(0, 6)
    with pytest.raises(TreeSizeError):
        ledger.consistency_proof(4, 9)
    with pytest.raises(TreeSizeError):
        ledger.root(6)


def test_key_file_is_private_and_kept(settings: LedgerSettings) -> None:
    first = Ledger.open(settings)
    vkey = first.verifier.to_vkey()
    first.close()
    mode = settings.key_path.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    again = Ledger.open(settings)
    assert again.verifier.to_vkey() == vkey
    again.close()
    settings.key_path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        Ledger.open(settings)


def test_a_different_key_or_origin_is_refused(settings: LedgerSettings) -> None:
    Ledger.open(settings).close()
    settings.key_path.write_text(NoteSigner.generate(settings.origin).to_skey() + "\n")
    with pytest.raises(KeyFileError, match="not the key"):
        Ledger.open(settings)
    other = settings.model_copy(
        update={"origin": "other.example/log", "data_dir": settings.data_dir / "other"}
    )
    with pytest.raises(ConfigurationError, match="holds the log"):
        Ledger.open(other)


def test_proof_reads_search_by_key_never_scan(tmp_path: Path) -> None:
    """Every read of a proof is a primary-key search (a scan would grow with the log)."""
    ledger = Ledger.open(
        LedgerSettings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'plan.db'}")
    )
    ledger.append_many(consent(n) for n in range(5000))
    captured: list[tuple[str, object]] = []

    def capture(*args: object) -> None:
        captured.append((str(args[2]), args[3]))

    event.listen(ledger.store.engine, "before_cursor_execute", capture)
    ledger.inclusion_proof(1234, 5000)
    ledger.consistency_proof(777, 4999)
    ledger.root(3333)
    event.remove(ledger.store.engine, "before_cursor_execute", capture)
    raw = sqlite3.connect(tmp_path / "plan.db")
    plans = [
        raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()  # type: ignore[arg-type]
        for sql, params in captured
        if sql.lstrip().upper().startswith("SELECT")
    ]
    raw.close()
    ledger.close()
    details = [row[3] for plan in plans for row in plan]
    assert any("tree_node" in d for d in details)
    # The one-row head table is the only thing read whole.
    assert not [d for d in details if d.startswith("SCAN") and "log_head" not in d], details
