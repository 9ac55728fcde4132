"""The ``consent-ledger`` command: the log's commands plus the service's (``serve``, tokens).

It lives here, above ``ledger``, so that the log's own CLI never imports the API.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ledger import cli as ledger_cli

from . import auth


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Worker processes build their own app from the environment: pass the options there.
    for name, env in (
        ("data_dir", "CONSENT_LEDGER_DATA_DIR"),
        ("database_url", "CONSENT_LEDGER_DATABASE_URL"),
        ("origin", "CONSENT_LEDGER_ORIGIN"),
    ):
        value = getattr(args, name, None)
        if value is not None:
            os.environ[env] = str(value)
    uvicorn.run(
        "consent_api.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
    )
    return 0


def register_serve(sub: Any, common: argparse.ArgumentParser) -> None:
    text = "run the consent service (HTTP) on the log; settings from the environment"
    serve = sub.add_parser("serve", parents=[common], help=text, description=text)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=cmd_serve)


def main(argv: Sequence[str] | None = None) -> int:
    return ledger_cli.main(argv, extensions=[register_serve, auth.register_cli])


if __name__ == "__main__":
    sys.exit(main())
