"""The service's part of ``consent-ledger fsck``: its projections and grants against the log.

Run after the log's own scrub (``ledger.fsck``), read-only: every projected consent and access
row, break-glass case and leaf of a projected kind (``projection_check``), and every grant row
against the permit that issued it (``grant_check``). Findings name the table and leaf index;
progress goes to stderr. A log the service never projected (no projection tables) has nothing
to check here.
"""

from __future__ import annotations

from sqlalchemy import inspect

from ledger.errors import KeyFileError
from ledger.fsck import FsckReport
from ledger.log import Ledger
from ledger.progress import Progress

from .grant_check import grant_mismatches
from .grants import GrantStore
from .identity import PSEUDONYM_KEY_FILE, PseudonymKey, ResidentVault
from .integrity import Mismatch
from .lapse import LapseCommitments
from .projection_check import BATCH, verify_projection
from .projection_tables import CONSENT
from .records import Records


def check_service_tables(ledger: Ledger, report: FsckReport) -> None:
    """Scrub the projection and the grants against ``ledger``; add what is wrong to ``report``."""
    tables = set(inspect(ledger.store.engine).get_table_names())
    if CONSENT.name not in tables:
        return
    try:
        # Read-only: never created nor pinned here (a missing one is a finding, not a new key).
        key = PseudonymKey.load(ledger.settings.data_dir, ledger.store, create=False)
    except KeyFileError as exc:
        path = ledger.settings.data_dir / PSEUDONYM_KEY_FILE
        report.add("projection", str(path), f"not checked: {exc}")
        return
    vault = ResidentVault(ledger.store)
    lapse = LapseCommitments(key.secret)
    records = Records(
        ledger.store, lambda body: lapse.from_leaf(body, vault.birth_date_if_known), lapse.logged
    )
    progress = Progress("fsck: projection")
    found = verify_projection(records, ledger, progress.advance)
    progress.finish()
    report.checked["projection_rows"] = progress.done
    if "grant" in tables:
        found += _grants(ledger, report)
    for mismatch in found:
        report.add(mismatch.table, f"leaf_index {mismatch.leaf_index}", mismatch.reason)


def _grants(ledger: Ledger, report: FsckReport) -> list[Mismatch]:
    grants = GrantStore(ledger.store)
    progress = Progress("fsck: grants")
    found: list[Mismatch] = []
    after = ""
    while page := grants.page(after=after, limit=BATCH):
        found += grant_mismatches(ledger.store, page)
        after = page[-1].request_id
        progress.advance(len(page))
    progress.finish()
    report.checked["grants"] = progress.done
    return found
