"""Group commit: many concurrent appends, one transaction per batch.

A service that logs every access decision cannot afford one transaction per request. Callers
hand their encoded event to the batcher and wait; a single writer thread takes whatever is
waiting (up to ``max_batch``), appends it in one transaction and answers each caller with its
leaf index. An answer still comes only after the commit, so an acknowledged event is durable.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from typing import Any

from .errors import LedgerError
from .events import EncodedEvent
from .log import Ledger


class BatcherClosedError(LedgerError):
    """The batcher was closed: the event was not appended."""


class GroupCommitter:
    """Serializes appends from many threads or tasks into batched transactions."""

    def __init__(self, ledger: Ledger, *, max_batch: int = 2000, linger: float = 0.001) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self.linger = linger
        self._queue: queue.Queue[tuple[EncodedEvent, Future[int]] | None] = queue.Queue()
        self._closed = threading.Event()
        self._gate = threading.Lock()  # no submission can slip in behind the stop marker
        self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._thread.start()

    def submit(self, event: EncodedEvent) -> Future[int]:
        """Queue an event; the future resolves to its leaf index once it is committed."""
        future: Future[int] = Future()
        with self._gate:
            if self._closed.is_set():
                future.set_exception(BatcherClosedError("the log is shutting down"))
            else:
                self._queue.put((event, future))
        return future

    def append(self, kind: str, data: dict[str, Any], timeout: float | None = 30.0) -> int:
        return self.submit(self.ledger.encode(kind, data)).result(timeout)

    async def append_async(self, kind: str, data: dict[str, Any]) -> int:
        return await asyncio.wrap_future(self.submit(self.ledger.encode(kind, data)))

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

    def _commit(self, batch: list[tuple[EncodedEvent, Future[int]]]) -> None:
        try:
            indices = self.ledger.append_encoded([event for event, _ in batch])
        except BaseException as exc:  # every waiter must hear the outcome, whatever it is
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), index in zip(batch, indices, strict=True):
            future.set_result(index)

    def _fail_leftovers(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(BatcherClosedError("the log is shutting down"))
