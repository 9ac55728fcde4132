"""The witness commands: run a C2SP tlog-witness, cosign the log's checkpoint, compare two.

    consent-ledger witness --data-dir DIR --name NAME --log-key VKEY [--log-key ...]
                           [--host 127.0.0.1] [--port 7380] [--print-key]
                           [--read-timeout 10] [--request-deadline 20] [--max-connections 64]
    consent-ledger cosign [--witnesses POLICY] [--seal]   the log side, once, with a report
    consent-ledger compare A B --key VKEY [--proof P] [--witness-policy F]   split views

The witness keeps its cosigning key (``witness.key``, mode 0600) and its state
(``witness.db``) in DIR; ``--print-key`` prints its vkey (type 0x04, for policies) and exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hashing import NoteVerifier

from . import offline
from .cli_files import KEY_HINT, load_key, read_json, read_text
from .errors import ConfigurationError, MismatchError
from .witness_server import ServerLimits, Witness, serve
from .witness_state import WitnessState, load_or_create_cosigner
from .witnessing import Witnessing


def _log_keys(values: list[str]) -> list[NoteVerifier]:
    keys = []
    for value in values:
        text = read_text(value, "--log-key file", KEY_HINT) if "+" not in value else value
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                try:
                    keys.append(NoteVerifier.from_vkey(line.removeprefix("log ").split()[0]))
                except ValueError as exc:
                    raise ConfigurationError(f"--log-key {line!r}: {exc}") from exc
    return keys


def cmd_witness(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    signer = load_or_create_cosigner(data_dir / "witness.key", args.name)
    if args.print_key:
        print(signer.verifier().to_vkey())
        return 0
    keys = _log_keys(args.log_key or [])
    if not keys:
        raise ConfigurationError("a witness needs at least one --log-key to witness")
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(message)s")
    try:
        limits = ServerLimits(args.read_timeout, args.request_deadline, args.max_connections)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    state = WitnessState(data_dir / "witness.db", signer)
    serve(Witness(state, keys), args.host, args.port, ready=args.ready_file, limits=limits)
    return 0


def _out(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def cmd_cosign(args: argparse.Namespace, ledger_opener: Any) -> int:
    ledger = ledger_opener(args)
    try:
        if args.witnesses is not None:
            ledger.settings.witness_policy_file = args.witnesses
        witnessing = Witnessing.from_settings(ledger)
        if witnessing is None:
            raise ConfigurationError(
                "no witnesses: give --witnesses FILE or set CONSENT_LEDGER_WITNESS_POLICY_FILE"
            )
        try:
            checkpoint = ledger.checkpoint() if args.seal else ledger.latest_checkpoint()
            if checkpoint is None:
                raise ConfigurationError("no checkpoint sealed yet: give --seal")
            witnessing.witness(checkpoint)
            names = set(witnessing.cosignatures.lines(checkpoint.tree_size))
            met = witnessing.policy.holds(names)
            published = witnessing.published()
            _out(
                {
                    "tree_size": checkpoint.tree_size,
                    "cosigned_by": sorted(names),
                    "quorum": witnessing.policy.requirement(),
                    "quorum_met": met,
                    "published_size": None if published is None else published.tree_size,
                    "witnesses": {n: s.to_dict() for n, s in witnessing.status.items()},
                }
            )
            refused = [s for s in witnessing.status.values() if s.refusal is not None]
        finally:
            witnessing.close()
    finally:
        ledger.close()
    if refused:
        for status in refused:
            print(f"consent-ledger: witness {status.name} {status.last_error}", file=sys.stderr)
        return 1
    return 0 if met else 3


def register(sub: Any, common: argparse.ArgumentParser, ledger_opener: Any) -> None:
    register_compare(sub)
    text = "send the latest checkpoint to the witnesses now and report what each said"
    cosign = sub.add_parser("cosign", parents=[common], help=text, description=text)
    cosign.add_argument("--witnesses", type=Path, help="the log's witness policy file")
    cosign.add_argument("--seal", action="store_true", help="seal a checkpoint first")
    cosign.set_defaults(handler=lambda a: cmd_cosign(a, ledger_opener))
    text = "run a C2SP tlog-witness: cosign checkpoints consistent with the last one seen"
    witness = sub.add_parser("witness", help=text, description=text)
    witness.add_argument(
        "--data-dir", type=Path, default=Path("var/witness"), help="key and state of the witness"
    )
    witness.add_argument(
        "--name", required=True, help="the witness's key name, e.g. regulator.example/witness"
    )
    witness.add_argument(
        "--log-key",
        action="append",
        help="a log's public key (vkey; its name is the origin), or a file of them "
        "(one per line, or tlog-policy 'log' lines); repeatable",
    )
    witness.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    witness.add_argument("--port", type=int, default=7380, help="port to listen on (default: 7380)")
    witness.add_argument("--print-key", action="store_true", help="print the witness vkey, exit")
    witness.add_argument("--ready-file", type=Path, help="write the URL here once listening")
    witness.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning"],
        help="how much the witness logs (default: warning)",
    )
    defaults = ServerLimits()
    witness.add_argument(
        "--read-timeout",
        type=float,
        default=defaults.read_timeout,
        help="seconds one socket read or write may wait (default %(default)s)",
    )
    witness.add_argument(
        "--request-deadline",
        type=float,
        default=defaults.request_deadline,
        help="seconds a whole request (line, headers, body) may take to arrive; an idle "
        "connection is closed after as long (default %(default)s)",
    )
    witness.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        help="connections served at once; more are answered 503 (default %(default)s)",
    )
    witness.set_defaults(handler=cmd_witness)


def add_policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--witness-policy",
        help="C2SP tlog-policy file: the witnesses whose cosignatures the checkpoint needs",
    )


def checked_witnesses(args: argparse.Namespace, note: str) -> dict[str, Any]:
    """Check the note's cosignatures against ``--witness-policy``, if one was given."""
    if getattr(args, "witness_policy", None) is None:
        return {}
    policy = offline.load_witness_policy(args.witness_policy)
    return {"witnesses": offline.witnesses_out(offline.check_witnesses(note, policy))}


def cmd_compare(args: argparse.Namespace) -> int:
    verifier = load_key(args.key)
    hint = "consent-ledger checkpoint writes one; the service: GET /v1/log/checkpoint"
    notes = [read_text(path, "checkpoint file", hint) for path in (args.first, args.second)]
    proof = None
    if args.proof is not None:
        proof = read_json(args.proof, "proof", "consent-ledger prove consistency writes one")
    policy = (
        None if args.witness_policy is None else offline.load_witness_policy(args.witness_policy)
    )
    # The cosigners of each side are named even when the two disagree: that is the evidence.
    cosigners = [[] if policy is None else list(policy.check(note).cosigned) for note in notes]
    try:
        a, b = offline.compare_checkpoints(notes[0], notes[1], verifier, proof)
    except MismatchError:
        if policy is not None:
            print(
                f"consent-ledger: cosigned by {cosigners[0] or 'no witness'} and by "
                f"{cosigners[1] or 'no witness'}",
                file=sys.stderr,
            )
        raise
    _out(
        {
            "verified": "one history",
            "sizes": [a.tree_size, b.tree_size],
            **({} if policy is None else {"cosigned_by": cosigners}),
        }
    )
    return 0


def register_compare(sub: Any) -> None:
    text = "compare two checkpoints of the log (from two parties): do they show one history?"
    compare = sub.add_parser("compare", help=text, description=text + " Exit 1 on a split view.")
    compare.add_argument("first", help="a signed checkpoint file")
    compare.add_argument("second", help="another signed checkpoint file of the same log")
    compare.add_argument("--key", required=True, help="the log's public key, or a file holding it")
    compare.add_argument("--proof", help="consistency proof JSON between their sizes ('prove')")
    add_policy_option(compare)
    compare.set_defaults(handler=cmd_compare)
