"""Group commit: many concurrent appends, one transaction per batch.

A service that logs every access decision cannot afford one transaction per request. Callers
hand their encoded event to the batcher and wait; a single writer thread takes whatever is
waiting (up to ``max_batch``), appends it in one transaction and answers each caller with its
leaf index. An answer still comes only after the commit, so an acknowledged event is durable.

An event may bring rows of its own (a projection of it, a record that exists only if it is
logged): they are written in the batch's transaction, knowing the event's leaf index, so they
commit with their leaf or not at all, and cost no transaction of their own. Should a batch fail
and some of its events bring rows, each event is retried alone, so that a row that cannot be
written fails its own event, not the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Connection, Executable

from .errors import LedgerError, StorageFullError, storage_full
from .events import EncodedEvent
from .log import Ledger
from .store import WithinAppend

EventRows = Callable[[int], Iterable[tuple[Executable, dict[str, Any]]]]
"""Given an event's leaf index, the rows to write with it: (statement, parameters) pairs."""


class BatcherClosedError(LedgerError):
    """The batcher was closed: the event was not appended."""


class GroupCommitter:
    """Serializes appends from many threads or tasks into batched transactions."""

    def __init__(self, ledger: Ledger, *, max_batch: int = 2000, linger: float = 0.001) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self.linger = linger
        # SimpleQueue: put and get in C, where queue.Queue takes a Python condition each time.
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._gate = threading.Lock()  # no submission can slip in behind the stop marker
        self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._thread.start()

    def submit(self, event: EncodedEvent, rows: EventRows | None = None) -> Future[int]:
        """Queue an event (and ``rows`` to write with it); the future resolves to its leaf index
        once it is committed."""
        future: Future[int] = Future()
        with self._gate:
            if self._closed.is_set():
                future.set_exception(BatcherClosedError("the log is shutting down"))
            else:
                self._queue.put((event, rows, future))
        return future

    def append(
        self,
        kind: str,
        data: dict[str, Any],
        timeout: float | None = 30.0,
        *,
        rows: EventRows | None = None,
    ) -> int:
        """Append and wait for the commit; the leaf index (TimeoutError if none by ``timeout``)."""
        waiter = _Waiter()
        event = self.ledger.encode(kind, data)
        with self._gate:
            if self._closed.is_set():
                raise BatcherClosedError("the log is shutting down")
            self._queue.put((event, rows, waiter))
        return waiter.result(timeout)

    async def append_async(
        self, kind: str, data: dict[str, Any], *, rows: EventRows | None = None
    ) -> int:
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[int] = loop.create_future()
        self.submit_settling(loop, committed, self.ledger.encode(kind, data), rows)
        return await committed

    def submit_settling(
        self,
        loop: asyncio.AbstractEventLoop,
        committed: asyncio.Future[int],
        event: EncodedEvent,
        rows: EventRows | None = None,
    ) -> None:
        """Queue an event from any thread; ``committed``, a future of ``loop``, resolves to its
        leaf index once it is committed.

        The committer settles all of a batch's futures of one loop in one call on that loop, so
        a batch wakes the loop once, not once per event (as ``asyncio.wrap_future`` would).
        """
        waiter = _LoopWaiter(loop, committed)
        with self._gate:
            if self._closed.is_set():
                waiter.set_exception(BatcherClosedError("the log is shutting down"))
                return
            self._queue.put((event, rows, waiter))

    def close(self) -> None:
        """Commit what is queued, then stop; later submissions fail with BatcherClosedError."""
        with self._gate:
            if self._closed.is_set():
                return
            self._closed.set()
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            # Linger briefly so that requests arriving together share one commit.
            try:
                while len(batch) < self.max_batch:
                    item = (
                        self._queue.get(timeout=self.linger)
                        if len(batch) == 1
                        else (self._queue.get_nowait())
                    )
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
            except queue.Empty:
                pass
            self._commit(batch)
        self._fail_leftovers()

    def _commit(self, batch: list[_Item]) -> None:
        events = [event for event, _, _ in batch]
        rows = [event_rows for _, event_rows, _ in batch]
        try:
            if any(event_rows is not None for event_rows in rows):
                indices = self.ledger.append_encoded(events, within=_row_writer(rows))
            else:
                indices = self.ledger.append_encoded(events)
        except BaseException as exc:  # every waiter must hear the outcome, whatever it is
            if storage_full(exc):
                # No row is to blame, and retrying each event alone on a full disk would keep
                # every caller waiting on a doomed write after another: all hear it at once.
                full = StorageFullError(f"the log's storage is full: {exc}")
                full.__cause__ = exc
                _settle_all([(waiter, None, full) for _, _, waiter in batch])
                return
            if isinstance(exc, Exception) and len(batch) > 1 and any(rows):
                for item in batch:  # the rows of one event may be what failed
                    self._commit([item])
                return
            _settle_all([(waiter, None, exc) for _, _, waiter in batch])
            return
        _settle_all(
            [(waiter, index, None) for (_, _, waiter), index in zip(batch, indices, strict=True)]
        )

    def _fail_leftovers(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[2].set_exception(BatcherClosedError("the log is shutting down"))


class _Waiter:
    """A thread waiting for one append: a lock it blocks on until the committer answers.

    What ``append`` waits with instead of a Future, whose condition variable costs several
    times more to wait on and to wake, once per decision.
    """

    __slots__ = ("_done", "_exception", "_index")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._index: int | None = None
        self._exception: BaseException | None = None

    def set_result(self, index: int) -> None:
        self._index = index
        self._done.release()

    def set_exception(self, exception: BaseException) -> None:
        self._exception = exception
        self._done.release()

    def result(self, timeout: float | None) -> int:
        if not self._done.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError("the append was not committed in time")
        if self._exception is not None:
            raise self._exception
        assert self._index is not None
        return self._index


class _LoopWaiter:
    """An event loop's future waiting for one append, settled on that loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[int]) -> None:
        self.loop = loop
        self.future = future

    def set_result(self, index: int) -> None:
        _settle_all([(self, index, None)])

    def set_exception(self, exception: BaseException) -> None:
        _settle_all([(self, None, exception)])


_Outcome = tuple["Future[int] | _Waiter | _LoopWaiter", int | None, BaseException | None]


def _settle_all(outcomes: list[_Outcome]) -> None:
    """Tell each waiter its leaf index or its error; an event loop's futures in one call."""
    on_loops: dict[
        asyncio.AbstractEventLoop,
        list[tuple[asyncio.Future[int], int | None, BaseException | None]],
    ] = {}
    for waiter, index, exception in outcomes:
        if isinstance(waiter, _LoopWaiter):
            on_loops.setdefault(waiter.loop, []).append((waiter.future, index, exception))
        elif exception is not None:
            waiter.set_exception(exception)
        else:
            assert index is not None
            waiter.set_result(index)
    for loop, settled in on_loops.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle_on_loop, settled)


def _settle_on_loop(
    settled: list[tuple[asyncio.Future[int], int | None, BaseException | None]],
) -> None:
    for future, index, exception in settled:
        if future.done():  # cancelled: its caller went away (the event is logged all the same)
            continue
        if exception is not None:
            future.set_exception(exception)
        else:
            assert index is not None
            future.set_result(index)


_Item = tuple[EncodedEvent, EventRows | None, "Future[int] | _Waiter | _LoopWaiter"]


def _row_writer(rows: Sequence[EventRows | None]) -> WithinAppend:
    """Write each event's rows, one executemany per statement for the whole batch."""

    def write(conn: Connection, indices: range) -> None:
        grouped: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
        for event_rows, leaf_index in zip(rows, indices, strict=True):
            if event_rows is None:
                continue
            for statement, parameters in event_rows(leaf_index):
                grouped.setdefault(id(statement), (statement, []))[1].append(parameters)
        for statement, parameter_list in grouped.values():
            conn.execute(statement, parameter_list)

    return write
