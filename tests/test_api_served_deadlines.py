"""A real ``consent-ledger serve`` process closes connections that send a request too slowly.

Replays the slowloris attack with raw sockets: many connections that each send half of a
request's headers (or all headers and part of the body) and then wait. Each is closed by the
server (with a 408 while no response has begun) and the server keeps answering whole requests.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import LiveServer

HANG_GUARD = 60.0
"""How long a socket read may block before the test gives up: a guard, not a measurement."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("deadlines") / "data"
    env = {"CONSENT_API_HEADER_TIMEOUT": "1", "CONSENT_API_BODY_TIMEOUT": "1"}
    live = LiveServer(data_dir, env=env)
    try:
        yield live
    finally:
        live.stop()


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def whole_request_answers(server: LiveServer) -> bytes:
    with connect(server) as sock:
        sock.sendall(b"GET /v1/log/key HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        return read_until_closed(sock)


def test_half_sent_headers_are_closed_with_408(server: LiveServer) -> None:
    sockets = [connect(server) for _ in range(50)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /v1/log/key HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        for sock in sockets:
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    finally:
        for sock in sockets:
            sock.close()
    assert whole_request_answers(server).startswith(b"HTTP/1.1 200 ")


def test_a_connection_that_sends_nothing_is_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_a_kept_alive_connection_gets_the_same_deadline_for_its_next_request(
    server: LiveServer,
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v1/log/key HTTP/1.1\r\nHost: t\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 ")
        head, _, rest = first.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += sock.recv(4096)
        sock.sendall(b"GET /v1/log/key HTTP/1.1\r\nHo")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_a_half_sent_body_is_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/consents HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"grantee": '
        )
        assert b"200 OK" not in read_until_closed(sock)  # closed, never answered as whole
    assert whole_request_answers(server).startswith(b"HTTP/1.1 200 ")
