"""``consent-ledger tiles export DIR`` and ``consent-ledger migrate``: the log as C2SP
tlog-tiles in a plain directory, and the move of an older database to the current format."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .log import Ledger
from .settings import LedgerSettings

SettingsOf = Callable[[argparse.Namespace], LedgerSettings]


def register(sub: Any, common: argparse.ArgumentParser, settings_of: SettingsOf) -> None:
    tiles = sub.add_parser(
        "tiles",
        help="the log as C2SP tlog-tiles",
        description="The log as C2SP tlog-tiles: checkpoint and hash tiles.",
    )
    what = tiles.add_subparsers(dest="what", required=True)
    export = what.add_parser(
        "export",
        parents=[common],
        help="write the newest signed checkpoint and its tiles to a directory",
        description="Write <DIR>/checkpoint and <DIR>/tile/<L>/<N>[.p/<W>] for the newest "
        "signed checkpoint; serve DIR with any static web server as the log's prefix. Full "
        "tiles already there are kept; the checkpoint is written last. Entry bundles are not "
        "written (leaves hold clear events).",
    )
    export.add_argument("directory", type=Path, help="where to write (created if missing)")
    export.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="keep exporting every SECONDS (until interrupted)",
    )
    export.set_defaults(handler=lambda args: _export(args, settings_of(args)))
    migrate = sub.add_parser(
        "migrate",
        parents=[common],
        help="check a database from before tiles and record the current format",
        description="A database written before C2SP tiles is refused until this has checked "
        "it (witness, tiles against the signed root) and recorded the format. Its origin "
        "stays.",
    )
    migrate.set_defaults(handler=lambda args: _migrate(settings_of(args)))


def _export(args: argparse.Namespace, settings: LedgerSettings) -> int:
    from .tiles import export_tiles

    ledger = Ledger.open(settings)
    try:
        while True:
            report = export_tiles(ledger, args.directory)
            print(json.dumps(report.to_dict(), sort_keys=True), flush=True)
            if args.watch is None:
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
    finally:
        ledger.close()


def _migrate(settings: LedgerSettings) -> int:
    from .migrate import migrate

    ledger = Ledger.open_unchecked(settings)
    try:
        report = migrate(ledger)
    finally:
        ledger.close()
    if report["warning"]:
        print(f"consent-ledger: warning: {report['warning']}", file=sys.stderr)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0
