"""A separate process that appends to a ledger and prints each index once it is acknowledged.

Run as ``python -m tests.ledger_worker URL DATA_DIR WORKER COUNT BATCH [CHECKPOINT_EVERY]``;
COUNT 0 appends until killed (the crash tests kill it with SIGKILL).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from ledger.log import Ledger
from ledger.settings import LedgerSettings


def main() -> None:
    url, data_dir, worker, count, batch = sys.argv[1:6]
    checkpoint_every = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    settings = LedgerSettings(data_dir=Path(data_dir), database_url=url, origin="test.example/log")
    ledger = Ledger.open(settings)
    total = int(count)
    size = int(batch)
    sequence = itertools.count() if total == 0 else iter(range(total))
    done = 0
    while True:
        numbers = list(itertools.islice(sequence, size))
        if not numbers:
            break
        events = [("access.decided", {"worker": worker, "n": n}) for n in numbers]
        indices = ledger.append_many(events)
        # Printed only after append_many returned, i.e. after the commit: an acknowledgement.
        sys.stdout.write(
            "".join(f"{worker} {n} {i}\n" for n, i in zip(numbers, indices, strict=True))
        )
        sys.stdout.flush()
        done += len(numbers)
        if checkpoint_every and done % checkpoint_every < size:
            ledger.checkpoint()
    ledger.close()


if __name__ == "__main__":
    main()
