"""Leaf pages decoded page by page: in order, no request ahead of the reader, errors in place."""

from __future__ import annotations

import base64
from collections.abc import Generator

import httpx
import pytest

from auditor.errors import ApiStatusError, MalformedResponseError
from auditor.fetch import LogClient

API = "http://log.test"
PAGE = 10


def service(count: int, seen: list[int], *, fail_at: int | None = None) -> LogClient:
    def handle(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["start"])
        seen.append(start)
        if start == fail_at:
            return httpx.Response(503, text="down")
        end = min(int(request.url.params["end"]), count, start + PAGE)
        leaves = [
            {"leaf_index": i, "leaf_data": base64.b64encode(b"%d" % i).decode()}
            for i in range(start, end)
        ]
        return httpx.Response(200, json={"leaves": leaves, "next": None})

    return LogClient(API, http=httpx.Client(transport=httpx.MockTransport(handle)))


def test_a_reader_that_stops_early_stops_the_fetching() -> None:
    seen: list[int] = []
    log = service(10_000, seen)
    leaves = log.leaves(0, 10_000)
    assert isinstance(leaves, Generator)
    assert [next(leaves).leaf_index for _ in range(3)] == [0, 1, 2]
    leaves.close()
    assert seen == [0]  # one page asked for, never the whole log
    assert log.requests == 1


def test_every_leaf_once_in_order_across_pages() -> None:
    seen: list[int] = []
    log = service(95, seen)
    got = [leaf.leaf_index for leaf in log.leaves(3, 95)]
    assert got == list(range(3, 95))
    assert seen == list(range(3, 95, PAGE))
    assert (log.requests, log.leaves_fetched) == (len(seen), 92)


def test_an_error_in_a_later_page_is_raised_after_the_pages_before_it() -> None:
    seen: list[int] = []
    got: list[int] = []
    with pytest.raises(ApiStatusError, match="HTTP 503"):
        got.extend(leaf.leaf_index for leaf in service(100, seen, fail_at=30).leaves(0, 100))
    assert got == list(range(30))


def test_a_malformed_leaf_mid_page_is_named() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        leaves = [{"leaf_index": 0, "leaf_data": "YQ=="}, {"leaf_index": 1, "leaf_data": "YR=="}]
        return httpx.Response(200, json={"leaves": leaves})

    log = LogClient(API, http=httpx.Client(transport=httpx.MockTransport(handle)))
    with pytest.raises(MalformedResponseError, match="leaf_data of leaf 1 is not canonical"):
        list(log.leaves(0, 2))
