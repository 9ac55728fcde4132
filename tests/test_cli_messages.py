"""What a person reads when the command line is given something wrong: the file that is missing
or is not what it should be is named, with what to do; every option says what it is for."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from consent_api.cli import parser as service_parser
from tests.cli_process import Ran, consent_ledger

EVENTS = "".join(
    f'{{"kind": "consent.granted", "data": {{"consent_id": "c-{n}"}}}}\n' for n in range(3)
)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with three events, a checkpoint (cp.txt), the key (log.vkey) and a proof."""
    data = tmp_path_factory.mktemp("messages") / "data"
    assert consent_ledger("init", "--data-dir", data).code == 0
    assert consent_ledger("append", "--data-dir", data, stdin=EVENTS).code == 0
    (data.parent / "cp.txt").write_text(consent_ledger("checkpoint", "--data-dir", data).out)
    (data.parent / "log.vkey").write_text(consent_ledger("key", "--data-dir", data).out)
    proof = consent_ledger("prove", "inclusion", "--leaf-index", "1", "--data-dir", data)
    (data.parent / "proof.json").write_text(proof.out)
    return data


def verify(log: Path, *args: str | Path) -> Ran:
    return consent_ledger("verify", *args, cwd=log.parent)


def test_a_key_file_that_is_not_there(log: Path) -> None:
    ran = verify(log, "checkpoint", "--key", "nokey.vkey", "--checkpoint", "cp.txt")
    assert ran.code == 2
    assert "nokey.vkey" in ran.err, ran.err
    assert "no such file" in ran.err
    assert "consent-ledger key" in ran.err
    assert "8 hex digits" not in ran.err


def test_a_file_that_is_not_a_vkey(log: Path) -> None:
    (log.parent / "notes.txt").write_text("remember to buy milk\n")
    ran = verify(log, "checkpoint", "--key", "notes.txt", "--checkpoint", "cp.txt")
    assert ran.code == 2
    assert "notes.txt is not a key in the C2SP vkey format" in ran.err, ran.err
    assert "consent-ledger key" in ran.err


def test_a_checkpoint_file_that_is_not_there(log: Path) -> None:
    ran = verify(log, "checkpoint", "--key", "log.vkey", "--checkpoint", "cp-old.txt")
    assert ran.code == 2
    assert "cp-old.txt" in ran.err, ran.err
    assert "no such file" in ran.err
    assert "consent-ledger checkpoint" in ran.err
    assert "Errno" not in ran.err


def test_a_proof_that_is_not_json(log: Path) -> None:
    (log.parent / "broken.json").write_text('{"leaf_index": 1,')
    ran = verify(
        log, "inclusion", "--key", "log.vkey", "--checkpoint", "cp.txt", "--proof", "broken.json"
    )
    assert ran.code == 2
    assert "broken.json is not JSON" in ran.err, ran.err
    assert "consent-ledger prove" in ran.err


def test_a_receipt_file_that_is_not_there(log: Path) -> None:
    ran = consent_ledger(
        "verify-receipt", "receipt.json", "--key", "log.vkey", "--offline", cwd=log.parent
    )
    assert ran.code == 2
    assert "receipt.json" in ran.err, ran.err
    assert "no such file" in ran.err
    assert "consent-ledger receipt" in ran.err
    assert "Errno" not in ran.err


def test_a_witness_policy_file_that_is_not_there(log: Path) -> None:
    ran = verify(
        log, "checkpoint", "--key", "log.vkey", "--checkpoint", "cp.txt",
        "--witness-policy", "policy.txt",
    )  # fmt: skip
    assert ran.code == 2
    assert "policy.txt" in ran.err, ran.err
    assert "no such file" in ran.err


def test_help_describes_the_commands_people_asked_about() -> None:
    anchor = consent_ledger("anchor", "--help").out
    assert "seal a checkpoint and anchor" in anchor.split("options:")[0]
    receipt = consent_ledger("receipt", "--help").out
    assert "the event's leaf (0-based" in receipt
    assert "receipt of one event" in receipt.split("options:")[0]
    serve = consent_ledger("serve", "--help").out
    for said in ("address to listen on", "port to listen on", "uvicorn's log level"):
        assert said in " ".join(serve.split()), said
    issue = consent_ledger("issue-token", "--help").out
    assert "token_ttl" not in issue
    assert "900" in issue


def _options(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _options(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def _commands(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, str | None]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += [(f"{path} {name}", child.description), *_commands(child, path)]
    return found


def test_every_command_has_a_description() -> None:
    assert [path for path, text in _commands(service_parser(), "consent-ledger") if not text] == []


def test_every_option_says_what_it_is_for() -> None:
    silent = [
        f"{path} {action.dest}"
        for path, action in _options(service_parser(), "consent-ledger")
        if not action.help
    ]
    assert silent == []


def test_defaults_are_shown_as_values_not_names() -> None:
    named = [
        f"{path} {action.dest}: {action.help}"
        for path, action in _options(service_parser(), "consent-ledger")
        if action.help and re.search(r"default:? [a-z]+_[a-z_]+", str(action.help))
    ]
    assert named == []
