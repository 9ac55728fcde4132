"""The auditor's state file and the anchoring-lag rule, without a deployment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.errors import StateError, StateMismatchError
from auditor.findings import FindingCode, Findings
from auditor.lag import check_lag
from auditor.state import STATE_FILE, AuditorState, KnownAnchor, Observation, VerifiedHead
from hashing import CompactRange, leaf_hash


def head(size: int) -> VerifiedHead:
    tree = CompactRange()
    tree.extend([leaf_hash(b"%d" % n) for n in range(size)])
    return VerifiedHead(size, tree.root(), f"note of {size}\n", tree.hashes)


def anchor(size: int, timestamp: int = 1000) -> KnownAnchor:
    return KnownAnchor(size, bytes([size]) * 32, size + 1, timestamp, bytes(32))


def full_state() -> AuditorState:
    return AuditorState(
        log_key="log+12345678+AAAA",
        origin="audit.test/log",
        chain_id=7,
        contract="0x" + "ab" * 20,
        verified=head(13),
        anchors=[anchor(10), anchor(13)],
        scanned_to_block=42,
        anchors_checked_to=10,
        observations=[Observation(15, 123.5)],
    )


def test_round_trip(tmp_path: Path) -> None:
    state = full_state()
    path = state.save(tmp_path / "state")
    assert path.name == STATE_FILE
    assert AuditorState.load(tmp_path / "state") == state
    assert AuditorState.load(tmp_path / "none") == AuditorState()  # first use


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("verified", "frontier", 0), "00" * 32, "does not hash to the verified root"),
        (("verified", "frontier"), [], "frontier hashes"),
        (("verified", "root_hash"), "AB" * 32, "lower-case hex"),
        (("anchors", 1, "tree_size"), 5, "strictly increasing"),
        (("scanned_to_block",), "42", "scanned_to_block"),
        (("format",), 2, "format 1"),
    ],
)
def test_a_damaged_state_file_stops_the_audit(
    tmp_path: Path, path: tuple[str | int, ...], value: object, message: str
) -> None:
    directory = tmp_path / "state"
    full_state().save(directory)
    data = json.loads((directory / STATE_FILE).read_text())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    (directory / STATE_FILE).write_text(json.dumps(data))
    with pytest.raises(StateError, match=message):
        AuditorState.load(directory)


def test_not_json_is_a_damaged_state(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{")
    with pytest.raises(StateError, match="damaged"):
        AuditorState.load(tmp_path)


def test_pins_refuse_another_value() -> None:
    state = AuditorState()
    state.pin("chain_id", 7)
    state.pin("chain_id", 7)
    with pytest.raises(StateMismatchError) as caught:
        state.pin("chain_id", 8)
    assert (caught.value.field, caught.value.pinned, caught.value.given) == ("chain_id", 7, 8)


LAG_CASES = [
    # name, observations, anchors, latest, now, codes, pending sizes
    ("first sight", [], [anchor(10)], 15, 100.0, set(), [15]),
    ("within the limit", [Observation(15, 100.0)], [anchor(10)], 15, 150.0, set(), [15]),
    (
        "overdue",
        [Observation(15, 100.0)],
        [anchor(10)],
        20,
        200.0,
        {FindingCode.UNANCHORED_CHECKPOINT},
        [15, 20],
    ),
    ("anchored in time", [Observation(15, 100.0)], [anchor(15, 130)], 15, 500.0, set(), []),
    (
        "anchored late",
        [Observation(15, 100.0)],
        [anchor(15, 170)],
        15,
        500.0,
        {FindingCode.ANCHOR_LAG},
        [],
    ),
    (
        "covered by a later anchor",
        [Observation(15, 100.0)],
        [anchor(18, 120)],
        18,
        500.0,
        set(),
        [],
    ),
    ("nothing signed yet", [], [], None, 100.0, set(), []),
]


@pytest.mark.parametrize(
    ("observations", "anchors", "latest", "now", "codes", "pending"),
    [case[1:] for case in LAG_CASES],
    ids=[case[0] for case in LAG_CASES],
)
def test_anchoring_lag(
    observations: list[Observation],
    anchors: list[KnownAnchor],
    latest: int | None,
    now: float,
    codes: set[FindingCode],
    pending: list[int],
) -> None:
    findings = Findings()
    left = check_lag(observations, {a.tree_size: a for a in anchors}, latest, now, 60.0, findings)
    assert {f.code for f in findings.items} == codes
    assert [o.tree_size for o in left] == pending
    assert not findings.about_the_tree()
