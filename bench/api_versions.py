"""Decisions/s of this tree against an earlier commit's, measured in one run, alternating.

A change that adds work to the decision path (checking projected rows against their leaves,
strict JSON, per-caller limits) is held to "no more than N% slower". On a noisy 2-core machine
only a same-run comparison means anything, so this exports the baseline commit with ``git
archive`` and runs each tree's own ``bench.api_scale.decisions`` (its own server, its own
harness) in turn, A B A B …, and reports the ratio of the medians.

    python -m bench.api_versions --baseline 2cbd25b [--rounds 3] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from .common import REPO, median

_RUN = (
    "import json, sys; from bench.api_scale import decisions; "
    "print(json.dumps(decisions(seconds=int(sys.argv[1]), connections=int(sys.argv[2]))))"
)


def export(revision: str, into: Path) -> Path:
    """The tree of ``revision`` unpacked under ``into`` (no git history, nothing built)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True
    ).stdout
    tree = into / revision
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    (tree / "node_modules").symlink_to(REPO / "node_modules")
    return tree


def run_in(tree: Path, seconds: int, connections: int) -> dict[str, Any]:
    """One decisions row from ``tree``'s own bench, its code first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(seconds), str(connections)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def compare(baseline: str, rounds: int, seconds: int, connections: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-versions-") as tmp:
        old = export(baseline, Path(tmp))
        rows: dict[str, list[dict[str, Any]]] = {"baseline": [], "current": []}
        for round_ in range(rounds):
            for name, tree in (("baseline", old), ("current", REPO)):
                row = run_in(tree, seconds, connections)
                rows[name].append(row)
                print(
                    f"round {round_ + 1} {name}: {row['decisions_per_s']:,}/s "
                    f"p99 {row['p99_ms']} ms",
                    file=sys.stderr,
                )
    rates = {name: median([r["decisions_per_s"] for r in got]) for name, got in rows.items()}
    p99s = {name: median([r["p99_ms"] for r in got]) for name, got in rows.items()}
    return {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "baseline": baseline,
        "connections": connections,
        "seconds": seconds,
        "rounds": rows,
        "median_per_s": rates,
        "median_p99_ms": p99s,
        "ratio": round(rates["current"] / rates["baseline"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
    parser.add_argument("--seconds", type=int, default=15, help="wrk seconds per run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = parser.parse_args()
    result = compare(args.baseline, args.rounds, args.seconds, args.connections)
    out = REPO / "bench" / "results" / "api_versions.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median_per_s", "median_p99_ms", "ratio")}))


if __name__ == "__main__":
    main()
