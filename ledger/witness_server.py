"""``consent-ledger witness``: a C2SP tlog-witness HTTP server over a ``WitnessState``.

    POST <prefix>/add-checkpoint          old size line, proof lines, blank line, signed note
    GET  <prefix>/<sha256(origin) hex>/checkpoint   the latest cosigned checkpoint of a log

Statuses are the spec's: 200 with the cosignature line, 400 malformed, 403 no valid signature
by a trusted key for the origin, 404 unknown origin, 409 with the latest size as
``text/x.tlog.size``, 422 inconsistent. Other refusals carry an RFC 9457 problem body.

Slow or idle clients cannot hold the witness (``ServerLimits``, CLI flags in brackets): each
socket read or write waits at most ``read_timeout`` (10 s, ``--read-timeout``); a request's
request line, headers and body must all arrive within ``request_deadline`` of the moment the
connection starts waiting for it (20 s, ``--request-deadline``; an idle keep-alive connection is
closed then too); at most ``max_connections`` connections are served at once (64,
``--max-connections``), one more is answered 503 with ``Retry-After`` and closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hashing import (
    Checkpoint,
    NoteVerifier,
    SignatureError,
    VerificationError,
    open_checkpoint,
    split_note,
)
from hashing.checkpoint import decode_base64_strict

from .errors import WitnessRefusal
from .witness_state import WitnessState

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: %d\r\nContent-Type: "
    b"application/problem+json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How long a client may take, and how many may be served at once."""

    read_timeout: float = 10.0
    request_deadline: float = 20.0
    max_connections: int = 64

    def __post_init__(self) -> None:
        if not (self.read_timeout > 0 and self.request_deadline > 0 and self.max_connections > 0):
            raise ValueError("witness server limits must be positive")


_MAX_PROOF_LINES = 63
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,19})")


def parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    """Split an add-checkpoint body into old size, proof hashes and the signed note."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessRefusal(400, "the request is not valid UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRefusal(400, "the request has no empty line before the checkpoint")
    lines = head.split("\n")
    match = _OLD_LINE.fullmatch(lines[0])
    if match is None:
        raise WitnessRefusal(400, "the first line must be 'old <size>' in canonical decimal")
    if len(lines) - 1 > _MAX_PROOF_LINES:
        raise WitnessRefusal(400, f"more than {_MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for number, line in enumerate(lines[1:], start=1):
        try:
            proof.append(decode_base64_strict(line))
        except ValueError as exc:
            raise WitnessRefusal(400, f"proof line {number} is not canonical base64") from exc
    return int(match.group(1)), proof, note


class Witness:
    """The witness's decisions, apart from HTTP: trusted logs by origin, and its state."""

    def __init__(self, state: WitnessState, log_keys: Iterable[NoteVerifier]) -> None:
        self.state = state
        self.logs: dict[str, list[NoteVerifier]] = {}
        for key in log_keys:
            self.logs.setdefault(key.name, []).append(key)

    def add_checkpoint(self, body: bytes) -> str:
        old_size, proof, note = parse_request(body)
        try:
            unverified = Checkpoint.from_body(split_note(note).text)
        except VerificationError as exc:
            raise WitnessRefusal(400, f"the checkpoint is malformed: {exc}") from exc
        keys = self.logs.get(unverified.origin)
        if keys is None:
            raise WitnessRefusal(404, f"unknown log origin {unverified.origin!r}")
        checkpoint, kept = self._open(note, keys)
        line = self.state.add_checkpoint(old_size, proof, checkpoint, kept)
        log.info("cosigned %s at size %d", checkpoint.origin, checkpoint.tree_size)
        return line

    @staticmethod
    def _open(note: str, keys: list[NoteVerifier]) -> tuple[Checkpoint, str]:
        """The checkpoint, and the note with only the trusted log's signature lines."""
        problems = []
        for key in keys:
            try:
                checkpoint = open_checkpoint(note, key)
            except SignatureError as exc:
                problems.append(str(exc))
                continue
            except VerificationError as exc:
                raise WitnessRefusal(400, f"the note is malformed: {exc}") from exc
            split = split_note(note)
            prefix = f"\u2014 {key.name} "
            mine = tuple(line for line in split.lines if line.startswith(prefix))
            return checkpoint, type(split)(split.text, mine).note()
        raise WitnessRefusal(403, "; ".join(problems))

    def latest_note(self, origin_hash: str) -> str | None:
        for origin in self.logs:
            if hashlib.sha256(origin.encode("utf-8")).hexdigest() == origin_hash:
                latest = self.state.latest(origin)
                return None if latest is None else latest.note
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the spec recommends
    server: WitnessHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.limits.read_timeout)  # each read and write
        # Headers and body go out in two writes: without this, Nagle holds the second back
        # until the client's delayed ACK (~40 ms a request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        # The request line, headers and body must all arrive by the deadline (see _Deadlines).
        self.server.deadlines.watch(self.connection, self.server.limits.request_deadline)
        try:
            super().handle_one_request()
        finally:
            self.server.deadlines.unwatch(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _problem(self, status: int, detail: str) -> None:
        problem = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
        problem["detail"] = detail
        self._send(status, json.dumps(problem).encode(), "application/problem+json")

    def do_POST(self) -> None:
        if self.path != self.server.prefix + "/add-checkpoint":
            self._problem(404, f"no such endpoint {self.path}")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._problem(411, "Content-Length is required")
            self.close_connection = True
            return
        if not 0 <= length <= MAX_BODY:
            self._problem(413, f"the body must be at most {MAX_BODY} bytes")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        self.server.deadlines.unwatch(self.connection)
        if len(body) != length:  # the deadline passed, or the client hung up mid-body
            self.close_connection = True
            return
        try:
            line = self.server.witness.add_checkpoint(body)
        except WitnessRefusal as exc:
            log.warning("refused a checkpoint: %s", exc)
            if exc.status == 409:
                self._send(409, f"{exc.latest_size}\n".encode(), "text/x.tlog.size")
            else:
                self._problem(exc.status, exc.detail)
            return
        self._send(200, line.encode("utf-8"), "text/plain; charset=utf-8")

    def do_GET(self) -> None:
        self.server.deadlines.unwatch(self.connection)
        prefix, checkpoint_suffix = self.server.prefix + "/", "/checkpoint"
        path = self.path
        if path.startswith(prefix) and path.endswith(checkpoint_suffix):
            note = self.server.witness.latest_note(path[len(prefix) : -len(checkpoint_suffix)])
            if note is not None:
                self._send(200, note.encode("utf-8"), "text/plain; charset=utf-8")
                return
            self._problem(404, "this witness has cosigned no checkpoint of that log")
            return
        self._problem(404, f"no such endpoint {path}")


class _Deadlines:
    """Connections waiting for a request, with the time by which it must have arrived.

    A socket timeout bounds one read, not a request: a client sending a byte every few seconds
    would keep a thread forever. One reaper thread shuts down the socket of any connection past
    its deadline, which ends the handler's blocked read.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[socket.socket, float] = {}
        self._wake = threading.Event()
        self._stopped = False
        threading.Thread(target=self._reap, name="witness-deadlines", daemon=True).start()

    def watch(self, connection: socket.socket, seconds: float) -> None:
        with self._lock:
            self._due[connection] = time.monotonic() + seconds

    def unwatch(self, connection: socket.socket) -> None:
        with self._lock:
            self._due.pop(connection, None)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _reap(self) -> None:
        while not self._stopped:
            self._wake.wait(0.25)
            now = time.monotonic()
            with self._lock:
                late = [c for c, due in self._due.items() if due <= now]
                for connection in late:
                    del self._due[connection]
            for connection in late:
                with contextlib.suppress(OSError):  # already closed by the client
                    connection.shutdown(socket.SHUT_RDWR)


class WitnessHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        witness: Witness,
        prefix: str = "",
        limits: ServerLimits | None = None,
    ) -> None:
        self.witness = witness
        self.prefix = prefix.rstrip("/")
        self.limits = limits or ServerLimits()
        self.deadlines = _Deadlines()
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        """Answer 503 on the accepting thread without reading the request, and close."""
        retry = max(1, round(self.limits.request_deadline))
        detail = f"more than {self.limits.max_connections} connections; retry in {retry} s"
        problem = {"type": "about:blank", "title": "Service Unavailable", "status": 503}
        body = json.dumps({**problem, "detail": detail}).encode()
        try:
            request.settimeout(0)  # never let a client that does not read block the accept loop
            request.send(_REFUSED % (retry, len(body), body))
            request.recv(65536)  # what already came: closing on unread bytes would reset
        except OSError:
            pass
        log.warning("refused a connection: %s", detail)
        self.shutdown_request(request)

    def server_close(self) -> None:
        self.deadlines.stop()
        super().server_close()


def serve(
    witness: Witness,
    host: str,
    port: int,
    *,
    ready: Path | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; write the submission URL to ``ready`` once listening."""
    server = WitnessHTTPServer((host, port), witness, limits=limits)
    url = f"http://{host}:{server.server_port}"

    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"witness {witness.state.signer.verifier().to_vkey()} listening on {url}", flush=True)
    if ready is not None:
        ready.write_text(url + "\n", encoding="utf-8")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        witness.state.close()
