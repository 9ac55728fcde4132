"""``consent-ledger witness``: a C2SP tlog-witness HTTP server over a ``WitnessState``.

    POST <prefix>/add-checkpoint          old size line, proof lines, blank line, signed note
    GET  <prefix>/<sha256(origin) hex>/checkpoint   the latest cosigned checkpoint of a log

Statuses are the spec's: 200 with the cosignature line, 400 malformed, 403 no valid signature
by a trusted key for the origin, 404 unknown origin, 409 with the latest size as
``text/x.tlog.size``, 422 inconsistent. Other refusals carry an RFC 9457 problem body.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import signal
import socket
import threading
from collections.abc import Iterable
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
        # Headers and body go out in two writes: without this, Nagle holds the second back
        # until the client's delayed ACK (~40 ms a request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

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


class WitnessHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], witness: Witness, prefix: str = "") -> None:
        self.witness = witness
        self.prefix = prefix.rstrip("/")
        super().__init__(address, _Handler)


def serve(witness: Witness, host: str, port: int, *, ready: Path | None = None) -> None:
    """Serve until SIGTERM or SIGINT; write the submission URL to ``ready`` once listening."""
    server = WitnessHTTPServer((host, port), witness)
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
