"""The log client against scripted services: paging, status errors, malformed bodies."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from auditor.errors import ApiStatusError, ApiUnreachableError, MalformedResponseError
from auditor.fetch import ANCHORS_PAGE, LogClient

API = "http://log.test"
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> LogClient:
    return LogClient(API + "/", http=httpx.Client(transport=httpx.MockTransport(handler)))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def leaves_service(count: int, page: int, seen: list[httpx.URL]) -> Handler:
    """Pages of at most ``page`` leaves, each offering a ``next`` link to somewhere else."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        start = int(request.url.params["start"])
        end = min(int(request.url.params["end"]), count, start + page)
        leaves = [{"leaf_index": i, "leaf_data": b64(b"leaf %d" % i)} for i in range(start, end)]
        body = {"start": start, "end": end, "tree_size": count, "leaves": leaves}
        body["next"] = "http://elsewhere.test/v1/log/leaves?start=0"
        return httpx.Response(200, json=body)

    return handle


def test_leaves_are_paged_by_the_auditors_own_cursor() -> None:
    seen: list[httpx.URL] = []
    log = client(leaves_service(count=23, page=5, seen=seen))
    got = list(log.leaves(3, 20))
    assert [leaf.leaf_index for leaf in got] == list(range(3, 20))
    assert got[0].leaf_data == b"leaf 3"
    assert {url.host for url in seen} == {"log.test"}  # the offered next link is never followed
    assert [int(url.params["start"]) for url in seen] == [3, 8, 13, 18]
    assert (log.requests, log.leaves_fetched) == (4, 17)


def test_leaves_stop_where_the_service_has_no_more() -> None:
    seen: list[httpx.URL] = []
    log = client(leaves_service(count=6, page=4, seen=seen))
    assert [leaf.leaf_index for leaf in log.leaves(0, 50)] == list(range(6))


def page_of(*leaves: dict[str, Any]) -> Handler:
    return lambda request: httpx.Response(200, json={"leaves": list(leaves), "next": None})


@pytest.mark.parametrize(
    ("leaves", "what"),
    [
        (
            ({"leaf_index": 2, "leaf_data": b64(b"a")}, {"leaf_index": 1, "leaf_data": b64(b"b")}),
            "leaf_index 1 after 2",
        ),
        (({"leaf_index": 0, "leaf_data": "YQ="},), "not canonical base64"),
        (({"leaf_index": 0, "leaf_data": "YR=="},), "not canonical base64"),
        (({"leaf_index": "0", "leaf_data": b64(b"a")},), "'leaf_index'"),
        (({"leaf_index": True, "leaf_data": b64(b"a")},), "'leaf_index'"),
        (({"leaf_index": 0},), "not a string"),
        (({"leaf_index": 9, "leaf_data": b64(b"a")},), "leaf_index 9"),
    ],
)
def test_malformed_leaf_pages(leaves: tuple[dict[str, Any], ...], what: str) -> None:
    with pytest.raises(MalformedResponseError, match=what) as caught:
        list(client(page_of(*leaves)).leaves(0, 5))
    assert caught.value.url.startswith(API + "/v1/log/leaves")


def test_a_gap_in_the_indices_is_passed_on_as_evidence() -> None:
    log = client(
        page_of(
            {"leaf_index": 0, "leaf_data": b64(b"a")}, {"leaf_index": 2, "leaf_data": b64(b"c")}
        )
    )
    assert [leaf.leaf_index for leaf in log.leaves(0, 3)] == [0, 2]


def test_non_2xx_names_status_and_problem_detail() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        problem = {"type": "urn:x", "title": "Not found", "status": 404, "detail": "no such size"}
        if request.url.path == "/v1/log/checkpoints/5":
            return httpx.Response(404, json=problem)
        return httpx.Response(503, text="down for maintenance")

    log = client(handle)
    assert log.checkpoint(5) is None  # 404 on a checkpoint: there is none
    with pytest.raises(ApiStatusError) as caught:
        log.latest_checkpoint()
    assert (caught.value.status, caught.value.detail) == (503, "down for maintenance")
    with pytest.raises(ApiStatusError, match="HTTP 503"):
        log.key()


def test_bodies_that_are_not_json_or_not_the_documented_shape() -> None:
    texts = {"/v1/log/proof/inclusion": "<html>", "/v1/log/proof/consistency": "[1, 2]"}
    log = client(lambda request: httpx.Response(200, text=texts[request.url.path]))
    with pytest.raises(MalformedResponseError, match="not JSON"):
        log.inclusion_proof(1, 4)
    with pytest.raises(MalformedResponseError, match="not a JSON object"):
        log.consistency_proof(1, 4)


def test_proofs_must_answer_the_question_asked() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        body = {"leaf_index": 1, "tree_size": 8, "proof": [b64(bytes(32))]}
        return httpx.Response(200, json=body)

    log = client(handle)
    assert log.inclusion_proof(1, 8) == [bytes(32)]
    with pytest.raises(MalformedResponseError, match="tree_size is 8, the request asked for 9"):
        log.inclusion_proof(1, 9)


def test_anchor_claims_are_paged_and_must_grow() -> None:
    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        after = int(request.url.params["after"])
        seen.append(after)
        sizes = [s for s in range(10, 10 * (ANCHORS_PAGE + 30), 10) if s > after][:ANCHORS_PAGE]
        return httpx.Response(
            200, json=[{"tree_size": s, "checkpoint": "cp", "anchor": {}} for s in sizes]
        )

    claims = list(client(handle).anchors(after=-1))
    assert [c.tree_size for c in claims] == list(range(10, 10 * (ANCHORS_PAGE + 30), 10))
    assert seen == [-1, 10 * ANCHORS_PAGE]
    backwards = client(
        lambda request: httpx.Response(
            200,
            json=[
                {"tree_size": 20, "checkpoint": "cp", "anchor": {}},
                {"tree_size": 20, "checkpoint": "cp", "anchor": {}},
            ],
        )
    )
    with pytest.raises(MalformedResponseError, match="size 20 listed after size 20"):
        list(backwards.anchors())


def test_a_service_that_does_not_answer() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ApiUnreachableError, match="ConnectError"):
        client(refuse).key()
