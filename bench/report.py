"""``python -m bench.report``: the README's benchmark section, rendered from bench/results."""

from __future__ import annotations

import json
import sys
from typing import Any

from .scale import RESULTS


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def render() -> str:
    parts: list[str] = []
    append = _load("append")
    if append:
        parts.append(f"Appends, batched, 100k events ({append['when']}):\n")
        parts.append(
            "| database | events/s | SHA-256 alone, same run | ratio "
            "| bare sqlite3 insert, same run | ratio |"
        )
        parts.append("|---|---|---|---|---|---|")
        for r in append["rows"]:
            floor = (
                f"{r['raw_insert_per_s']:,}/s | {r['ratio_to_raw_insert']}"
                if "raw_insert_per_s" in r
                else "- | -"
            )
            parts.append(
                f"| {r['database']} | {r['events_per_s']:,} | {r['sha256_per_s']:,}/s | "
                f"{r['ratio_to_sha256']} | {floor} |"
            )
        parts.append("")
    proofs = _load("proofs")
    if proofs:
        parts.append(f"Proofs from a SQLite log, 2,000 random queries each ({proofs['when']}):\n")
        parts.append(
            "| leaves | inclusion median / p99 | consistency median / p99 | vs 1k leaves |"
        )
        parts.append("|---|---|---|---|")
        for r in proofs["rows"]:
            parts.append(
                f"| {r['leaves']:,} | {r['inclusion_median_ms']} / {r['inclusion_p99_ms']} ms | "
                f"{r['consistency_median_ms']} / {r['consistency_p99_ms']} ms | "
                f"{r['inclusion_vs_smallest']}x / {r['consistency_vs_smallest']}x |"
            )
        parts.append("")
    tree = _load("tree")
    if tree:
        r = tree["rows"][0]
        parts.append(f"Building the tree of {r['entries']:,} leaves ({tree['when']}):\n")
        parts.append(
            "| ours, compact range (every node, as the log stores them) | ours, root only "
            "| pymerkle 7, same run | speed-up |"
        )
        parts.append("|---|---|---|---|")
        parts.append(
            f"| {r['compact_range_s']} s | {r['merkle_root_s']} s | {r['pymerkle_s']} s | "
            f"{r['speedup_compact_range']}x / {r['speedup_merkle_root']}x |"
        )
        parts.append("")
    anchor = _load("anchor")
    if anchor:
        parts.append(f"Anchoring on the embedded chain ({anchor['when']}):\n")
        parts.append(
            "| events | one batch: gas | seal + anchor | one tx per event: gas | time "
            "| gas ratio | time ratio |"
        )
        parts.append("|---|---|---|---|---|---|---|")
        for r in anchor["rows"]:
            note = "" if r["per_event_measured"] else " (extrapolated)"
            parts.append(
                f"| {r['events']:,} | {r['batch_gas']:,} | {r['batch_seal_and_anchor_s']} s | "
                f"{r['per_event_gas']:,}{note} | {r['per_event_s']} s{note} | "
                f"{r['gas_ratio']:,}x | {r['time_ratio']:,}x |"
            )
        parts.append("")
    api = _load("api")
    if api:
        parts.append(f"Access decisions over HTTP under wrk, loopback ({api['when']}):\n")
        parts.append(
            "| database | workers | connections | decisions/s | p50 / p99 "
            "| GET /v1/ping, same server | ratio |"
        )
        parts.append("|---|---|---|---|---|---|---|")
        for r in api["rows"]:
            parts.append(
                f"| {r['database']} | {r['workers']} | {r['connections']} | "
                f"{r['decisions_per_s']:,} | {r['p50_ms']} / {r['p99_ms']} ms | "
                f"{r['ping_per_s']:,}/s, p99 {r['ping_p99_ms']} ms | {r['ratio_to_ping']} |"
            )
        parts.append("")
    audit = _load("audit")
    if audit:
        parts.append(f"Auditing over HTTP from a live server, embedded chain ({audit['when']}):\n")
        parts.append(
            "| events | full audit | events/s | incremental audit, +1,000 events | events/s "
            "| SHA-256 alone, same run | ratio (full) |"
        )
        parts.append("|---|---|---|---|---|---|---|")
        for r in audit["rows"]:
            parts.append(
                f"| {r['events']:,} | {r['full_s']} s | {r['full_events_per_s']:,} | "
                f"{r['incremental_s']} s | {r['incremental_events_per_s']:,} | "
                f"{r['sha256_per_s']:,}/s | {r['full_ratio_to_sha256']} |"
            )
        parts.append("")
    return "\n".join(parts)


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_readme() -> None:
    """Replace the README's figures (between the bench markers) with the current results."""
    readme = RESULTS.parents[1] / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render()}\n{END}{tail}")


if __name__ == "__main__":
    if "--write-readme" in sys.argv[1:]:
        write_readme()
    else:
        sys.stdout.write(render())
