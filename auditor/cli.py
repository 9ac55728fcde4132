"""``auditor``: the regulator's integrity audit of a consent-ledger deployment, from the outside.

    auditor --api URL (--rpc URL | --chain-dir DIR) --contract ADDR --state DIR [--json REPORT]

Progress goes to stderr, findings to stdout (one line each: code, tree size, leaves, message).
Exit codes: 0 the audit found nothing, 1 it made findings, 2 it could not be carried out (bad
usage, the service or the chain unreachable, a damaged or mismatched state directory).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from contracts.chain import Chain, connect
from contracts.errors import ChainError

from .errors import AuditError
from .findings import Report
from .integrity import audit_integrity

EXIT_CLEAN, EXIT_FINDINGS, EXIT_CANNOT_AUDIT = 0, 1, 2
DEFAULT_MAX_ANCHOR_LAG_S = 3600.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditor",
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
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_CANNOT_AUDIT
    if args.max_anchor_lag < 0:
        return _fail("--max-anchor-lag must not be negative")

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"auditor: {message}", file=sys.stderr, flush=True)

    try:
        trusted_key = None if args.key is None else args.key.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read the key file: {exc}")
    try:
        chain = _connect(args.rpc, args.chain_dir)
    except (ChainError, ValueError) as exc:
        return _fail(f"cannot reach the chain: {exc}")
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
            )
        except (AuditError, ChainError) as exc:
            return _fail(str(exc))
    for finding in report.findings:
        print(_line(finding.to_dict()))
    if args.json is not None:
        try:
            _write(args.json, report)
        except OSError as exc:
            return _fail(f"cannot write the report: {exc}")
    progress(_summary(report))
    return EXIT_CLEAN if report.ok else EXIT_FINDINGS


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
    return f"{verdict}; {head}; {work}"


def _write(path: Path, report: Report) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(report.to_json(), encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
