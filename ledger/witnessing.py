"""The log's side of witnessing: send each new checkpoint to the configured witnesses
(C2SP tlog-witness add-checkpoint), keep their cosignatures, publish the cosigned checkpoint.

Witnesses are the ``witness`` lines (with URLs) of the log's policy file
(``LedgerSettings.witness_policy_file``, C2SP tlog-policy); its ``quorum`` decides which
checkpoint is published: the newest one the quorum cosigned. Each witness gets the newest
checkpoint with a consistency proof from the size it last cosigned (learned from our stored
cosignatures, or from its 409 answer). A witness that is down is retried with exponential
back-off while sealing goes on; one that refuses (403, 404, 422) is reported loudly: that is
evidence of a fork or a misconfiguration, never a reason to stop the log.

A witness cannot hold the log either: each socket operation waits at most ``timeout`` (5 s),
a whole exchange (send, headers, answer) at most ``deadline`` (15 s), and an answer longer
than ``MAX_REPLY`` bytes (a cosignature line is ~120) is refused unread.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hashing import (
    Cosignature,
    VerificationError,
    WitnessPolicy,
    add_signature_lines,
    parse_cosignature_lines,
    parse_policy,
    verify_cosignatures,
)
from hashing.witness_policy import PolicyWitness

from .cosignature_store import CosignatureStore
from .errors import ConfigurationError, WitnessRefusal
from .log import Ledger
from .offline import b64
from .store import StoredCheckpoint

log = logging.getLogger(__name__)

_MAX_CONFLICT_RETRIES = 3
MAX_REPLY = 8 * 1024


def load_policy(path: Path) -> WitnessPolicy:
    try:
        return parse_policy(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"witness policy {path}: {exc}") from exc


@dataclass
class WitnessStatus:
    """What the log knows of one witness; ``refusal`` is kept until it cosigns again."""

    name: str
    url: str
    known_size: int = 0
    cosigned_size: int | None = None
    failures: int = 0
    next_attempt: float = 0.0
    last_error: str | None = None
    refusal: WitnessRefusal | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "cosigned_size": self.cosigned_size,
            "failures": self.failures,
            "last_error": self.last_error,
            "refused": None if self.refusal is None else self.refusal.status,
        }


def _detail(reply: bytes, content_type: str) -> str:
    text = reply.decode("utf-8", "replace")[:1000]
    if content_type.startswith("application/problem+json"):
        try:
            return str(json.loads(text).get("detail", text))
        except (ValueError, AttributeError):
            pass
    return text


class _Unavailable(Exception):
    """The witness could not be reached or answered outside the protocol."""


class _TooLarge(Exception):
    """The witness's answer is longer than any answer of the protocol."""


def _read_bounded(response: http.client.HTTPResponse) -> bytes:
    length = response.getheader("Content-Length")
    text = (length or "").strip()
    if text.isascii() and text.isdigit() and int(text) > MAX_REPLY:
        raise _TooLarge(f"its answer of {int(text)} bytes is over {MAX_REPLY}")
    data = response.read(MAX_REPLY + 1)
    if len(data) > MAX_REPLY:
        raise _TooLarge(f"its answer is over {MAX_REPLY} bytes")
    if text.isascii() and text.isdigit() and len(data) < int(text):
        raise http.client.IncompleteRead(data, int(text) - len(data))  # read(n) returns short
    return data


def _abort(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    expired.set()  # before the shutdown, so a read it ends always sees it
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Witnessing:
    """Sends checkpoints to witnesses, stores cosignatures, and picks what is published."""

    def __init__(
        self,
        ledger: Ledger,
        policy: WitnessPolicy,
        *,
        timeout: float = 5.0,
        deadline: float = 15.0,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        cosignatures: CosignatureStore | None = None,
    ) -> None:
        self.ledger = ledger
        self.policy = policy
        self.cosignatures = cosignatures or CosignatureStore(ledger.store)
        self.timeout = timeout
        self.deadline = deadline
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.witnesses = {w.name: w for w in policy.witnesses.values() if w.url}
        if not self.witnesses:
            raise ConfigurationError("the witness policy lists no witness with a URL")
        self.status = {}
        for name, witness in self.witnesses.items():
            size = self.cosignatures.latest_size(name)
            self.status[name] = WitnessStatus(
                name, str(witness.url), known_size=size or 0, cosigned_size=size
            )
        self._locks = {name: threading.Lock() for name in self.witnesses}
        self._connections: dict[str, http.client.HTTPConnection] = {}
        self._pool = ThreadPoolExecutor(len(self.witnesses), thread_name_prefix="witness")

    @classmethod
    def from_settings(
        cls, ledger: Ledger, cosignatures: CosignatureStore | None = None
    ) -> Witnessing | None:
        path = ledger.settings.witness_policy_file
        if path is None:
            return None
        return cls(ledger, load_policy(path), cosignatures=cosignatures)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for connection in self._connections.values():
            connection.close()

    # -- sending ------------------------------------------------------------------------------

    def witness(self, checkpoint: StoredCheckpoint, *, now: float | None = None) -> int:
        """Offer ``checkpoint`` to every witness due (in parallel); return how many cosigned it."""
        now = time.monotonic() if now is None else now
        due = [
            name
            for name, status in self.status.items()
            if status.cosigned_size != checkpoint.tree_size and status.next_attempt <= now
        ]
        results = list(self._pool.map(lambda name: self._offer(name, checkpoint), due))
        # One commit for all (each is an fsync); a crash before it only loses cosignatures,
        # which the witnesses give again (same size: cosigned anew).
        cosigned = [result for result in results if result is not None]
        self.cosignatures.record(checkpoint.tree_size, cosigned)
        for name, _, _ in cosigned:
            status = self.status[name]
            status.known_size = status.cosigned_size = checkpoint.tree_size
        return len(cosigned)

    def run_once(self) -> int:
        latest = self.ledger.latest_checkpoint()
        return 0 if latest is None else self.witness(latest)

    def run(self, stop: threading.Event, *, poll: float = 0.1) -> None:
        """Witness the newest checkpoint until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must outlive a bad pass (a database hiccup, say)
                log.exception("witnessing pass failed; retrying")
                stop.wait(1.0)
            stop.wait(poll)

    def _offer(self, name: str, checkpoint: StoredCheckpoint) -> tuple[str, str, int] | None:
        status = self.status[name]
        with self._locks[name]:
            try:
                cosignature = self._submit(self.witnesses[name], status, checkpoint)
            except WitnessRefusal as exc:
                status.refusal = exc
                status.last_error = f"refused: {exc}"
                log.error("witness %s refused checkpoint %d: %s", name, checkpoint.tree_size, exc)
                self._fail(status)
                return None
            except _Unavailable as exc:
                status.last_error = f"unavailable: {exc}"
                log.warning("witness %s unavailable (%s); retrying later", name, exc)
                self._fail(status)
                return None
            status.failures, status.next_attempt = 0, 0.0
            status.last_error, status.refusal = None, None
            return name, cosignature.line, cosignature.timestamp

    def _fail(self, status: WitnessStatus) -> None:
        status.failures += 1
        delay = min(self.max_backoff, self.backoff * 2 ** (status.failures - 1))
        status.next_attempt = time.monotonic() + delay

    def _submit(
        self, witness: PolicyWitness, status: WitnessStatus, checkpoint: StoredCheckpoint
    ) -> Cosignature:
        for _ in range(_MAX_CONFLICT_RETRIES):
            old = status.known_size
            if old > checkpoint.tree_size:
                raise WitnessRefusal(
                    409,
                    f"the witness has cosigned size {old}, past this log's checkpoint "
                    f"{checkpoint.tree_size}: the log was rolled back, or forked",
                    latest_size=old,
                )
            proof = (
                self.ledger.consistency_proof(old, checkpoint.tree_size).hashes
                if 0 < old < checkpoint.tree_size
                else []
            )
            body = f"old {old}\n" + "".join(b64(h) + "\n" for h in proof) + "\n"
            reply, code, content_type = self._post(witness, (body + checkpoint.note).encode())
            if code == 409 and content_type.startswith("text/x.tlog.size"):
                text = reply.decode("ascii", "replace").strip()
                if not (text.isascii() and text.isdigit()):  # not "²", which int() refuses
                    raise _Unavailable(f"409 with an unreadable size {text[:40]!r}")
                status.known_size = int(text)
                continue
            if code == 200:
                return self._cosignature(witness, checkpoint, reply)
            if code in (400, 403, 404, 409, 422):
                raise WitnessRefusal(code, _detail(reply, content_type))
            raise _Unavailable(f"HTTP {code}")
        raise _Unavailable("the witness's size kept changing (409 after 409)")

    def _cosignature(
        self, witness: PolicyWitness, checkpoint: StoredCheckpoint, reply: bytes
    ) -> Cosignature:
        try:
            lines = parse_cosignature_lines(reply)
            found = verify_cosignatures(
                add_signature_lines(checkpoint.note, lines), [witness.verifier]
            )
        except VerificationError as exc:
            raise _Unavailable(f"its answer is not a valid cosignature: {exc}") from exc
        cosignature = found.get(witness.verifier)
        if cosignature is None:
            raise _Unavailable("its answer holds no cosignature by its policy key")
        return cosignature

    def _post(self, witness: PolicyWitness, body: bytes) -> tuple[bytes, int, str]:
        url = urllib.parse.urlsplit(str(witness.url))
        for attempt in range(2):  # a kept-alive connection the witness closed: one reconnect
            connection = self._connections.get(witness.name)
            if connection is None:
                if url.scheme == "https":
                    connection = http.client.HTTPSConnection(url.netloc, timeout=self.timeout)
                else:
                    connection = http.client.HTTPConnection(url.netloc, timeout=self.timeout)
                self._connections[witness.name] = connection
            # A socket timeout bounds one read; this bounds the exchange (a witness dripping
            # bytes), by shutting the socket down under the blocked read.
            expired = threading.Event()
            timer = threading.Timer(self.deadline, _abort, (connection, expired))
            timer.start()
            try:
                connection.request(
                    "POST",
                    url.path.rstrip("/") + "/add-checkpoint",
                    body,
                    {"Content-Type": "text/plain; charset=utf-8"},
                )
                response = connection.getresponse()
                data = _read_bounded(response)
                if expired.is_set():
                    raise TimeoutError(f"no whole answer within {self.deadline:g} s")
                return data, response.status, response.getheader("Content-Type", "")
            except _TooLarge as exc:
                connection.close()
                del self._connections[witness.name]
                raise _Unavailable(str(exc)) from exc
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                del self._connections[witness.name]
                if expired.is_set():  # the deadline shut the socket down
                    raise _Unavailable(f"no whole answer within {self.deadline:g} s") from exc
                if attempt == 1 or not isinstance(
                    exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                ):
                    raise _Unavailable(str(exc) or type(exc).__name__) from exc
            finally:
                timer.cancel()
        raise _Unavailable("unreachable")

    # -- publishing ---------------------------------------------------------------------------

    def cosigned_note(self, checkpoint: StoredCheckpoint) -> str:
        """The checkpoint's note with every stored cosignature appended."""
        lines = self.cosignatures.lines(checkpoint.tree_size)
        return add_signature_lines(checkpoint.note, [lines[name] for name in sorted(lines)])

    def published(self) -> StoredCheckpoint | None:
        """The newest checkpoint whose cosignatures meet the policy's quorum."""
        for size, names in sorted(self.cosignatures.recent().items(), reverse=True):
            if self.policy.holds(names):
                checkpoint = self.ledger.store.checkpoint_at(size)
                if checkpoint is not None:
                    return checkpoint
        return None
