"""Named tamper scenarios: each attacks a deployment and asserts the auditor's finding.

Attacks on the database file are made while the service is down, as an operator with the
file would; the service then serves what the file holds. The chain is never touched: it is the
regulator's source of truth. Pristine shape (see ``test_auditor_deployment``): 32 leaves,
checkpoints 10, 20, 27 anchored and 32 not yet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from auditor.errors import AuditError
from auditor.findings import FindingCode, Report
from contracts.client import AnchorRegistryClient
from hashing import Checkpoint, NoteSigner, leaf_hash, merkle_root, node_hash
from ledger.anchoring import log_id_for
from tests.attackers_build import take_out_checks
from tests.test_auditor_deployment import (
    LATEST,
    ORIGIN,
    Deployment,
    Event,
    b64,
    deployment,
    event,
    json_response,
    pristine,
    state_dir,
)

__all__ = ["deployment", "pristine", "state_dir"]  # fixtures, imported for pytest to find

Code = FindingCode


@pytest.fixture(autouse=True)
def attackers_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator who edits the database also runs a service that does not check it."""
    take_out_checks(monkeypatch.setattr)


def indices(report: Report, code: FindingCode) -> set[int]:
    return {index for finding in report.of(code) for index in finding.leaf_indices}


# -- attacks on the database file -------------------------------------------------------------


def rewrite_leaf(dep: Deployment, index: int, data: bytes, *, with_hash: bool) -> None:
    with dep.db() as conn:
        if with_hash:
            conn.execute(
                "UPDATE leaf SET leaf_data = ?, leaf_hash = ? WHERE leaf_index = ?",
                (data, leaf_hash(data), index),
            )
        else:
            conn.execute("UPDATE leaf SET leaf_data = ? WHERE leaf_index = ?", (data, index))


def replace_leaves(dep: Deployment, start: int, stop: int, new: Sequence[bytes]) -> None:
    """Put ``new`` where leaves [start, stop) were and renumber the rest (dense indices)."""
    with dep.db() as conn:
        rows = conn.execute(
            "SELECT leaf_index, kind, leaf_data, leaf_hash, appended_at FROM leaf "
            "WHERE leaf_index >= ? ORDER BY leaf_index",
            (start,),
        ).fetchall()
        conn.execute("DELETE FROM leaf WHERE leaf_index >= ?", (start,))
        kind, appended_at = rows[0][1], rows[0][4]
        kept = [(r[1], r[2], r[3], r[4]) for r in rows[stop - start :]]
        fresh = [(kind, data, leaf_hash(data), appended_at) for data in new]
        conn.executemany(
            "INSERT INTO leaf (leaf_index, kind, leaf_data, leaf_hash, appended_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(start + n, *row) for n, row in enumerate([*fresh, *kept])],
        )


def swap_leaves(dep: Deployment, i: int, j: int) -> None:
    with dep.db() as conn:
        a, b = (
            conn.execute(
                "SELECT leaf_data, leaf_hash FROM leaf WHERE leaf_index = ?", (n,)
            ).fetchone()
            for n in (i, j)
        )
        for index, (data, digest) in ((i, b), (j, a)):
            conn.execute(
                "UPDATE leaf SET leaf_data = ?, leaf_hash = ? WHERE leaf_index = ?",
                (data, digest, index),
            )


def drop_database(dep: Deployment) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dep.db_path}{suffix}").unlink(missing_ok=True)


def rebuild(dep: Deployment, events: Sequence[Event], seal_at: Sequence[int]) -> None:
    """Rewrite history: a new database for the same log and key, with these events."""
    drop_database(dep)
    with dep.ledger() as ledger:
        done = 0
        for size in seal_at:
            ledger.append_many(events[done:size])
            ledger.checkpoint()
            done = size


def resign(dep: Deployment, signer: NoteSigner, sizes: Sequence[int]) -> None:
    with dep.db() as conn:
        for size in sizes:
            root = conn.execute(
                "SELECT root_hash FROM checkpoint WHERE tree_size = ?", (size,)
            ).fetchone()[0]
            note = signer.sign(Checkpoint(ORIGIN, size, bytes(root)))
            conn.execute("UPDATE checkpoint SET note = ? WHERE tree_size = ?", (note, size))


def replace_key(dep: Deployment) -> NoteSigner:
    signer = NoteSigner.generate(ORIGIN)
    key_path = dep.root / "data" / "log.key"
    key_path.write_text(signer.to_skey() + "\n", encoding="ascii")
    os.chmod(key_path, 0o600)
    with dep.db() as conn:
        conn.execute(
            "UPDATE log_meta SET value = ? WHERE name = 'vkey'", (signer.verifier().to_vkey(),)
        )
    resign(dep, signer, [10, 20, 27, 32])
    return signer


def original_events(count: int = LATEST) -> list[Event]:
    return [event(n) for n in range(count)]


# -- the tree's leaves ------------------------------------------------------------------------


def test_a_rewritten_leaf_is_located_to_the_nodes_the_storage_still_proves(
    deployment: Deployment, state_dir: Path
) -> None:
    rewrite_leaf(deployment, 13, b'{"kind":"access.decided","data":{}}', with_hash=True)
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.LEAVES_MISMATCH}
    assert {f.tree_size for f in report.findings} == {20, 27, 32}
    for finding in report.findings:
        assert 13 in finding.leaf_indices
        assert len(finding.leaf_indices) <= 4  # its level-1 node was rewritten with it
    assert report.verified_size == 0  # nothing is vouched for


def test_a_rewritten_leaf_whose_row_hash_was_left_is_located_exactly(
    deployment: Deployment, state_dir: Path
) -> None:
    rewrite_leaf(deployment, 13, b'{"kind":"access.decided","data":{}}', with_hash=False)
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.LEAVES_MISMATCH}
    assert all(f.leaf_indices == (13,) for f in report.findings)


def test_a_deleted_leaf_with_the_rest_renumbered(deployment: Deployment, state_dir: Path) -> None:
    replace_leaves(deployment, 13, 14, [])
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.LEAVES_MISMATCH, Code.TRUNCATED}
    assert 13 in indices(report, Code.LEAVES_MISMATCH)
    assert report.of(Code.TRUNCATED)[0].tree_size == LATEST


def test_a_deleted_leaf_leaving_a_gap(deployment: Deployment, state_dir: Path) -> None:
    with deployment.db() as conn:
        conn.execute("DELETE FROM leaf WHERE leaf_index = 13")
    report = deployment.audit(state_dir)
    assert Code.LEAVES_MISMATCH in report.codes()
    assert report.of(Code.LEAVES_MISMATCH)[0].leaf_indices == (13,)
    assert "missing" in report.of(Code.LEAVES_MISMATCH)[0].message
    assert Code.TRUNCATED in report.codes()


def test_swapped_leaves_are_both_located(deployment: Deployment, state_dir: Path) -> None:
    swap_leaves(deployment, 3, 24)
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.LEAVES_MISMATCH}
    assert {3, 24} <= indices(report, Code.LEAVES_MISMATCH)


def test_leaves_inserted_behind_anchored_checkpoints(
    deployment: Deployment, state_dir: Path
) -> None:
    events = original_events()
    events.insert(5, event(5, "-inserted"))
    rebuild(deployment, events, [len(events)])
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.LEAVES_MISMATCH, Code.INCONSISTENT}
    assert {f.tree_size for f in report.of(Code.LEAVES_MISMATCH)} == {10, 20, 27}
    size_10 = next(f for f in report.of(Code.LEAVES_MISMATCH) if f.tree_size == 10)
    assert 5 in size_10.leaf_indices
    assert report.of(Code.INCONSISTENT)[0].tree_size == LATEST + 1


# -- heads: forks, rollbacks, truncation --------------------------------------------------------


def forked_events() -> list[Event]:
    return [*original_events(15), *(event(n, "-fork") for n in range(15, LATEST))]


def test_a_fork_served_against_the_anchored_roots(deployment: Deployment, state_dir: Path) -> None:
    rebuild(deployment, forked_events(), [10, 20, 27, LATEST])
    report = deployment.audit(state_dir)
    assert {f.tree_size for f in report.of(Code.FORK)} == {20, 27}
    assert "the chain" in report.of(Code.FORK)[0].message
    assert Code.INCONSISTENT in report.codes()  # the served 32 does not extend the anchored 27
    mismatched = report.of(Code.LEAVES_MISMATCH)
    assert {f.tree_size for f in mismatched} == {20, 27}
    assert all(min(f.leaf_indices) >= 10 for f in mismatched)  # below 10 is proven by its anchor


def test_a_fork_shown_after_the_original_was_verified(
    deployment: Deployment, state_dir: Path
) -> None:
    assert deployment.audit(state_dir).ok
    rebuild(deployment, forked_events(), [10, 20, 27, LATEST])
    report = deployment.audit(state_dir)
    forks = report.of(Code.FORK)
    assert [f.tree_size for f in forks] == [LATEST]
    assert "verified before" in forks[0].message
    assert report.verified_size == LATEST  # still the original


def test_a_rolled_back_log(
    pristine: tuple[Deployment, Path], deployment: Deployment, state_dir: Path
) -> None:
    assert deployment.audit(state_dir).ok
    drop_database(deployment)
    shutil.copyfile(pristine[1], deployment.db_path)  # the backup from when size 10 was anchored
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.INCONSISTENT, Code.TRUNCATED}
    assert "rolled back" in report.of(Code.INCONSISTENT)[0].message


def test_a_log_cut_back_below_its_anchors_is_truncated(
    pristine: tuple[Deployment, Path], deployment: Deployment, state_dir: Path
) -> None:
    drop_database(deployment)
    shutil.copyfile(pristine[1], deployment.db_path)
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.TRUNCATED}
    assert max(f.tree_size or 0 for f in report.findings) == 27


def test_leaves_cut_below_an_anchored_size_are_truncated(
    deployment: Deployment, state_dir: Path
) -> None:
    with deployment.db() as conn:
        conn.execute("DELETE FROM leaf WHERE leaf_index >= 25")
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.TRUNCATED}
    assert report.findings[0].tree_size == 27


# -- signatures and keys ---------------------------------------------------------------------


def test_a_checkpoint_signed_by_another_key(deployment: Deployment, state_dir: Path) -> None:
    resign(deployment, NoteSigner.generate(ORIGIN), [LATEST])
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.BAD_SIGNATURE}
    assert "latest checkpoint" in report.findings[0].message


def test_a_checkpoint_with_a_forged_signature_by_the_right_key_id(
    deployment: Deployment, state_dir: Path
) -> None:
    with deployment.db() as conn:
        note = conn.execute("SELECT note FROM checkpoint WHERE tree_size = 20").fetchone()[0]
        head, _, line = note.rstrip("\n").rpartition("\n")
        dash, name, blob = line.split(" ")
        forged = b64(base64.b64decode(blob)[:4] + bytes(64))
        conn.execute(
            "UPDATE checkpoint SET note = ? WHERE tree_size = 20",
            (f"{head}\n{dash} {name} {forged}\n",),
        )
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.BAD_SIGNATURE}
    assert "size 20" in report.findings[0].message


def test_a_key_replaced_after_it_was_pinned(deployment: Deployment, state_dir: Path) -> None:
    assert deployment.audit(state_dir).ok
    replace_key(deployment)
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.KEY_CHANGED, Code.BAD_SIGNATURE}


def test_a_key_other_than_the_one_the_regulator_pinned(
    deployment: Deployment, state_dir: Path
) -> None:
    regulators = deployment.signer().verifier().to_vkey()
    replace_key(deployment)
    report = deployment.audit(state_dir, trusted_key=regulators)
    assert Code.KEY_CHANGED in report.codes()
    assert Code.BAD_SIGNATURE in report.codes()


def _forge_under_the_identity_key(
    request: httpx.Request, response: httpx.Response
) -> httpx.Response:
    """A service serving the identity point as its log key, and every checkpoint "signed" by
    it with R = identity, S = 0: OpenSSL alone verifies that for any note."""
    name, key = ORIGIN, b"\x01" + (1).to_bytes(32, "little")
    key_hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    path = request.url.path
    if path == "/v1/log/key":
        text = f"{name}+{key_hash.hex()}+{b64(key)}\n"
    elif path.startswith(("/v1/log/checkpoint", "/v1/log/checkpoints/")) and response.is_success:
        body, _, _ = response.text.rpartition("\n\n")
        forged = b64(key_hash + (1).to_bytes(32, "little") + bytes(32))
        text = f"{body}\n\n\u2014 {name} {forged}\n"
    else:
        return response
    headers = {"content-type": response.headers["content-type"]}
    return httpx.Response(200, text=text, headers=headers, request=request)


def test_a_log_key_of_small_order_is_never_pinned(deployment: Deployment, state_dir: Path) -> None:
    with pytest.raises(AuditError, match="unusable"):
        deployment.audit(state_dir, edit=_forge_under_the_identity_key)


def test_a_small_order_key_served_after_one_was_pinned(
    deployment: Deployment, state_dir: Path
) -> None:
    assert deployment.audit(state_dir).ok
    report = deployment.audit(state_dir, edit=_forge_under_the_identity_key)
    assert {Code.KEY_CHANGED, Code.BAD_SIGNATURE} <= report.codes()


# -- anchors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("root_hash", "0x" + "ab" * 32),
        ("tx_hash", "0x" + "cd" * 32),
        ("block_number", 1),
        ("anchorer", "0x000000000000000000000000000000000000dEaD"),
        ("timestamp", 1),
        ("chain_id", 1),
        ("log_id", "0x" + "ef" * 32),
        ("tree_size", 21),
    ],
)
def test_an_anchor_record_that_does_not_match_the_chain(
    deployment: Deployment, state_dir: Path, field: str, value: object
) -> None:
    with deployment.db() as conn:
        record = json.loads(
            conn.execute("SELECT record FROM anchor WHERE tree_size = 20").fetchone()[0]
        )
        record[field] = value
        conn.execute("UPDATE anchor SET record = ? WHERE tree_size = 20", (json.dumps(record),))
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.ANCHOR_MISMATCH}
    assert [(f.field, f.tree_size) for f in report.findings] == [(field, 20)]


def test_an_anchor_claim_the_chain_never_saw(deployment: Deployment, state_dir: Path) -> None:
    def claim_more(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/v1/log/anchors":
            return response
        listed = response.json()
        invented = {**listed[-1]["anchor"], "tx_hash": "0x" + "12" * 32}
        return json_response(request, [*listed, {**listed[-1], "anchor": invented}][-1:])

    report = deployment.audit(state_dir, edit=claim_more)
    assert report.codes() == {Code.ANCHOR_MISMATCH}
    assert report.findings[0].field == "tx_hash"


# -- an interior node offered as a leaf -------------------------------------------------------


@pytest.mark.parametrize(("at", "level"), [(12, 1), (16, 2)])
def test_an_interior_node_offered_as_a_leaf_is_rejected(
    deployment: Deployment, state_dir: Path, at: int, level: int
) -> None:
    span = 1 << level
    with deployment.ledger() as ledger:
        hashes = [leaf.leaf_hash for leaf in ledger.leaves(0, LATEST)]
    half = span // 2
    preimage = merkle_root(hashes[at : at + half]) + merkle_root(hashes[at + half : at + span])
    assert len(preimage) == 64
    assert node_hash(preimage[:32], preimage[32:]) == merkle_root(hashes[at : at + span])
    replace_leaves(deployment, at, at + span, [preimage])
    report = deployment.audit(state_dir)
    assert Code.SECOND_PREIMAGE in report.codes()
    assert Code.LEAVES_MISMATCH not in report.codes()
    assert indices(report, Code.SECOND_PREIMAGE) == {at}
    assert Code.TRUNCATED in report.codes()  # the served list is shorter by span - 1


# -- attacks on the API's responses ----------------------------------------------------------


def test_a_leaf_rewritten_in_the_api_response_is_located_exactly(
    deployment: Deployment, state_dir: Path
) -> None:
    def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/v1/log/leaves":
            return response
        page = response.json()
        for leaf in page["leaves"]:
            if leaf["leaf_index"] == 22:
                leaf["leaf_data"] = b64(b'{"kind":"access.decided","data":{"x":1}}')
        return json_response(request, page)

    report = deployment.audit(state_dir, edit=rewrite)
    assert report.codes() == {Code.LEAVES_MISMATCH}
    assert all(f.leaf_indices == (22,) for f in report.findings)


def test_a_consistency_proof_that_does_not_hold(deployment: Deployment, state_dir: Path) -> None:
    assert deployment.audit(state_dir).ok
    deployment.grow(5, anchor=True, tag="-more")

    def corrupt(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/v1/log/proof/consistency":
            return response
        body = response.json()
        body["proof"][0] = b64(bytes(32))
        return json_response(request, body)

    report = deployment.audit(state_dir, edit=corrupt)
    assert Code.INCONSISTENT in report.codes()
    assert report.verified_size == LATEST  # not advanced past what failed


def anchor_on_chain(dep: Deployment, tree_size: int, root: bytes) -> None:
    """The operator's own anchoring account anchors a root directly (the log never had it)."""
    with dep.chain() as chain:
        registry = AnchorRegistryClient.at(chain, dep.contract, chain.accounts[-1])
        registry.anchor(log_id_for(ORIGIN), tree_size, root)


def test_a_root_anchored_on_chain_that_the_log_never_had(
    deployment: Deployment, state_dir: Path
) -> None:
    anchor_on_chain(deployment, 30, bytes(range(32)))
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.LEAVES_MISMATCH, Code.INCONSISTENT}
    assert [f.tree_size for f in report.of(Code.LEAVES_MISMATCH)] == [30]
    assert "30" in report.of(Code.INCONSISTENT)[0].message


def test_a_bad_root_anchored_below_what_was_verified_before(
    deployment: Deployment, state_dir: Path
) -> None:
    assert deployment.audit(state_dir).ok  # verified up to 32; the chain anchors up to 27
    anchor_on_chain(deployment, 30, bytes(range(32)))
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.INCONSISTENT}
    assert "verified before does not extend the anchored one" in report.findings[0].message


def zero_tree_node(dep: Deployment, level: int, index: int) -> None:
    with dep.db() as conn:
        conn.execute(
            "UPDATE tree_node SET hash = zeroblob(32) WHERE level = ? AND node_index = ?",
            (level, index),
        )


def test_a_damaged_tree_node_is_found_in_the_proofs_served(
    deployment: Deployment, state_dir: Path
) -> None:
    zero_tree_node(deployment, 2, 1)  # every leaf still hashes to the signed roots
    report = deployment.audit(state_dir)
    assert report.codes() == {Code.BAD_PROOF}
    assert {0, 1, 2} <= indices(report, Code.BAD_PROOF)
