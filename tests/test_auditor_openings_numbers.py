"""The auditor reads a lapse opening's version only as a JSON integer, never through ``int()``.

A service (or anything between it and the auditor) answering ``"version": "٣"`` or ``3.7`` had
them read as 3: the auditor would have keyed an opening under a version the service never sent.
The answers come from a stand-in for the hostile server (an httpx transport), not our code.
"""

from __future__ import annotations

import httpx
import pytest

from auditor.errors import MalformedResponseError
from auditor.openings import fetch_openings


def serving(version: object) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        opening = {
            "consent_id": "c-1",
            "version": version,
            "guardian_authority_ends": "2030-01-01",
            "salt": "00" * 16,
        }
        return httpx.Response(200, json={"openings": [opening], "next": None})

    return httpx.Client(transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("version", ["\u0663", "3", 3.7, True, None], ids=repr)
def test_a_version_that_is_not_a_json_integer_is_a_malformed_answer(version: object) -> None:
    with pytest.raises(MalformedResponseError, match="lapse openings"):
        fetch_openings(serving(version), "http://api.test", "token", 0, 10)


def test_an_integer_version_is_read() -> None:
    openings, requests = fetch_openings(serving(3), "http://api.test", "token", 0, 10)
    assert list(openings) == [("c-1", 3)]
    assert requests == 1
