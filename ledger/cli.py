"""``consent-ledger``: the command line of the log. Errors go to stderr with a non-zero exit.

Exit codes: 0 success, 1 a verification failed, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from contracts.errors import AnchorMismatchError, ChainError
from hashing import HashingError, VerificationError

from . import cli_chain, cli_tiles, cli_witness, offline
from .cli_files import load_key, read_json, read_text
from .errors import ConfigurationError, LedgerError, MismatchError
from .events import EncodedEvent, decode_leaf, parse_event_line
from .initialised import require_initialised
from .log import Ledger
from .progress import Progress
from .settings import LedgerSettings

Handler = Callable[[argparse.Namespace], int]
CHECKPOINT_HINT = (
    "consent-ledger checkpoint > cp.txt writes one; the service: GET /v1/log/checkpoint"
)
CREATES = frozenset({"init", "demo"})
"""The commands that make a log (``demo`` a new one of its own); every other command with the
log's options refuses a data dir or database that was never initialised."""


def settings_of(args: argparse.Namespace) -> LedgerSettings:
    """The log's settings: the environment's, with the command line's options over them."""
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "database_url", "origin"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return LedgerSettings(**overrides)


def _out(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def cmd_init(args: argparse.Namespace) -> int:
    ledger = Ledger.open(settings_of(args))  # a new log is named and signs its empty tree
    try:
        checkpoint = ledger.latest_checkpoint()
        _out(
            {
                "origin": ledger.origin,
                "database": ledger.store.engine.url.render_as_string(hide_password=True),
                "tree_size": ledger.tree_size(),
                "public_key": ledger.verifier.to_vkey(),
                "checkpoint": checkpoint.note if checkpoint else None,
            }
        )
    finally:
        ledger.close()
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    ledger = Ledger.open(settings_of(args))
    try:
        print(ledger.verifier.to_vkey())
    finally:
        ledger.close()
    return 0


def cmd_append(args: argparse.Namespace) -> int:
    ledger = Ledger.open(settings_of(args))
    try:
        # Check every line before writing any, so bad input changes nothing.
        events: list[EncodedEvent] = []
        reading = Progress("checked")
        for position, line in enumerate(sys.stdin.buffer, start=1):
            if not line.strip():
                continue
            events.append(
                parse_event_line(line, max_bytes=ledger.settings.max_event_bytes, position=position)
            )
            if position % 10_000 == 0:
                reading.advance(10_000)
        writing = Progress("appended", total=len(events))
        first = None
        for start in range(0, len(events), args.batch):
            batch = ledger.append_encoded(events[start : start + args.batch])
            first = batch.start if first is None else first
            writing.advance(len(batch))
        if len(events) > args.batch:
            writing.finish()
        _out({"first_leaf_index": first, "count": len(events), "tree_size": ledger.tree_size()})
    finally:
        ledger.close()
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    ledger = Ledger.open(settings_of(args))
    try:
        sys.stdout.write(ledger.checkpoint().note)
    finally:
        ledger.close()
    return 0


def cmd_prove(args: argparse.Namespace) -> int:
    ledger = Ledger.open(settings_of(args))
    try:
        if args.what == "inclusion":
            size = args.tree_size
            proof = ledger.inclusion_proof(
                args.leaf_index, ledger.signed_size(args.leaf_index) if size is None else size
            )
            kind, data = decode_leaf(
                ledger.leaves(proof.leaf_index, proof.leaf_index + 1)[0].leaf_data
            )
            _out(
                {
                    "leaf_index": proof.leaf_index,
                    "tree_size": proof.tree_size,
                    "event": {"kind": kind, "data": data},
                    "leaf_hash": offline.b64(proof.leaf_hash),
                    "proof": [offline.b64(h) for h in proof.hashes],
                }
            )
        else:
            size2 = ledger.signed_size() if args.size2 is None else args.size2
            consistency = ledger.consistency_proof(args.size1, size2)
            _out(
                {
                    "size1": consistency.size1,
                    "size2": consistency.size2,
                    "proof": [offline.b64(h) for h in consistency.hashes],
                }
            )
    finally:
        ledger.close()
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    verifier = load_key(args.key)
    note = read_text(args.checkpoint, "checkpoint file", CHECKPOINT_HINT)
    checkpoint = offline.check_checkpoint(note, verifier)
    witnesses = cli_witness.checked_witnesses(args, note)
    if args.what == "checkpoint":
        _out(
            {
                "verified": "checkpoint",
                "origin": checkpoint.origin,
                "tree_size": checkpoint.tree_size,
                **witnesses,
            }
        )
        return 0
    doc = read_json(
        args.proof, "proof", f"consent-ledger prove {args.what} > proof.json writes one"
    )
    if args.what == "inclusion":
        leaf_index = offline.check_inclusion(doc, checkpoint)
        _out(
            {
                "verified": "inclusion",
                "leaf_index": leaf_index,
                "tree_size": checkpoint.tree_size,
                **witnesses,
            }
        )
        return 0
    old = offline.check_checkpoint(
        read_text(args.old, "older checkpoint file", CHECKPOINT_HINT), verifier
    )
    offline.check_consistency(doc, old, checkpoint)
    _out(
        {
            "verified": "consistency",
            "size1": old.tree_size,
            "size2": checkpoint.tree_size,
            **witnesses,
        }
    )
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from .recovery import accept_rollback

    if not args.accept_rollback:
        raise ConfigurationError(
            "recover changes what the log trusts: say what to accept (--accept-rollback); "
            "restoring a newer backup of the database is the better way out when there is one"
        )
    report = accept_rollback(settings_of(args))
    print(
        "consent-ledger: warning: rollback accepted: the database's tree of "
        f"{report['database_tree_size']} leaves is now the log's; the witness of "
        f"{report['witnessed_tree_size']} was kept at {report['old_witness_kept_at']}",
        file=sys.stderr,
    )
    _out(report)
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    from .fsck import fsck

    # Unchecked: fsck must run on the very database Ledger.open refuses, to say what is wrong.
    ledger = Ledger.open_unchecked(settings_of(args))
    try:
        report = fsck(ledger, getattr(args, "fsck_checks", ()))  # the API adds its own
    finally:
        ledger.close()
    print(report.to_json())
    if not report.clean:
        print(
            f"consent-ledger: fsck: {report.finding_count} findings; the first: "
            f"{report.findings[0].kind} {report.findings[0].where}: {report.findings[0].detail}",
            file=sys.stderr,
        )
    return 0 if report.clean else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(settings_of(args), events=args.events)


def _log_options(default: Any) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        help="the platform's key files and SQLite file, made by init "
        "(default: var, or CONSENT_LEDGER_DATA_DIR)",
    )
    options.add_argument(
        "--database-url",
        default=default,
        help="SQLAlchemy URL, e.g. postgresql://user@host/db (default: DATA_DIR/ledger.db, or "
        "CONSENT_LEDGER_DATABASE_URL)",
    )
    options.add_argument(
        "--origin",
        default=default,
        help="the log's name in checkpoints (default: consent-ledger.local/log, or "
        "CONSENT_LEDGER_ORIGIN)",
    )
    return options


def log_options_after() -> argparse.ArgumentParser:
    """The log's options as a sub-command's sub-command takes them (``prove inclusion
    --data-dir X``): a value given before it is not reset."""
    return _log_options(argparse.SUPPRESS)


Extension = Callable[[Any, argparse.ArgumentParser], None]


def build_parser(extensions: Sequence[Extension] = ()) -> argparse.ArgumentParser:
    """The command line; ``extensions`` let higher layers (the API) add their commands."""
    parser = argparse.ArgumentParser(
        prog="consent-ledger",
        description="A verifiable, anchored log of health-data consents and access decisions.",
    )
    common = _log_options(None)
    # Also accepted after a sub-command ("prove inclusion --data-dir X"); SUPPRESS keeps a
    # value given before it from being reset.
    common_after = _log_options(argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], help=text, description=text)
        command.set_defaults(handler=handler)
        return command

    add("init", cmd_init, "create the log (tables and signing key) and print its public key")
    add("key", cmd_key, "print the log's public key (C2SP vkey)")
    append = add("append", cmd_append, "append events read as JSON lines from stdin")
    append.add_argument("--batch", type=int, default=5000, help="events per transaction")
    add("checkpoint", cmd_checkpoint, "seal the current tree and print the signed checkpoint")
    prove = add("prove", cmd_prove, "print an inclusion or consistency proof as JSON")
    what = prove.add_subparsers(dest="what", required=True)
    text = "proof that a leaf is in the tree (check it with: consent-ledger verify inclusion)"
    inclusion = what.add_parser("inclusion", parents=[common_after], help=text, description=text)
    inclusion.add_argument(
        "--leaf-index", type=int, required=True, help="the event's leaf (0-based, as appended)"
    )
    inclusion.add_argument(
        "--tree-size",
        type=int,
        help="the tree to prove it in (default: the newest signed checkpoint's size)",
    )
    text = "proof that the tree of size2 extends the tree of size1 (the log only grew)"
    consistency = what.add_parser(
        "consistency", parents=[common_after], help=text, description=text
    )
    consistency.add_argument("--size1", type=int, required=True, help="the older tree's size")
    consistency.add_argument(
        "--size2",
        type=int,
        help="the newer tree's size (default: the newest signed checkpoint's size)",
    )
    verify = sub.add_parser(
        "verify",
        help="check a checkpoint or proof offline, with no database",
        description="Check offline; the trusted root comes from a signed checkpoint and a key.",
    )
    verify.set_defaults(handler=cmd_verify)
    verify.add_argument(
        "what",
        choices=["checkpoint", "inclusion", "consistency"],
        help="a checkpoint's signature; a leaf's inclusion (--proof); growth since --old",
    )
    verify.add_argument("--key", required=True, help="the log's public key, or a file holding it")
    verify.add_argument("--checkpoint", required=True, help="signed checkpoint file (the newer)")
    verify.add_argument("--proof", help="proof JSON file from 'prove'")
    verify.add_argument("--old", help="older signed checkpoint file, for consistency")
    cli_witness.add_policy_option(verify)
    add(
        "fsck",
        cmd_fsck,
        "scrub leaves, tree nodes, checkpoints, anchors and the witness against each other "
        "(progress on stderr, a JSON summary; exit 0 clean, 1 findings)",
    )
    recover = add(
        "recover",
        cmd_recover,
        "accept a database that went back in time (when no newer backup exists), and log it",
    )
    recover.add_argument(
        "--accept-rollback",
        action="store_true",
        help="make the database's tree the log's; events past it are given up for good",
    )
    cli_chain.register(sub, common, lambda a: Ledger.open(settings_of(a)))
    cli_witness.register(sub, common, lambda a: Ledger.open(settings_of(a)))
    cli_tiles.register(sub, common, settings_of)
    demo = add(
        "demo", cmd_demo, "run the main job on the embedded defaults and print what happened"
    )
    demo.add_argument("--events", type=int, default=20_000, help="events to log")
    for extend in extensions:
        extend(sub, common)
    return parser


def main(argv: Sequence[str] | None = None, extensions: Sequence[Extension] = ()) -> int:
    parser = build_parser(extensions)
    args = parser.parse_args(argv)
    if args.handler is cmd_verify:
        needed = {"inclusion": ["proof"], "consistency": ["proof", "old"]}.get(args.what, [])
        for name in needed:
            if getattr(args, name) is None:
                parser.error(f"verify {args.what} needs --{name}")
    if getattr(args, "batch", 1) < 1:
        parser.error("--batch must be at least 1")
    handler: Handler = args.handler
    try:
        if hasattr(args, "database_url") and args.command not in CREATES:
            require_initialised(settings_of(args))
        return handler(args)
    except (VerificationError, MismatchError, AnchorMismatchError) as exc:
        print(f"consent-ledger: verification failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # The file is named, not an errno: "[Errno 2] ..." tells nobody what to do.
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"consent-ledger: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except (LedgerError, HashingError, ChainError, ValueError) as exc:
        print(f"consent-ledger: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
