"""Access decisions per second under wrk on loopback (issue 5), beside the same server's no-op.

A real ``consent-ledger serve`` starts on a temporary data dir (SQLite, or PostgreSQL by URL);
an admin registers two hospitals and a few hundred residents, most of whom consent to one
hospital (``h-east``) reading what the other (``h-west``) holds. ``wrk`` then posts access
requests as ``h-east`` with one pre-signed institution token, rotating over the residents, so
the answers mix permits (with their grants) and denials; every answer is a logged decision.
The baseline is plain ``wrk`` against ``GET /v1/ping`` on the same server, same connections.

The log is checked afterwards, leaf by leaf: every decision answered 201 names a leaf that
holds exactly that decision, and the log grew by the answered decisions plus the few wrk had in
flight when it stopped (it closes its sockets without reading those answers, but the server
logs and answers them all the same), and by nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent_api.auth import PlatformKeys, Role, sign_institution_token
from consent_api.institutions import jwk_of
from consent_api.settings import ApiSettings
from ledger.events import decode_leaf
from ledger.settings import LedgerSettings

from .common import postgres_schema, serve_process
from .wrk import LUA, wrk

REQUESTER, HOLDER = "h-east", "h-west"
CONSENT = {
    "grantee": {"institution": REQUESTER},
    "holders": [HOLDER],
    "categories": ["lab-results", "imaging"],
    "purposes": ["treatment", "referral"],
}


# -- the server --------------------------------------------------------------------------------


@contextmanager
def served(data_dir: Path, *, workers: int = 1, database_url: str | None = None) -> Iterator[str]:
    """``consent-ledger serve`` on a free loopback port; yields its base URL, stops it after."""
    env = {**os.environ}
    if database_url is not None:
        env["CONSENT_LEDGER_DATABASE_URL"] = database_url
    extra = ["--workers", str(workers)]
    with serve_process(data_dir, env, extra, "/v1/ping", start_timeout=90) as url:
        yield url


def server_cpu_seconds(url: str) -> float | None:
    """CPU time (user + system, every thread) used so far by the processes listening on
    ``url``'s port: the server, or its supervisor and workers (None: ``ss`` is not there).

    The decisions' CPU cost, unlike their rate, barely moves with other work on the machine.
    PostgreSQL's own processes are not counted.
    """
    port = url.rsplit(":", 1)[1]
    if shutil.which("ss") is None:
        return None
    listing = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    ticks = 0
    for pid in sorted(set(re.findall(r"pid=(\d+)", listing))):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


# -- the parties -------------------------------------------------------------------------------


@dataclass
class Parties:
    requester_key: Ed25519PrivateKey
    subjects: list[str]
    consenting: set[str]


def register_parties(url: str, data_dir: Path, residents: int) -> Parties:
    """Two hospitals, ``residents`` residents; two in three consent to h-east reading h-west."""
    # Whoever holds the data dir is the platform's identity provider (as `issue-token` is).
    platform = PlatformKeys.of_deployment(ApiSettings(ledger=LedgerSettings(data_dir=data_dir)))
    admin = {"Authorization": f"Bearer {platform.issue(Role.ADMIN, 'ops').token}"}
    keys = {REQUESTER: Ed25519PrivateKey.generate(), HOLDER: Ed25519PrivateKey.generate()}
    subjects: list[str] = []
    consenting: set[str] = set()
    with httpx.Client(base_url=url, timeout=60) as client:

        def post(path: str, body: Any, headers: dict[str, str]) -> Any:
            answer = client.post(path, json=body, headers=headers)
            if answer.status_code != 201:
                raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text}")
            return answer.json()

        for institution_id, key in keys.items():
            body = {
                "id": institution_id,
                "name": f"Hospital {institution_id}",
                "type": "hospital",
                "public_key": jwk_of(key.public_key()),
            }
            post("/v1/admin/institutions", body, admin)
        for n in range(residents):
            person = {
                "identifier": f"BENCH-{n}",
                "name": f"Resident {n}",
                "birth_date": "1980-01-01",
            }
            subject = post("/v1/admin/residents", person, admin)["subject"]
            subjects.append(subject)
            if n % 3 != 2:
                token = platform.issue(Role.RESIDENT, subject).token
                post("/v1/consents", CONSENT, {"Authorization": f"Bearer {token}"})
                consenting.add(subject)
    return Parties(keys[REQUESTER], subjects, consenting)


def tree_size(client: httpx.Client) -> int:
    return int(client.get("/v1/log/leaves", params={"start": 0, "end": 0}).json()["tree_size"])


def settled_tree_size(client: httpx.Client, quiet: float = 1.0) -> int:
    """The tree size once it stopped growing (wrk's last requests may still be in the server)."""
    size = tree_size(client)
    while True:
        time.sleep(quiet)
        again = tree_size(client)
        if again == size:
            return size
        size = again


def new_leaves(client: httpx.Client, start: int, end: int) -> list[tuple[str, dict[str, Any]]]:
    """Leaves ``start <= leaf_index < end`` as (kind, data), through the public log API."""
    events: list[tuple[str, dict[str, Any]]] = []
    next_url: str | None = f"/v1/log/leaves?start={start}&end={end}"
    while next_url:
        page = client.get(next_url).json()
        events += [decode_leaf(base64.b64decode(leaf["leaf_data"])) for leaf in page["leaves"]]
        next_url = page["next"]
    return events


def request_bodies(parties: Parties) -> list[str]:
    """One request per resident: permits for the consenting ones, denials for the others."""
    return [
        json.dumps(
            {
                "subject": subject,
                "holder": HOLDER,
                "categories": ["lab-results"],
                "purpose": "treatment",
            }
        )
        for subject in parties.subjects
    ]


@dataclass(frozen=True)
class Answers:
    sent: int
    answered: int
    others: int
    leaves: dict[int, str]


def read_answers(path: Path) -> Answers:
    sent = answered = others = 0
    leaves: dict[int, str] = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if words[0] == "thread":
            sent, answered, others = (
                sent + int(words[1]),
                answered + int(words[2]),
                others + int(words[3]),
            )
        else:
            if int(words[0]) in leaves:
                raise AssertionError(f"two answers name leaf {words[0]}")
            leaves[int(words[0])] = words[1]
    return Answers(sent, answered, others, leaves)


def check_logged(
    answers: Answers,
    start: int,
    events: list[tuple[str, dict[str, Any]]],
    connections: int,
    consenting: set[str],
) -> int:
    """Every answered decision is the leaf it named; the rest are decisions wrk left in flight;
    each permits exactly when its resident consented.

    Returns how many logged decisions wrk did not read the answer of.
    """
    if answers.others:
        raise AssertionError(f"{answers.others} access requests were not answered 201")
    if len(answers.leaves) != answers.answered:
        raise AssertionError("some 201 answers named no leaf")
    for index, (kind, data) in enumerate(events, start):
        if kind != "access.decided":
            raise AssertionError(f"leaf {index} is {kind}, not a decision")
        expected = "permit" if data["subject"] in consenting else "deny"
        if data["decision"] != expected:
            raise AssertionError(f"leaf {index} logs {data['decision']}, not {expected}")
        answered = answers.leaves.get(index)
        if answered is not None and answered != data["decision"]:
            raise AssertionError(
                f"leaf {index} logs {data['decision']}, the answer said {answered}"
            )
    end = start + len(events)
    outside = [index for index in answers.leaves if not start <= index < end]
    if outside:
        raise AssertionError(
            f"{len(outside)} answers name leaves outside the run, e.g. {outside[0]}"
        )
    unread = len(events) - answers.answered
    # Sent but not read when wrk stopped: one per connection at most. (``sent`` may count one
    # request too many: wrk calls request() once more, to check the script, and sends nothing.)
    in_flight = min(answers.sent - answers.answered, connections)
    if not 0 <= unread <= in_flight:
        raise AssertionError(
            f"the log grew by {len(events)} decisions: {answers.answered} answered 201, "
            f"but wrk had only {in_flight} more in flight"
        )
    return unread


# -- the run -----------------------------------------------------------------------------------


def decisions(
    seconds: int = 20,
    connections: int = 16,
    workers: int = 1,
    database_url: str | None = None,
    residents: int = 200,
) -> dict[str, Any]:
    """Decisions/s and p99 under ``wrk``, beside the same server's ``/v1/ping``; one table row."""
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        data_dir = Path(tmp) / "data"
        with served(data_dir, workers=workers, database_url=database_url) as url:
            parties = register_parties(url, data_dir, residents)
            script = Path(tmp) / "decide.lua"
            out_path = Path(tmp) / "answers.txt"
            bodies = ",\n".join(f"[==[{body}]==]" for body in request_bodies(parties))
            audience = httpx.get(url + "/v1/audience").json()["audience"]
            token = sign_institution_token(
                parties.requester_key, REQUESTER, ttl=300, audience=audience
            )
            script.write_text(LUA.format(bodies=bodies, token=token, out_path=out_path))
            with httpx.Client(base_url=url, timeout=60) as client:
                before = settled_tree_size(client, quiet=0.2)
                cpu_before = server_cpu_seconds(url)
                decided = wrk(url, seconds, connections, script)
                after = settled_tree_size(client)
                cpu_after = server_cpu_seconds(url)
                answers = read_answers(out_path)
                events = new_leaves(client, before, after)
                unread = check_logged(answers, before, events, connections, parties.consenting)
            ping_cpu_before = server_cpu_seconds(url)
            ping = wrk(url + "/v1/ping", seconds, connections)
            ping_cpu_after = server_cpu_seconds(url)
    if decided.socket_errors or ping.socket_errors or ping.non_2xx:
        raise RuntimeError(f"wrk saw errors:\n{decided.output}\n{ping.output}")
    permits = sum(1 for decision in answers.leaves.values() if decision == "permit")
    return {
        "database": "sqlite" if database_url is None else "postgresql",
        "workers": workers,
        "connections": connections,
        "seconds": seconds,
        "decisions_per_s": round(decided.requests_per_s),
        "p50_ms": round(decided.p50_ms, 2),
        "p99_ms": round(decided.p99_ms, 2),
        "ping_per_s": round(ping.requests_per_s),
        "ping_p99_ms": round(ping.p99_ms, 2),
        "ratio_to_ping": round(decided.requests_per_s / ping.requests_per_s, 3),
        "server_cpu_us_per_decision": _per_request(cpu_before, cpu_after, after - before),
        "server_cpu_us_per_ping": _per_request(ping_cpu_before, ping_cpu_after, ping.responses),
        "decisions": answers.answered,
        "permits": permits,
        "logged": after - before,
        "logged_unread_at_stop": unread,
    }


def _per_request(before: float | None, after: float | None, requests: int) -> int | None:
    if before is None or after is None or not requests:
        return None
    return round((after - before) / requests * 1e6)


def compare(
    seconds: int,
    sqlite_connections: list[int],
    postgresql_workers: list[int],
    postgresql_connections: int = 16,
) -> list[dict[str, Any]]:
    """The scale run: one SQLite worker at each connection count (SQLite serves from one
    process), then PostgreSQL, each time on a fresh schema, with each number of workers."""
    rows = [decisions(seconds, connections) for connections in sqlite_connections]
    for workers in postgresql_workers:
        with postgres_schema("bench_api_") as database_url:
            rows.append(decisions(seconds, postgresql_connections, workers, database_url))
    return rows
