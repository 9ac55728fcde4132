"""schemathesis against the OpenAPI of a real server: no 5xx, no response outside the spec.

Each operation on its own, then stateful scenarios that follow the links schemathesis infers
between operations (a consent granted, then read, narrowed and revoked by its id). The default
example counts keep the suite short; for a deeper run set ``SCHEMATHESIS_EXAMPLES`` (per
operation) and ``SCHEMATHESIS_SCENARIOS`` (stateful), e.g. 500 and 300.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Flaky
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from consent_api.auth import sign_institution_token
from consent_api.institutions import jwk_of
from tests.live_server import LiveServer

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "30"))
SCENARIOS = int(os.environ.get("SCHEMATHESIS_SCENARIOS", "20"))


class Parties:
    """One of each role, registered on the live server, with a way to make their tokens."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.admin = server.cli("issue-token", "--role", "admin", "--subject", "ops").strip()
        self.hospital_key = Ed25519PrivateKey.generate()
        body = {
            "id": "h-west",
            "name": "West Hospital",
            "type": "hospital",
            "public_key": jwk_of(self.hospital_key.public_key()),
        }
        self.post("/v1/admin/institutions", body, self.admin)
        resident = {"identifier": "NAT-42", "name": "A Resident", "birth_date": "1980-01-01"}
        self.subject = self.post("/v1/admin/residents", resident, self.admin)["subject"]
        self.resident = server.cli(
            "issue-token", "--role", "resident", "--subject", self.subject
        ).strip()
        self.regulator = server.cli(
            "issue-token", "--role", "regulator", "--subject", "reg-1"
        ).strip()

    def post(self, path: str, body: Any, token: str) -> Any:
        response = httpx.post(
            self.server.url + path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code < 300, response.text
        return response.json()

    def token_for(self, path: str, method: str) -> str:
        if path.startswith("/v1/admin"):
            return self.admin
        if path.startswith(("/v1/access-requests", "/v1/grants")) and method != "GET":
            audience = httpx.get(self.server.url + "/v1/audience").json()["audience"]
            return sign_institution_token(self.hospital_key, "h-west", ttl=300, audience=audience)
        if method in ("POST", "PUT", "DELETE") or path.startswith("/v1/me"):
            return self.resident
        return self.regulator


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(Path(tmp_path_factory.mktemp("schemathesis")))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def parties(server: LiveServer) -> Parties:
    return Parties(server)


def test_no_server_errors_and_responses_match_the_spec(
    server: LiveServer, parties: Parties
) -> None:
    """Every operation, fed generated requests, answers within the spec and never with 5xx.

    (schemathesis's own pytest plugin does not run on this pytest; its strategies do.)
    """
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            token = parties.token_for(case.path, case.method.upper())
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                # A schema-valid body may still be refused on meaning (a key that is no key,
                # a consent that widens): 4xx there is right, so that check is left out.
                excluded_checks=[positive_data_acceptance],
            )

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_stateful_scenarios_along_the_links(server: LiveServer, parties: Parties) -> None:
    """Sequences of calls, each feeding ids from one response into the next request.

    Failures are recorded as they happen rather than raised: the live server's state carries
    over from one scenario to the next, so hypothesis cannot replay a scenario to shrink it
    (it says ``Flaky``), and a raised failure would be lost in that. Like schemathesis's own
    runner, a run that hypothesis stops as flaky is started again until enough scenarios ran.
    """
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    # Valid requests only, as per operation above: the links are what is under test here.
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    failures: list[str] = []
    scenarios = 0

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            nonlocal scenarios
            scenarios += 1

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            token = parties.token_for(case.path, case.method.upper())
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            try:
                case.validate_response(response, excluded_checks=[positive_data_acceptance])
            except Exception as exc:  # a failed check: recorded, the scenario goes on
                failures.append(
                    f"{case.method.upper()} {case.formatted_path} -> {response.status_code}: {exc}"
                )

    for _ in range(5):
        # Flaky: the server's state moved on under a replay; what was recorded stands.
        with contextlib.suppress(Flaky):
            Scenarios.run(
                settings=settings(
                    max_examples=max(1, SCENARIOS - scenarios),
                    stateful_step_count=8,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
            )
        if scenarios >= SCENARIOS:
            break
    assert scenarios >= min(SCENARIOS, 10)
    assert not failures, "\n\n".join(failures)
