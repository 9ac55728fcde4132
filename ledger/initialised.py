"""What makes a data dir a platform, and the refusal of one that is not.

A log is *initialised* when ``consent-ledger init`` has run: its signing key file
(``<data_dir>/log.key``) exists and its database records the log's public key (``log_meta``).
The command line refuses every other data dir before anything is opened, so that a mistyped
``--data-dir`` or ``--database-url`` cannot quietly start a new, empty platform with keys of its
own. (``Ledger.open`` itself still creates on first use: tests and embedders call it directly.)
"""

from __future__ import annotations

from .engine import read_meta_if_any, shown_url
from .errors import NotInitialisedError
from .settings import LedgerSettings


def require_initialised(settings: LedgerSettings) -> None:
    """Raise NotInitialisedError unless ``consent-ledger init`` made the log ``settings`` name.

    A database that holds a log whose key file is missing passes: ``Ledger.open`` says to
    restore the key, which is what that case needs.
    """
    url = settings.resolved_database_url()
    if read_meta_if_any(url, "vkey") is not None:
        return
    data_dir = settings.data_dir
    if not settings.key_path.is_file():
        where = "" if settings.database_url is None else f" (nor in the database {shown_url(url)})"
        raise NotInitialisedError(
            f"no platform in {data_dir}{where}: it was never initialised. If this is a new "
            f"platform, create it with: consent-ledger init --data-dir {data_dir}; otherwise "
            "fix --data-dir (or CONSENT_LEDGER_DATA_DIR) to name the platform's data dir"
        )
    raise NotInitialisedError(
        f"the database {shown_url(url)} holds no log, though {settings.key_path} is one's key: fix "
        "--database-url (or CONSENT_LEDGER_DATABASE_URL) to name the log's database, or run "
        f"consent-ledger init --data-dir {data_dir} --database-url URL to create a log in it"
    )
