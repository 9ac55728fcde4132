"""Group commit: concurrent callers share transactions and each hears its own leaf index."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy.exc
from sqlalchemy import Executable, text

from ledger.batcher import BatcherClosedError, EventRows, GroupCommitter
from ledger.events import decode_leaf
from ledger.log import Ledger
from ledger.settings import LedgerSettings


@pytest.fixture
def ledger(settings: LedgerSettings) -> Iterator[Ledger]:
    opened = Ledger.open(settings)
    yield opened
    opened.close()


def test_concurrent_callers_get_their_own_dense_indices(ledger: Ledger) -> None:
    batcher = GroupCommitter(ledger)
    answers: dict[tuple[int, int], int] = {}
    lock = threading.Lock()

    def caller(worker: int) -> None:
        for n in range(50):
            index = batcher.append("access.decided", {"worker": worker, "n": n})
            with lock:
                answers[(worker, n)] = index

    threads = [threading.Thread(target=caller, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    assert sorted(answers.values()) == list(range(400))
    for leaf in ledger.leaves(0, 400):
        _, data = decode_leaf(leaf.leaf_data)
        assert answers[(data["worker"], data["n"])] == leaf.leaf_index


def test_batches_are_shared_under_load(ledger: Ledger) -> None:
    batcher = GroupCommitter(ledger, linger=0.05)
    commits: list[int] = []
    original = ledger.append_encoded

    def counting(events):  # type: ignore[no-untyped-def]
        commits.append(len(events))
        return original(events)

    ledger.append_encoded = counting  # type: ignore[method-assign]
    futures = [batcher.submit(ledger.encode("access.decided", {"n": n})) for n in range(300)]
    assert sorted(f.result(10) for f in futures) == list(range(300))
    batcher.close()
    assert sum(commits) == 300
    assert len(commits) < 30  # far fewer transactions than events


def test_async_callers(ledger: Ledger) -> None:
    batcher = GroupCommitter(ledger)

    async def many() -> list[int]:
        return list(
            await asyncio.gather(
                *(batcher.append_async("access.decided", {"n": n}) for n in range(100))
            )
        )

    assert sorted(asyncio.run(many())) == list(range(100))
    batcher.close()


def test_a_failed_commit_reaches_every_waiter_and_appends_nothing(ledger: Ledger) -> None:
    batcher = GroupCommitter(ledger, linger=0.05)

    def failing(events):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    ledger.append_encoded = failing  # type: ignore[method-assign]
    futures = [batcher.submit(ledger.encode("access.decided", {"n": n})) for n in range(20)]
    for future in futures:
        with pytest.raises(OSError, match="disk full"):
            future.result(10)
    batcher.close()
    assert ledger.tree_size() == 0


def test_close_commits_what_is_queued_then_refuses(ledger: Ledger) -> None:
    batcher = GroupCommitter(ledger, linger=0.05)
    futures = [batcher.submit(ledger.encode("access.decided", {"n": n})) for n in range(50)]
    batcher.close()
    assert sorted(f.result(1) for f in futures) == list(range(50))
    late = batcher.submit(ledger.encode("access.decided", {"n": 99}))
    with pytest.raises(BatcherClosedError):
        late.result(1)
    assert ledger.tree_size() == 50


@pytest.fixture
def side_table(ledger: Ledger) -> Iterator[None]:
    """A table of the caller's own, written with the events (as the API's projection is)."""
    with ledger.store.write() as conn:
        conn.exec_driver_sql("CREATE TABLE side (leaf_index BIGINT PRIMARY KEY, note TEXT)")
    yield
    with ledger.store.write() as conn:
        conn.exec_driver_sql("DROP TABLE side")


SIDE = text("INSERT INTO side (leaf_index, note) VALUES (:leaf_index, :note)")


def side_rows(note: str, leaf_index: int | None = None) -> EventRows:
    """A side row for an event, at its leaf index (or at ``leaf_index``, to make it collide)."""

    def rows(index: int) -> list[tuple[Executable, dict[str, object]]]:
        chosen = index if leaf_index is None else leaf_index
        return [(SIDE, {"leaf_index": chosen, "note": note})]

    return rows


def side(ledger: Ledger) -> dict[int, str]:
    with ledger.store.read() as conn:
        rows = conn.exec_driver_sql("SELECT leaf_index, note FROM side").all()
    return {int(leaf_index): str(note) for leaf_index, note in rows}


@pytest.mark.usefixtures("side_table")
def test_rows_commit_with_their_events_and_know_their_leaf(ledger: Ledger) -> None:
    batcher = GroupCommitter(ledger, linger=0.05)
    futures = {
        n: batcher.submit(ledger.encode("access.decided", {"n": n}), side_rows(f"n={n}"))
        for n in range(40)
    }
    plain = batcher.submit(ledger.encode("access.decided", {"n": "no rows"}))
    indices = {n: future.result(10) for n, future in futures.items()}
    plain_index = plain.result(10)
    batcher.close()
    assert side(ledger) == {index: f"n={n}" for n, index in indices.items()}
    assert plain_index not in side(ledger)
    for leaf in ledger.leaves(0, ledger.tree_size()):
        _, data = decode_leaf(leaf.leaf_data)
        assert indices.get(data["n"], plain_index) == leaf.leaf_index


@pytest.mark.usefixtures("side_table")
def test_rows_that_cannot_be_written_fail_their_own_event_only(ledger: Ledger) -> None:
    with ledger.store.write() as conn:
        conn.exec_driver_sql("INSERT INTO side (leaf_index, note) VALUES (1000, 'taken')")
    batcher = GroupCommitter(ledger, linger=0.05)
    good = [
        batcher.submit(ledger.encode("access.decided", {"n": n}), side_rows(f"n={n}"))
        for n in range(20)
    ]
    bad = batcher.submit(
        ledger.encode("access.decided", {"n": "bad"}), side_rows("collides", leaf_index=1000)
    )
    assert sorted(future.result(10) for future in good) == list(range(20))
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        bad.result(10)
    batcher.close()
    # The refused event appended nothing: no leaf, no row, no gap in the indices.
    assert ledger.tree_size() == 20
    assert sorted(side(ledger)) == [*range(20), 1000]
    assert side(ledger)[1000] == "taken"
