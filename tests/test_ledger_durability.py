"""Dense indices under concurrent writers, and no acknowledged event lost to kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from hashing import merkle_root, open_checkpoint, verify_consistency
from ledger.events import decode_leaf
from ledger.log import Ledger
from ledger.settings import LedgerSettings
from tests.paths import REPO


def worker(
    settings: LedgerSettings, name: str, count: int, batch: int, every: int = 0
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.ledger_worker",
        str(settings.resolved_database_url()),
        str(settings.data_dir),
        name,
        str(count),
        str(batch),
        str(every),
    ]


def check_whole_log(ledger: Ledger) -> dict[tuple[str, int], int]:
    """Every leaf in place, indices dense, the stored root the root of the stored leaves."""
    size = ledger.tree_size()
    leaves = ledger.leaves(0, size + 10)
    assert [leaf.leaf_index for leaf in leaves] == list(range(size))
    assert ledger.root() == merkle_root([leaf.leaf_hash for leaf in leaves])
    placed: dict[tuple[str, int], int] = {}
    for leaf in leaves:
        _, data = decode_leaf(leaf.leaf_data)
        key = (str(data["worker"]), int(data["n"]))
        assert key not in placed, f"event {key} logged twice"
        placed[key] = leaf.leaf_index
    return placed


def test_threads_appending_at_once_get_dense_unique_indices(settings: LedgerSettings) -> None:
    ledger = Ledger.open(settings)
    acked: dict[tuple[str, int], int] = {}
    lock = threading.Lock()

    def run(name: str) -> None:
        for n in range(0, 60, 3):
            events = [("access.decided", {"worker": name, "n": n + k}) for k in range(3)]
            indices = ledger.append_many(events)
            with lock:
                for k, index in enumerate(indices):
                    acked[(name, n + k)] = index

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    placed = check_whole_log(ledger)
    assert placed == acked
    assert ledger.tree_size() == 6 * 60
    ledger.close()


def test_processes_appending_at_once_get_dense_unique_indices(settings: LedgerSettings) -> None:
    Ledger.open(settings).close()  # tables and key exist before the writers race
    procs = [
        subprocess.Popen(
            worker(settings, f"p{i}", 300, 7), cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        for i in range(4)
    ]
    acked: dict[tuple[str, int], int] = {}
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        for line in out.splitlines():
            name, n, index = line.split()
            acked[(name, int(n))] = int(index)
    ledger = Ledger.open(settings)
    assert check_whole_log(ledger) == acked
    assert ledger.tree_size() == 4 * 300
    ledger.close()


def test_kill_9_while_appending_loses_no_acknowledged_event(settings: LedgerSettings) -> None:
    Ledger.open(settings).close()
    for round_ in range(3):
        proc = subprocess.Popen(
            worker(settings, f"k{round_}", 0, 5, 50), cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        acked: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + 60
        while len(acked) < 200 + 97 * round_ and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            name, n, index = line.split()
            acked[(name, int(n))] = int(index)
        os.kill(proc.pid, signal.SIGKILL)
        # Lines the child wrote before dying are acknowledgements too.
        for line in proc.stdout.read().splitlines():
            name, n, index = line.split()
            acked[(name, int(n))] = int(index)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert len(acked) >= 200

        ledger = Ledger.open(settings)
        placed = check_whole_log(ledger)
        for key, index in acked.items():
            assert placed.get(key) == index, f"acknowledged event {key} lost or moved"
        checkpoint = ledger.latest_checkpoint()
        assert checkpoint is not None
        sealed = open_checkpoint(checkpoint.note, ledger.verifier)
        proof = ledger.consistency_proof(sealed.tree_size)
        verify_consistency(
            sealed.tree_size, ledger.tree_size(), proof.hashes, sealed.root_hash, ledger.root()
        )
        # The log takes appends again after the crash, continuing the same tree.
        assert ledger.append("access.decided", {"worker": "after", "n": round_}) == len(placed)
        ledger.close()
