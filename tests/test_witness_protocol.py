"""A real ``consent-ledger witness`` process, spoken to in C2SP tlog-witness terms.

Every refusal the spec names is replayed: 404 unknown origin, 403 no valid signature by the
trusted log key, 400 malformed (and an old size past the checkpoint), 409 with the latest size
as text/x.tlog.size, 422 for a bad proof, a same-size other root and a non-empty size-0 tree.
"""

from __future__ import annotations

import base64
import http.client
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashing import (
    EMPTY_ROOT,
    Checkpoint,
    NoteSigner,
    add_signature_lines,
    leaf_hash,
    parse_cosignature_lines,
    verify_cosignatures,
)
from ledger.log import Ledger
from tests.witness_process import WitnessProcess, append, open_log


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_log(tmp_path / "log")
    yield ledger
    ledger.close()


@pytest.fixture
def witness(tmp_path: Path, log: Ledger) -> Iterator[WitnessProcess]:
    process = WitnessProcess(tmp_path / "w", "w.test/one", [log.verifier.to_vkey()]).start()
    yield process
    process.stop()


def post(witness: WitnessProcess, body: str | bytes) -> tuple[int, str, str]:
    url = urllib.parse.urlsplit(witness.url)
    connection = http.client.HTTPConnection(url.netloc, timeout=10)
    try:
        data = body.encode() if isinstance(body, str) else body
        connection.request("POST", "/add-checkpoint", data)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, response.getheader("Content-Type", ""), text
    finally:
        connection.close()


def request(old: int, proof: list[bytes], note: str) -> str:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note}"


def test_the_first_checkpoint_is_cosigned_and_then_extended_by_proof(log, witness):
    append(log, 5, "a")
    first = log.checkpoint()
    status, _, text = post(witness, request(0, [], first.note))
    assert status == 200, text
    lines = parse_cosignature_lines(text)
    found = verify_cosignatures(add_signature_lines(first.note, lines), [witness.verifier])
    assert found[witness.verifier].timestamp > 0
    append(log, 7, "b")
    second = log.checkpoint()
    proof = log.consistency_proof(5, second.tree_size).hashes
    assert post(witness, request(5, proof, second.note))[0] == 200
    # The same checkpoint again is cosigned again; an older one is refused.
    assert post(witness, request(12, [], second.note))[0] == 200
    assert post(witness, request(12, [], first.note))[0] == 400


def test_refusals_carry_the_spec_statuses(log, witness, tmp_path):
    append(log, 4, "a")
    cp4 = log.checkpoint()
    assert post(witness, request(0, [], cp4.note))[0] == 200
    append(log, 4, "b")
    cp8 = log.checkpoint()
    good_proof = log.consistency_proof(4, 8).hashes
    other_log = NoteSigner.generate("other.test/log")
    impostor = NoteSigner.generate(log.origin)  # the right name, another key
    cases = {
        "unknown origin": (
            404,
            request(0, [], other_log.sign(Checkpoint("other.test/log", 1, leaf_hash(b"x")))),
        ),
        "signed by another key": (
            403,
            request(4, good_proof, impostor.sign(Checkpoint(log.origin, 8, cp8.root_hash))),
        ),
        "no old line": (400, f"\n{cp8.note}"),
        "old size not canonical": (400, request(0, [], cp8.note).replace("old 0", "old 00")),
        "no blank line": (400, f"old 4\n{cp8.note.split(chr(10) + chr(10))[0]}"),
        "proof not base64": (400, f"old 4\n!!!\n\n{cp8.note}"),
        "old size past the checkpoint": (400, request(9, [], cp8.note)),
        "64 proof lines": (400, request(4, [bytes(32)] * 64, cp8.note)),
        "stale old size": (409, request(0, [], cp8.note)),
        "proof that does not verify": (422, request(4, [bytes(32), *good_proof[1:]], cp8.note)),
    }
    for case, (expected, body) in cases.items():
        status, content_type, text = post(witness, body)
        assert status == expected, (case, text)
        if expected == 409:
            assert content_type == "text/x.tlog.size"
            assert text == "4\n"
        else:
            assert content_type == "application/problem+json", case
    # Same size as the latest, another root: the log signed two trees of size 4.
    fork = log.signer.sign(Checkpoint(log.origin, 4, leaf_hash(b"fork")))
    status, _, text = post(witness, request(4, [], fork))
    assert status == 422
    assert "another root" in text
    # Nothing above moved the witness: the honest extension is still the next step.
    assert post(witness, request(4, good_proof, cp8.note))[0] == 200


def test_a_size_zero_checkpoint_must_have_the_empty_root(log, witness):
    bad = log.signer.sign(Checkpoint(log.origin, 0, leaf_hash(b"not empty")))
    assert post(witness, request(0, [], bad))[0] == 422
    append(log, 4, "a")
    proof = log.consistency_proof(2, 4).hashes  # any proof at all: none is due from size 0
    assert post(witness, request(0, proof, log.checkpoint().note))[0] == 422
    good = log.signer.sign(Checkpoint(log.origin, 0, EMPTY_ROOT))
    assert post(witness, request(0, [], good))[0] == 200


def test_the_monitoring_endpoint_serves_the_latest_cosigned_checkpoint(log, witness):
    import hashlib
    import urllib.request

    append(log, 3, "a")
    note = log.checkpoint().note
    origin_hash = hashlib.sha256(log.origin.encode()).hexdigest()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{witness.url}/{origin_hash}/checkpoint", timeout=10)
    assert missing.value.code == 404
    assert post(witness, request(0, [], note))[0] == 200
    with urllib.request.urlopen(f"{witness.url}/{origin_hash}/checkpoint", timeout=10) as r:
        served = r.read().decode()
    assert served.startswith(note)
    assert witness.verifier in verify_cosignatures(served, [witness.verifier])
