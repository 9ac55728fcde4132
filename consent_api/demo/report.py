"""The demo day's report: what the log holds, the anchors, and one resident's access history."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.settings import LedgerSettings


def short(subject: str) -> str:
    """A pseudonymous subject id, cut for the screen."""
    return subject[:10] + "…"


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _breakdown(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))


@dataclass
class LogTally:
    """The day counted from the log itself, not from what the demo believes it did."""

    events: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    permitted: int = 0
    breakglass: int = 0
    denials: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, events: Iterable[tuple[str, dict[str, Any]]]) -> LogTally:
        tally = cls()
        for kind, data in events:
            tally.events += 1
            tally.kinds[kind] += 1
            if kind == "access.decided" and data["decision"] == "permit":
                tally.permitted += 1
                tally.breakglass += bool(data["breakglass"])
            elif kind == "access.decided":
                tally.denials[data["reason"]] += 1
            elif kind == "access.refused":
                tally.refusals[data["refusal"]] += 1
        return tally


def print_tally(tally: LogTally, residents: int, children: int) -> None:
    kinds = tally.kinds
    denied = sum(tally.denials.values())
    print(f"the log, read back through GET /v1/log/leaves: {tally.events} events")
    print(f"  institutions  {kinds['institution.registered']} registered")
    print(
        f"  residents     {residents} registered ({plural(children, 'child', 'children')}), "
        "in the log as pseudonyms only"
    )
    print(
        f"  consents      {kinds['consent.granted']} granted, {kinds['consent.narrowed']} "
        f"narrowed, {kinds['consent.revoked']} revoked"
    )
    print(
        f"  decisions     {kinds['access.decided']}: {tally.permitted} permitted "
        f"({tally.breakglass} break-glass), {denied} denied ({_breakdown(tally.denials)})"
    )
    print(f"  releases      {kinds['access.released']}, each on a redeemed single-use grant")
    print(
        f"  refusals      {sum(tally.refusals.values())} redemptions refused "
        f"({_breakdown(tally.refusals)})"
    )
    print(f"  break-glass   {tally.breakglass}, {kinds['breakglass.justified']} justified")


def print_anchors(anchors: list[dict[str, Any]]) -> None:
    """The anchor records of ``GET /v1/log/anchors``."""
    first = anchors[0]["anchor"]
    print(f"anchored checkpoints (chain {first['chain_id']}, registry {first['contract']}):")
    print(f"  {'tree size':>10}  {'block':>6}  transaction")
    for anchor in anchors:
        record = anchor["anchor"]
        print(f"  {anchor['tree_size']:>10}  {record['block_number']:>6}  {record['tx_hash']}")
    print()


def print_history(subject: str, entries: list[dict[str, Any]]) -> None:
    """A resident's ``GET /v1/me/access-history``, one line an entry."""
    receipts = sum(entry["receipt"] is not None for entry in entries)
    print(
        f"who viewed my records: resident {short(subject)} reads {len(entries)} entries, "
        f"{receipts} with a receipt:"
    )
    for entry in entries:
        notes = [
            entry["refusal"] or entry["reason"],
            "break-glass" if entry["breakglass"] else None,
        ]
        said = ", ".join(note for note in notes if note)
        print(
            f"  leaf {entry['leaf_index']:>5}  {entry['decision']:<8}  {entry['requester']} "
            f"from {entry['holder']}: {', '.join(entry['categories'])} for {entry['purpose']}"
            f"{f' ({said})' if said else ''}"
        )


def print_sign_in(ledger: LedgerSettings, key_files: dict[str, Path], subject: str) -> None:
    """How each role signs in to what the day left behind, as lines to copy."""
    flags = f"--data-dir {ledger.data_dir}"
    if ledger.database_url is not None:
        flags += f" --database-url {ledger.database_url}"
    if ledger.origin != LedgerSettings.model_fields["origin"].default:
        flags += f" --origin {ledger.origin}"
    hospital, key_file = next(iter(key_files.items()))
    print(
        f"\nto look around: consent-ledger serve {flags}, then open http://127.0.0.1:8000 and "
        "sign in"
    )
    print(
        f"  as a resident   /app/ with the token of: consent-ledger issue-token {flags} "
        f"--role resident --subject {subject[:10]}"
    )
    print(
        f"  as a hospital   /console/hospital with the id {hospital} and the key file "
        f"{key_file} (each institution's is in {key_file.parent})"
    )
    print(
        f"  as a regulator  /console/regulator with the token of: consent-ledger issue-token "
        f"{flags} --role regulator --subject regulator-1"
    )
    print(
        f"  as the admin    the API (/docs) with the token of: consent-ledger issue-token "
        f"{flags} --role admin --subject ops; a new hospital and its key: consent-ledger "
        f"institution add {flags} --id ID --name NAME --type hospital"
    )
