"""pytest-benchmark micro-benchmarks: ``make bench`` runs them with the scale runs.

Each pair (ours / baseline) runs in the same session so their ratio is what to read.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from hashing import inclusion_proof, leaf_hash, merkle_root, verify_inclusion
from ledger.log import Ledger

from .common import temporary_ledger
from .log_scale import fill

LEAVES = [random.Random(1).randbytes(32) for _ in range(10_000)]
HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def test_baseline_sha256_of_10k_leaves(benchmark: BenchmarkFixture) -> None:
    benchmark(lambda: [hashlib.sha256(leaf).digest() for leaf in LEAVES])


def test_merkle_root_of_10k_leaves(benchmark: BenchmarkFixture) -> None:
    benchmark(merkle_root, HASHES)


def test_verify_inclusion_in_10k(benchmark: BenchmarkFixture) -> None:
    root = merkle_root(HASHES)
    proof = inclusion_proof(HASHES, 4321, len(HASHES))
    benchmark(verify_inclusion, HASHES[4321], 4321, len(HASHES), proof, root)


@pytest.fixture(scope="module")
def ledger_100k() -> Iterator[Ledger]:
    with temporary_ledger("sqlite") as ledger:
        fill(ledger, 100_000)
        yield ledger


def test_inclusion_proof_from_sqlite_100k(benchmark: BenchmarkFixture, ledger_100k: Ledger) -> None:
    rng = random.Random(3)
    benchmark(lambda: ledger_100k.inclusion_proof(rng.randrange(100_000), 100_000))


def test_consistency_proof_from_sqlite_100k(
    benchmark: BenchmarkFixture, ledger_100k: Ledger
) -> None:
    rng = random.Random(4)
    benchmark(lambda: ledger_100k.consistency_proof(rng.randrange(1, 100_000), 100_000))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_append_batch_of_1000(benchmark: BenchmarkFixture, kind: str) -> None:
    with temporary_ledger(kind) as ledger:
        events = [("access.decided", {"n": n, "decision": "permit"}) for n in range(1000)]
        benchmark(ledger.append_many, events)
