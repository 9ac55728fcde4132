"""A whole check of the projection against the log, for a scrub (``fsck``) rather than a request.

``verify_projection`` reads every projected consent and access row and every break-glass case,
checks each against its leaf as the request paths do (``integrity``), every leaf of a
projected kind for its row, and every head (``heads``, ``access_heads``) against the rows it
counts; it reports what it finds instead of refusing at the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from ledger.events import decode_leaf
from ledger.log import Ledger

from .access_heads import CASES, SCOPES
from .cases import BREAKGLASS_CASE, cases_page, verify_cases
from .errors import StorageIntegrityError
from .integrity import Mismatch, Row
from .projection_tables import (
    ACCESS,
    ACCESS_HEAD,
    ACCESS_KINDS,
    CONSENT,
    CONSENT_HEAD,
    CONSENT_KINDS,
    event_row,
)
from .records import Records

BATCH = 1000

Progress = Callable[[int], None]
"""Told how many more rows or leaves were checked."""


def verify_projection(
    records: Records, ledger: Ledger, progress: Progress | None = None
) -> list[Mismatch]:
    """Every projected row that does not match its leaf, and every leaf missing its row."""
    tell = progress or (lambda _: None)
    found: list[Mismatch] = []
    for table in (CONSENT, ACCESS):
        after = -1
        while True:
            query = select(table).where(table.c.leaf_index > after).order_by(table.c.leaf_index)
            with records.store.read() as conn:
                rows = conn.execute(query.limit(BATCH)).mappings().all()
            if not rows:
                break
            after = int(rows[-1]["leaf_index"])
            checked = [Row(table.name, int(r["leaf_index"]), r["kind"], r["body"]) for r in rows]
            bad = records.integrity.find_mismatches(checked)
            found += bad
            known_bad = {m.leaf_index for m in bad}
            found += [
                Mismatch(table.name, int(r["leaf_index"]), "a column disagrees with its body")
                for r in rows
                if int(r["leaf_index"]) not in known_bad and not _columns_agree(table, r)
            ]
            tell(len(rows))
    found += _cases(records, tell)
    found += _missing(records, ledger, tell)
    found += _heads(records)
    return found


def _heads(records: Records) -> list[Mismatch]:
    """Each head that disagrees with the rows it counts (newest leaf, how many), either way."""
    counted: dict[tuple[str, str], tuple[int, int]] = {}
    heads: dict[tuple[str, str], tuple[int, int]] = {}
    with records.store.read() as conn:
        by_subject = select(CONSENT.c.subject, func.max(CONSENT.c.leaf_index), func.count())
        for subject, newest, count in conn.execute(by_subject.group_by(CONSENT.c.subject)):
            counted[(CONSENT_HEAD.name, str(subject))] = (int(newest), int(count))
        for key, leaf_index, versions in conn.execute(select(CONSENT_HEAD)):
            heads[(CONSENT_HEAD.name, str(key))] = (int(leaf_index), int(versions))
        for column in SCOPES:
            scope = select(ACCESS.c[column], func.max(ACCESS.c.leaf_index), func.count())
            for value, newest, count in conn.execute(scope.group_by(ACCESS.c[column])):
                counted[(ACCESS_HEAD.name, f"{column}:{value}")] = (int(newest), int(count))
        cases = select(func.max(BREAKGLASS_CASE.c.decision_leaf_index), func.count())
        for newest, count in conn.execute(cases):
            if count:
                counted[(ACCESS_HEAD.name, CASES)] = (int(newest), int(count))
        for key, leaf_index, events in conn.execute(select(ACCESS_HEAD)):
            heads[(ACCESS_HEAD.name, str(key))] = (int(leaf_index), int(events))
    found = []
    for table, key in sorted(counted.keys() | heads.keys()):
        rows, head = counted.get((table, key)), heads.get((table, key))
        if rows != head:
            leaf_index = (head or rows or (0, 0))[0]
            found.append(Mismatch(table, leaf_index, f"{key}: head {head}, rows {rows}"))
    return found


def _columns_agree(table: Any, row: Any) -> bool:
    body = json.loads(row["body"])
    if table is CONSENT:
        return bool(
            (row["consent_id"], row["subject"], row["version"])
            == (body["consent_id"], body["subject"], body["version"])
        )
    expected, _ = event_row(row["kind"], body)
    return all(row[name] == value for name, value in expected.items())


def _cases(records: Records, tell: Progress) -> list[Mismatch]:
    found: list[Mismatch] = []
    after: int | None = None
    while True:
        with records.store.read() as conn:
            page = cases_page(conn, after=after, limit=BATCH, late_at=None)
        if not page:
            return found
        after = page[-1].decision_leaf_index
        for case in page:
            try:
                verify_cases(records.integrity, [case])
            except StorageIntegrityError as exc:
                leaf_index = int(exc.extensions["leaf_index"])
                found.append(Mismatch(BREAKGLASS_CASE.name, leaf_index, exc.detail))
        tell(len(page))


def _missing(records: Records, ledger: Ledger, tell: Progress) -> list[Mismatch]:
    """Leaves of projected kinds with no row (a row deleted by hand: a revocation, say)."""
    found: list[Mismatch] = []
    size = ledger.tree_size()
    for start in range(0, size, BATCH):
        leaves = ledger.leaves(start, min(size, start + BATCH))
        with records.store.read() as conn:
            have = {
                int(index)
                for table in (CONSENT, ACCESS)
                for (index,) in conn.execute(
                    select(table.c.leaf_index).where(
                        table.c.leaf_index >= start, table.c.leaf_index < start + BATCH
                    )
                )
            }
        for leaf in leaves:
            if leaf.kind not in CONSENT_KINDS | ACCESS_KINDS or leaf.leaf_index in have:
                continue
            kind, data = decode_leaf(leaf.leaf_data)
            if records.rows_of(kind, data, leaf.leaf_index) is None:
                continue  # not projected by design (an erased child's consent)
            table = CONSENT.name if kind in CONSENT_KINDS else ACCESS.name
            found.append(Mismatch(table, leaf.leaf_index, "the log has it, the projection not"))
        tell(len(leaves))
    return found
