"""The ``consent-ledger`` command: the log's commands plus the service's (``serve``, tokens).

It lives here, above ``ledger``, so that the log's own CLI never imports the API.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, Final

from ledger import cli as ledger_cli
from ledger.anchoring import preflight
from ledger.errors import ConfigurationError
from ledger.fsck import FsckReport
from ledger.log import Ledger
from ledger.settings import LedgerSettings

from .cli_institutions import register_institution
from .cli_tokens import cmd_issue_token, register_issue_token
from .settings import ApiSettings, served_url


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from . import serving
    from .app import check_key_files

    if args.workers > 1:
        url = args.database_url or LedgerSettings().resolved_database_url()
        if not url.startswith("postgresql"):
            # Each worker has its own group committer and its own per-resident locks; on SQLite
            # they would fight for the one write lock, and one resident's consent changes in two
            # processes would no longer take turns. PostgreSQL's advisory locks make them do so.
            raise ConfigurationError(
                "--workers > 1 needs PostgreSQL (CONSENT_LEDGER_DATABASE_URL=postgresql://...); "
                "on SQLite serve with one worker"
            )

    # A rolled-back or forked database is refused here, with the log's message and exit 2,
    # before uvicorn would report only that the application failed to start.
    ledger = ledger_cli.settings_of(args)
    preflight(ledger)
    check_key_files(ApiSettings(ledger=ledger))  # likewise the platform's
    # Worker processes build their own app from the environment: pass the options there.
    for name, env in (
        ("data_dir", "CONSENT_LEDGER_DATA_DIR"),
        ("database_url", "CONSENT_LEDGER_DATABASE_URL"),
        ("origin", "CONSENT_LEDGER_ORIGIN"),
    ):
        value = getattr(args, name, None)
        if value is not None:
            os.environ[env] = str(value)
    os.environ.setdefault("CONSENT_API_PUBLIC_URL", served_url(args.host, args.port))
    uvicorn.run(
        "consent_api.app:app_from_env",
        factory=True,
        http=serving.PROTOCOL,  # uvicorn's, with deadlines for headers and bodies
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
    )
    return 0


def register_serve(sub: Any, common: argparse.ArgumentParser) -> None:
    text = "run the consent service (HTTP) on the log; settings from the environment"
    serve = sub.add_parser("serve", parents=[common], help=text, description=text)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1; 0.0.0.0 for every interface)",
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default: 1; more need PostgreSQL)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's log level (default: info)",
    )
    serve.set_defaults(handler=cmd_serve)


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo  # the app and its routes: loaded for this command only

    ledger = ledger_cli.settings_of(args)
    # Each run is a new day on a new platform, so that running the demo again never collides.
    ledger = ledger.model_copy(update={"data_dir": demo.next_day_dir(ledger.data_dir)})
    return demo.run_day(demo.demo_settings(ledger), residents=args.residents, seed=args.seed)


def register_demo(sub: Any, common: argparse.ArgumentParser) -> None:
    """Make ``demo`` play a day through the service (the log's own demo only appends events)."""
    command = sub.choices["demo"]
    command.description = (
        "play one day on a regional health platform through the consent service, on the "
        "embedded defaults, in a new directory DATA_DIR/demo/day-NNN, and print what happened"
    )
    for action in command._actions:
        if action.dest == "events":
            action.help = argparse.SUPPRESS  # the log-only demo's option; the day ignores it
    command.add_argument("--residents", type=int, default=300, help="residents on the platform")
    command.add_argument("--seed", type=int, default=7, help="the same seed plays the same day")
    command.set_defaults(handler=cmd_demo)


def register_init(sub: Any, common: argparse.ArgumentParser) -> None:
    """Make ``init`` create the service's platform key files too (token and pseudonym keys,
    pinned in the database), so that nothing after ``init`` ever creates one: a key file found
    missing later is a lost file, refused (``keyfiles.refuse_lost``)."""
    command = sub.choices["init"]
    init_log = command.get_default("handler")

    def init(args: argparse.Namespace) -> int:
        from .app import check_key_files

        code: int = init_log(args)
        if code == 0:
            check_key_files(ApiSettings(ledger=ledger_cli.settings_of(args)))
        return code

    command.description = f"{command.description}, and the service's platform key files"
    command.set_defaults(handler=init)


def register_fsck(sub: Any, common: argparse.ArgumentParser) -> None:
    """Make ``fsck`` scrub the service's projections and grants too, after the log."""
    command = sub.choices["fsck"]
    command.description = (
        f"{command.description}; then the service's projections and grants against the leaves"
    )
    command.set_defaults(fsck_checks=[check_service_tables])


def check_service_tables(ledger: Ledger, report: FsckReport) -> None:
    from .fsck_checks import check_service_tables as check  # the service's tables: for fsck only

    check(ledger, report)


__all__ = ["cmd_issue_token", "main", "parser", "register_demo", "register_issue_token"]

EXTENSIONS: Final = (
    register_init,
    register_serve,
    register_issue_token,
    register_institution,
    register_demo,
    register_fsck,
)


def parser() -> argparse.ArgumentParser:
    """The whole ``consent-ledger`` command line, as ``main`` parses it."""
    return ledger_cli.build_parser(EXTENSIONS)


def main(argv: Sequence[str] | None = None) -> int:
    return ledger_cli.main(argv, extensions=EXTENSIONS)


if __name__ == "__main__":
    sys.exit(main())
