"""Progress lines on stderr for long work, at most a few per second so logs stay readable."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self._started = time.monotonic()
        self._shown = self._started  # short work prints nothing until finish()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._shown >= 0.5:
            self._shown = now
            self._print(now)

    def finish(self) -> None:
        self._print(time.monotonic())

    def _print(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = 100.0 * self.done / self.total
            line = f"{self.label}: {self.done}/{self.total} ({share:.0f}%), {rate:,.0f}/s"
        else:
            line = f"{self.label}: {self.done}, {rate:,.0f}/s"
        print(line, file=self.stream, flush=True)
