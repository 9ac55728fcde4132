"""The scale runs of bench/ at tiny sizes, so the benchmark code cannot rot unnoticed."""

from __future__ import annotations

import pytest

from bench import anchor_scale, audit_scale, log_scale, witness_scale


def test_append_rate_run_works() -> None:
    row = log_scale.append_rate("sqlite", 500, 100)
    assert row["events"] == 500
    assert row["events_per_s"] > 0
    assert row["ratio_to_raw_insert"] > 0


def test_proof_time_run_works() -> None:
    rows = log_scale.proof_times([64, 500], queries=20)
    assert [row["leaves"] for row in rows] == [64, 500]
    assert rows[0]["inclusion_vs_smallest"] == 1.0


def test_tree_build_run_agrees_with_pymerkle() -> None:
    row = log_scale.tree_build(300)  # asserts the three roots are equal
    assert row["entries"] == 300


def test_anchor_run_reports_constant_batch_gas() -> None:
    rows = anchor_scale.compare([10, 200], [10])
    assert rows[0]["batch_gas"] == rows[1]["batch_gas"]
    assert rows[0]["per_event_measured"] is True
    assert rows[1]["per_event_measured"] is False
    assert rows[1]["per_event_gas"] > rows[1]["batch_gas"]


def test_audit_run_audits_a_served_deployment() -> None:
    row = audit_scale.audit_rate(400, increment=50, increments=2, anchor_every=150)
    assert row["full_ok"] is True
    assert row["incremental_ok"] is True
    assert row["full_leaves_hashed"] == 400
    assert row["incremental_leaves_hashed"] == 50
    assert row["full_events_per_s"] > 0
    assert row["incremental_events_per_s"] > 0
    assert row["full_ratio_to_sha256"] > 0


@pytest.mark.slow
def test_audit_run_at_a_million_events() -> None:
    """The README's 1M figure (minutes): ``pytest -m slow``, or ``python -m bench.scale``."""
    row = audit_scale.audit_rate(1_000_000)
    assert row["full_ok"] is True
    assert row["incremental_ok"] is True
    assert row["full_leaves_hashed"] == 1_000_000


def test_witness_run_seals_with_three_witnesses() -> None:
    row = witness_scale.seal_latency(rounds=5, events_per_round=3)
    assert row["witnesses"] == 3
    assert row["witnessed_p99_ms"] > 0
