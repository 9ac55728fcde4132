"""Scale runs: ``python -m bench.scale [--quick] [--only NAME ...]``.

Writes ``bench/results/<name>.json`` and prints Markdown tables (the README's figures).
``--quick`` uses small sizes, to check the runs work; the README's figures come from a full run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import anchor_scale, api_scale, audit_scale, log_scale, witness_scale
from .common import table

RESULTS = Path(__file__).resolve().parent / "results"


def runs(quick: bool) -> dict[str, Callable[[], list[dict[str, Any]]]]:
    appended = 20_000 if quick else 100_000
    return {
        "append": lambda: [
            log_scale.append_rate("sqlite", appended, 10_000),
            log_scale.append_rate("postgresql", appended, 10_000),
        ],
        "proofs": lambda: log_scale.proof_times(
            [1_000, 100_000] if quick else [1_000, 1_000_000, 10_000_000]
        ),
        "tree": lambda: [log_scale.tree_build(100_000 if quick else 1_000_000)],
        "anchor": lambda: anchor_scale.compare(
            [1_000, 10_000] if quick else [1_000, 10_000, 100_000],
            [100, 1_000] if quick else [1_000, 10_000],
        ),
        # 1M events takes minutes to build (the audit itself is the figure); --quick: 100k only.
        "audit": lambda: [
            audit_scale.audit_rate(size) for size in ([100_000] if quick else [100_000, 1_000_000])
        ],
        "witness": lambda: [witness_scale.seal_latency(50 if quick else 300)],
        "api": lambda: api_scale.compare(
            seconds=3 if quick else 20,
            sqlite_connections=[8] if quick else [2, 4, 16, 64],
            postgresql_workers=[2] if quick else [1, 2, 3],
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--only", nargs="*", help="run only these (append, proofs, tree, ...)")
    args = parser.parse_args(argv)
    available = runs(args.quick)
    chosen = args.only or list(available)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from {sorted(available)}")
    RESULTS.mkdir(exist_ok=True)
    for name in chosen:
        print(f"== {name}", file=sys.stderr, flush=True)
        rows = available[name]()
        record = {
            "run": name,
            "quick": args.quick,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.machine()}, {platform.python_implementation()} "
            f"{platform.python_version()}",
            "rows": rows,
        }
        suffix = "-quick" if args.quick else ""
        (RESULTS / f"{name}{suffix}.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"\n### {name}\n\n{table(rows, list(rows[0]))}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
