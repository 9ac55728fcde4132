"""A real ``consent-ledger witness`` against slow and greedy clients, and the log against a
witness whose answer is too long or never ends (raw sockets on both sides)."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashing import parse_policy
from ledger.log import Ledger
from ledger.witnessing import MAX_REPLY, Witnessing
from tests.witness_process import WitnessProcess, append, open_log, policy_text

# How long a dropped connection may take to be seen closed: a bound on liveness only (the
# witness runs with a 2 s deadline), so a loaded machine does not make the test flaky.
LIVENESS = 60.0
SLOW = 300


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_log(tmp_path / "log")
    yield ledger
    ledger.close()


def start_witness(tmp_path: Path, log: Ledger, *options: str) -> WitnessProcess:
    process = WitnessProcess(
        tmp_path / "w", "slow.test/witness", [log.verifier.to_vkey()], options=options
    )
    return process.start()


def sender(log: Ledger, witness: WitnessProcess) -> Witnessing:
    policy = parse_policy(policy_text(log, [witness], "all"))
    return Witnessing(log, policy, backoff=3600, max_backoff=3600)


def half_sent(port: int, count: int) -> list[socket.socket]:
    """Half the sockets stop inside the body, half inside the headers."""
    sockets = []
    for n in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        if n % 2:
            s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nContent-Length: 65536\r\n\r\nold 0\n")
        else:
            s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Le")
        sockets.append(s)
    return sockets


def wait_all_closed(sockets: list[socket.socket]) -> int:
    """Read every socket to its end (or LIVENESS); return how many the server did not close."""
    open_ = {s.fileno(): s for s in sockets}
    until = time.monotonic() + LIVENESS
    while open_ and time.monotonic() < until:
        ready, _, _ = select.select(list(open_.values()), [], [], 1.0)
        for s in ready:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                del open_[s.fileno()]
    for s in sockets:
        s.close()
    return len(open_)


def test_half_sent_requests_are_dropped_and_a_real_checkpoint_is_still_cosigned(tmp_path, log):
    witness = start_witness(
        tmp_path, log, "--request-deadline", "2", "--read-timeout", "1", "--max-connections", "400"
    )
    try:
        slow = half_sent(witness.port, SLOW)
        append(log, 3, "a")
        checkpoint = log.checkpoint()
        witnessing = sender(log, witness)
        try:
            # While the 300 are open (the deadline is far longer than this exchange).
            assert witnessing.witness(checkpoint) == 1, witnessing.status
        finally:
            witnessing.close()
        assert wait_all_closed(slow) == 0
    finally:
        witness.stop()


def test_a_connection_beyond_the_cap_is_answered_503_and_served_once_slots_free(tmp_path, log):
    witness = start_witness(tmp_path, log, "--request-deadline", "2", "--max-connections", "4")
    try:
        slow = half_sent(witness.port, 4)
        time.sleep(0.5)  # let the witness accept the four before the fifth arrives
        extra = socket.create_connection(("127.0.0.1", witness.port))
        extra.settimeout(LIVENESS)
        answer = b""
        while chunk := extra.recv(65536):
            answer += chunk
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"\r\nRetry-After: 2\r\n" in answer
        assert wait_all_closed(slow) == 0
        append(log, 2, "b")
        witnessing = sender(log, witness)
        try:
            assert witnessing.witness(log.checkpoint()) == 1, witnessing.status
        finally:
            witnessing.close()
    finally:
        witness.stop()


class HostileWitness:
    """Answers every request with ``head`` and then ``body``, ``drip`` seconds per byte."""

    def __init__(self, head: bytes, body: bytes, drip: float = 0.0) -> None:
        self.head, self.body, self.drip = head, body, drip
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(self.head)
            if not self.drip:
                conn.sendall(self.body)
            for byte in self.body if self.drip else b"":
                if self.stop.wait(self.drip):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.server.close()


def hostile_policy(log: Ledger, port: int) -> str:
    real = WitnessProcess(Path(log.settings.data_dir).parent / "h", "h.test/w", [])
    real.url = f"http://127.0.0.1:{port}"
    return policy_text(log, [real], "all")


def test_an_oversized_witness_answer_is_refused_by_the_log(log):
    body = ("\u2014 h.test/w " + "A" * 100 + "\n").encode() * 10_000  # ~1 MB of 'cosignature' lines
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
    hostile = HostileWitness(head % len(body), body)
    try:
        append(log, 1, "c")
        witnessing = Witnessing(log, parse_policy(hostile_policy(log, hostile.port)))
        try:
            assert witnessing.witness(log.checkpoint()) == 0
            status = witnessing.status["h"]
            assert status.last_error is not None
            assert f"over {MAX_REPLY}" in status.last_error, status.last_error
        finally:
            witnessing.close()
    finally:
        hostile.close()


def test_a_witness_dripping_its_answer_is_cut_off_at_the_deadline(log):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4000\r\n\r\n"
    hostile = HostileWitness(head, b"A" * 4000, drip=0.2)  # 800 s at this pace
    try:
        append(log, 1, "d")
        policy = parse_policy(hostile_policy(log, hostile.port))
        witnessing = Witnessing(log, policy, timeout=1.0, deadline=2.0)
        done = threading.Thread(target=witnessing.witness, args=(log.checkpoint(),))
        done.start()
        done.join(LIVENESS)
        assert not done.is_alive(), "the log is still waiting for the witness"
        status = witnessing.status["h"]
        assert status.last_error is not None
        assert "within 2 s" in status.last_error
        witnessing.close()
    finally:
        hostile.close()
