"""``auditor``: the regulator's audit of a consent-ledger deployment, from the outside.

    auditor --api URL (--rpc URL | --chain-dir DIR) --contract ADDR --state DIR [--json REPORT]
            [--html REPORT.html] [--token REGULATOR_TOKEN] [--clock-tolerance SECONDS]
            [--justify-within SECONDS] [--grant-ttl SECONDS] [--witness-policy POLICY]
    auditor resident --subject PSEUDONYM (the same options)

The audit checks integrity (signatures, anchors, leaves) and replays the verified leaves for
lawfulness. ``--token`` (or ``AUDITOR_TOKEN``) is a regulator's platform token: with it the
guardian lapse commitments are opened; without it guardian consents are judged without their
lapse and counted as unverifiable in the report. ``resident`` also prints, as JSON on stdout,
every access to one resident's records, each leaf proven, complete up to an anchored size.
The last three options are the deployment's policy (``auditor.policy``): the replay bounds the
times the service logs by them, never trusting a deadline or lifetime the service wrote.

Progress goes to stderr, findings to stdout (one line each: code, tree size, leaves, message;
to stderr for ``resident``, whose stdout is the JSON document). Exit codes: 0 the audit found
nothing, 1 it made findings, 2 it could not be carried out (bad usage, the service or the
chain unreachable, a damaged or mismatched state directory, a refused token).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from contracts.chain import Chain, connect
from contracts.errors import ChainError
from hashing import parse_policy

from .errors import AuditError
from .fetch import LogClient
from .findings import Findings, Report
from .html_report import write_html
from .integrity import audit_integrity
from .lawfulness import Lawfulness
from .policy import (
    DEFAULT_CLOCK_TOLERANCE_S,
    DEFAULT_GRANT_TTL_S,
    DEFAULT_JUSTIFY_WITHIN_S,
    Policy,
)
from .proofs import DEFAULT_SAMPLE
from .replay_state import ReplayState
from .resident import resident_report
from .state import AuditorState

EXIT_CLEAN, EXIT_FINDINGS, EXIT_CANNOT_AUDIT = 0, 1, 2
DEFAULT_MAX_ANCHOR_LAG_S = 3600.0


def build_parser(*, resident: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditor resident" if resident else "auditor",
        description="Check a consent-ledger log against its pinned key and the roots anchored "
        "on chain, trusting neither the platform's database nor its API.",
        epilog="Exit codes: 0 no finding, 1 findings, 2 the audit could not be carried out.",
    )
    parser.add_argument("--api", required=True, help="base URL of the service (its /v1/log/...)")
    chain = parser.add_mutually_exclusive_group(required=True)
    chain.add_argument("--rpc", help="JSON-RPC URL of a node of the chain the log anchors on")
    chain.add_argument("--chain-dir", type=Path, help="a copy of an embedded chain's directory")
    parser.add_argument("--contract", required=True, help="address of the AnchorRegistry")
    parser.add_argument(
        "--state", required=True, type=Path, help="the auditor's state directory (kept per log)"
    )
    parser.add_argument("--json", type=Path, help="write the JSON report to this file")
    parser.add_argument(
        "--html",
        type=Path,
        help="write the report as one self-contained HTML page with charts (opens offline)",
    )
    parser.add_argument(
        "--key",
        type=Path,
        help="the log's verifier key (vkey file) obtained out of band; "
        "without it the key served on the first run is pinned",
    )
    parser.add_argument(
        "--max-anchor-lag",
        type=float,
        default=DEFAULT_MAX_ANCHOR_LAG_S,
        metavar="SECONDS",
        help=f"longest a checkpoint may stay unanchored (default {DEFAULT_MAX_ANCHOR_LAG_S:.0f})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("AUDITOR_TOKEN"),
        help="a regulator's platform token, to open guardian lapse commitments "
        "(default: $AUDITOR_TOKEN; without one they are counted as unverifiable)",
    )
    parser.add_argument(
        "--clock-tolerance",
        type=float,
        default=DEFAULT_CLOCK_TOLERANCE_S,
        metavar="SECONDS",
        help="how far an event may be dated before one logged earlier (group commit), and a "
        f"logged effective time from its leaf's (default {DEFAULT_CLOCK_TOLERANCE_S:g})",
    )
    parser.add_argument(
        "--justify-within",
        type=float,
        default=DEFAULT_JUSTIFY_WITHIN_S,
        metavar="SECONDS",
        help="a break-glass access must be justified within this (the deployment's "
        f"breakglass_justify_within; default {DEFAULT_JUSTIFY_WITHIN_S})",
    )
    parser.add_argument(
        "--grant-ttl",
        type=float,
        default=DEFAULT_GRANT_TTL_S,
        metavar="SECONDS",
        help="longest a grant may live (the deployment's grant_ttl; default "
        f"{DEFAULT_GRANT_TTL_S}, the most the service accepts)",
    )
    parser.add_argument(
        "--witness-policy",
        type=Path,
        help="C2SP tlog-policy file: the latest checkpoint must meet its quorum, and each "
        "witness listed with a URL is asked for its own view of the log (split views)",
    )
    parser.add_argument(
        "--proof-sample",
        type=int,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help="check the served inclusion proofs of N of the new leaves, chosen at random "
        f"(all of them when there are no more; default {DEFAULT_SAMPLE})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    if resident:
        parser.add_argument(
            "--subject", required=True, help="the resident's pseudonymous subject id"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    resident = bool(argv) and argv[0] == "resident"
    parser = build_parser(resident=resident)
    if resident:
        argv = argv[1:]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_CANNOT_AUDIT
    if args.max_anchor_lag < 0:
        return _fail("--max-anchor-lag must not be negative")
    try:
        policy = Policy.of_seconds(args.clock_tolerance, args.justify_within, args.grant_ttl)
    except ValueError:
        return _fail("--clock-tolerance, --justify-within and --grant-ttl must not be negative")

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"auditor: {message}", file=sys.stderr, flush=True)

    try:
        trusted_key = None if args.key is None else args.key.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read the key file: {exc}")
    witness_policy = None
    if args.witness_policy is not None:
        try:
            witness_policy = parse_policy(args.witness_policy.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return _fail(f"cannot read the witness policy: {exc}")
    try:
        chain = _connect(args.rpc, args.chain_dir)
    except (ChainError, ValueError) as exc:
        return _fail(f"cannot reach the chain: {exc}")
    lawfulness = Lawfulness(args.state, token=args.token or None, progress=progress, policy=policy)
    with chain:
        try:
            report = audit_integrity(
                args.api,
                chain,
                args.contract,
                args.state,
                max_anchor_lag_s=args.max_anchor_lag,
                trusted_key=trusted_key,
                progress=progress,
                lawfulness=lawfulness,
                witness_policy=witness_policy,
                proof_sample=args.proof_sample,
            )
            document = _resident(args, lawfulness, report) if resident else None
        except (AuditError, ChainError) as exc:
            return _fail(str(exc))
    for finding in report.findings:
        print(_line(finding.to_dict()), file=sys.stderr if resident else sys.stdout)
    if document is not None:
        print(json.dumps(document, indent=2, sort_keys=True))
    try:
        if args.json is not None:
            _write(args.json, report)
        if args.html is not None:
            write_html(args.html, report.to_dict())
    except OSError as exc:
        return _fail(f"cannot write the report: {exc}")
    progress(_summary(report))
    return EXIT_CLEAN if report.ok else EXIT_FINDINGS


def _resident(
    args: argparse.Namespace, lawfulness: Lawfulness, report: Report
) -> dict[str, object]:
    state = AuditorState.load(args.state)
    findings = Findings()
    with LogClient(args.api) as log:
        document = resident_report(
            log, state, lawfulness.committed or ReplayState(), args.subject, findings
        )
    report.findings.extend(findings.items)
    return document


def _connect(rpc: str | None, chain_dir: Path | None) -> Chain:
    if rpc is not None:
        return connect(rpc)
    return connect(data_dir=chain_dir, create=False)


def _fail(message: str) -> int:
    print(f"auditor: error: {message}", file=sys.stderr)
    return EXIT_CANNOT_AUDIT


def _line(finding: dict[str, object]) -> str:
    where = []
    if "tree_size" in finding:
        where.append(f"size {finding['tree_size']}")
    if "leaf_indices" in finding:
        where.append(f"leaves {finding['leaf_indices']}")
    if "field" in finding:
        where.append(f"field {finding['field']}")
    return f"{finding['code']}\t{', '.join(where) or '-'}\t{finding['message']}"


def _summary(report: Report) -> str:
    head = f"verified up to size {report.verified_size}, chain anchors up to {report.anchored_size}"
    stats = report.stats
    work = (
        f"{stats.leaves_hashed} leaves hashed, {stats.requests} requests, {stats.elapsed_s:.2f} s"
    )
    verdict = "no finding" if report.ok else f"{len(report.findings)} finding(s)"
    replay = ""
    if report.lawfulness is not None:
        law = report.lawfulness
        replay = (
            f"; replayed {law['replayed_size']} leaves ({stats.leaves_replayed} new): "
            f"{law['permits']} permits, {law['denials']} denials, {law['releases']} releases, "
            f"{law['breakglass']} break-glass"
        )
        if law["unverifiable_guardian_consents"]:
            replay += (
                f"; {law['unverifiable_guardian_consents']} guardian consents judged without "
                "their lapse date (unverifiable: no regulator token, or no opening)"
            )
    return f"{verdict}; {head}; {work}{replay}"


def _write(path: Path, report: Report) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(report.to_json(), encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
