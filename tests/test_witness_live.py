"""The log and three real witness processes: all up, one down, one shown a fork, one killed
and restarted from its state, and a split view caught by a verifier holding both sides."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashing import parse_policy, verify_consistency
from ledger.log import Ledger
from ledger.witnessing import Witnessing
from tests.witness_process import (
    WitnessProcess,
    append,
    cli,
    fork_log,
    open_log,
    policy_text,
    start_all,
)

FAR_FUTURE = 1e12  # a "now" past every back-off, so the retry is due without waiting


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_log(tmp_path / "log")
    yield ledger
    ledger.close()


@pytest.fixture
def witnesses(tmp_path: Path, log: Ledger) -> Iterator[list[WitnessProcess]]:
    processes = [
        WitnessProcess(tmp_path / name, f"{name}.test/witness", [log.verifier.to_vkey()])
        for name in ("regulator", "hospital", "city")
    ]
    start_all(processes)
    yield processes
    for process in processes:
        process.stop()


def write_policy(tmp_path: Path, log: Ledger, witnesses: list[WitnessProcess], k: str) -> Path:
    path = tmp_path / f"policy-{k}.txt"
    path.write_text(policy_text(log, witnesses, k))
    return path


def witnessing(log: Ledger, policy: Path) -> Witnessing:
    return Witnessing(log, parse_policy(policy.read_text()), backoff=3600, max_backoff=3600)


def verify(key: str, note: str, policy: Path, tmp_path: Path) -> tuple[int, dict, str]:
    cp = tmp_path / "cp.txt"
    cp.write_text(note)
    done = cli(
        "verify",
        "checkpoint",
        "--key",
        key,
        "--checkpoint",
        str(cp),
        "--witness-policy",
        str(policy),
    )
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else {}, done.stderr


def test_all_up_every_checkpoint_is_cosigned_by_three(log, witnesses, tmp_path):
    two_of_three = write_policy(tmp_path, log, witnesses, "2")
    all_three = write_policy(tmp_path, log, witnesses, "all")
    sender = witnessing(log, two_of_three)
    try:
        for round_ in range(3):  # the first from size 0, then with consistency proofs
            append(log, 5 + round_, f"r{round_}")
            checkpoint = log.checkpoint()
            assert sender.witness(checkpoint) == 3
            assert sender.published() == checkpoint
        note = sender.cosigned_note(checkpoint)
    finally:
        sender.close()
    code, out, err = verify(log.verifier.to_vkey(), note, all_three, tmp_path)
    assert code == 0, err
    assert out["witnesses"]["cosigned_by"] == ["city", "hospital", "regulator"]
    assert out["witnesses"]["quorum_met"] is True
    assert out["witnesses"]["quorum"] == "3 of (regulator, hospital, city)"


def test_one_down_the_log_goes_on_with_two_and_three_of_three_fails(log, witnesses, tmp_path):
    policy = write_policy(tmp_path, log, witnesses, "2")
    sender = witnessing(log, policy)
    city = witnesses[2]
    try:
        append(log, 4, "a")
        assert sender.witness(log.checkpoint()) == 3
        city.stop()
        append(log, 4, "b")
        checkpoint = log.checkpoint()
        assert sender.witness(checkpoint) == 2
        assert sender.published() == checkpoint  # 2 of 3 is the log's quorum
        status = sender.status["city"]
        assert status.failures == 1
        assert "unavailable" in (status.last_error or "")
        # Backing off: the next pass leaves the witness alone, sealing goes on.
        append(log, 4, "c")
        checkpoint = log.checkpoint()
        assert sender.witness(checkpoint) == 2
        assert sender.status["city"].failures == 1
        note = sender.cosigned_note(checkpoint)
        code, _, err = verify(
            log.verifier.to_vkey(), note, write_policy(tmp_path, log, witnesses, "all"), tmp_path
        )
        assert code == 1
        assert "cosigned by hospital, regulator" in err
        assert "3 of (regulator, hospital, city): NOT met" in err
        # Back up, restarted from its state: it catches up from the size it last cosigned.
        city.start()
        assert sender.witness(checkpoint, now=FAR_FUTURE) == 1
        assert sender.status["city"].failures == 0
        assert set(sender.cosignatures.lines(checkpoint.tree_size)) == {
            "city",
            "hospital",
            "regulator",
        }
    finally:
        sender.close()


def test_a_witness_shown_a_fork_refuses_the_log_and_the_log_reports_it(log, witnesses, tmp_path):
    policy = write_policy(tmp_path, log, witnesses, "2")
    append(log, 4, "common")
    log.checkpoint()
    fork = fork_log(log, tmp_path / "fork")
    try:
        append(fork, 3, "forked")
        city_only = tmp_path / "city-only.txt"
        city_only.write_text(policy_text(fork, [witnesses[2]], "1"))
        forker = witnessing(fork, city_only)
        try:
            assert forker.witness(fork.checkpoint()) == 1  # the city sees the fork first
        finally:
            forker.close()
    finally:
        fork.close()
    append(log, 5, "honest")
    log.checkpoint()
    done = cli(
        "cosign",
        "--data-dir",
        str(log.settings.data_dir),
        "--origin",
        log.origin,
        "--witnesses",
        str(policy),
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["cosigned_by"] == ["hospital", "regulator"]
    assert report["quorum_met"] is True
    assert report["witnesses"]["city"]["refused"] == 422
    assert "witness city refused: 422" in done.stderr
    assert "does not verify" in done.stderr


def test_kill_9_mid_stream_never_yields_two_inconsistent_cosignatures(log, witnesses, tmp_path):
    """Two forks race to one witness while it is killed and restarted; every cosignature it
    ever returned must lie on one history."""
    target = witnesses[0]
    append(log, 2, "root")
    log.checkpoint()
    fork = fork_log(log, tmp_path / "fork")
    policy = tmp_path / "one.txt"
    policy.write_text(policy_text(log, [target], "1"))
    senders = [witnessing(log, policy), witnessing(fork, policy)]
    cosigned: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def stream(ledger: Ledger, sender: Witnessing, tag: str, stop: threading.Event) -> None:
        for n in range(200):
            if stop.is_set():
                return
            append(ledger, 1, f"{tag}{n}")
            checkpoint = ledger.checkpoint()
            if sender.witness(checkpoint, now=FAR_FUTURE):
                with lock:
                    cosigned.append((checkpoint.tree_size, checkpoint.root_hash))

    stop = threading.Event()
    threads = [
        threading.Thread(target=stream, args=(ledger, sender, tag, stop))
        for ledger, sender, tag in ((log, senders[0], "h"), (fork, senders[1], "f"))
    ]
    try:
        for thread in threads:
            thread.start()
        for _ in range(2):
            while len(cosigned) < 3 and all(t.is_alive() for t in threads):
                threading.Event().wait(0.05)
            target.kill9()
            target.start()
            with lock:
                cosigned.append((-1, b""))  # a marker: restarts do not reset the count
        stop.set()
        for thread in threads:
            thread.join(120)
    finally:
        for sender in senders:
            sender.close()
        fork.close()
    points = sorted({p for p in cosigned if p[0] > 0})
    assert len(points) >= 3
    # Every pair of cosigned trees must be consistent: recompute with the log that has them.
    honest = {(size, log.root(size)) for size, _ in points if size <= log.tree_size()}
    on_honest = [p for p in points if p in honest]
    on_fork = [p for p in points if p not in honest]
    # One history only: either everything cosigned after the fork is honest, or all forked.
    assert not (on_fork and [p for p in on_honest if p[0] > 2]), (on_honest, on_fork)
    for (s1, r1), (s2, r2) in itertools.pairwise(on_honest):
        verify_consistency(s1, s2, log.consistency_proof(s1, s2).hashes if s1 < s2 else [], r1, r2)


def test_a_split_view_is_caught_by_a_verifier_holding_both(log, witnesses, tmp_path):
    policy = write_policy(tmp_path, log, witnesses, "1")
    append(log, 4, "common")
    log.checkpoint()
    fork = fork_log(log, tmp_path / "fork")
    try:
        append(log, 3, "left")
        append(fork, 3, "right")
        left, right = log.checkpoint(), fork.checkpoint()
        assert left.tree_size == right.tree_size
        assert left.root_hash != right.root_hash
        regulator_only, hospital_only = tmp_path / "r.txt", tmp_path / "h.txt"
        regulator_only.write_text(policy_text(log, [witnesses[0]], "1"))
        hospital_only.write_text(policy_text(log, [witnesses[1]], "1"))
        notes = []
        for ledger, checkpoint, only in ((log, left, regulator_only), (fork, right, hospital_only)):
            sender = witnessing(ledger, only)
            try:
                assert sender.witness(checkpoint) == 1
                notes.append(sender.cosigned_note(checkpoint))
            finally:
                sender.close()
    finally:
        fork.close()
    # Each side alone meets a 1-of-3 policy: no single reader can tell.
    for note in notes:
        assert parse_policy(policy.read_text()).check(note).satisfied
    paths = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for path, note in zip(paths, notes, strict=True):
        path.write_text(note)
    done = cli(
        "compare",
        str(paths[0]),
        str(paths[1]),
        "--key",
        log.verifier.to_vkey(),
        "--witness-policy",
        str(policy),
    )
    assert done.returncode == 1
    assert "split view: the log signed two different trees of size 7" in done.stderr
    assert "['regulator'] and by ['hospital']" in done.stderr
    same = cli("compare", str(paths[0]), str(paths[0]), "--key", log.verifier.to_vkey())
    assert same.returncode == 0, same.stderr
