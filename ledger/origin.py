"""The log's name (its checkpoint origin line) and format: chosen once, pinned in the database.

A new log gets a name of its own unless one is given: ``consent-ledger/<16 random hex>``, so
two deployments' checkpoints never look alike and their registry log ids (SHA-256 of the
origin, ``ledger.anchoring.log_id_for``) never collide. A deployment that serves its tiles
should name the log after the scheme-less URL prefix they are served under (C2SP
tlog-tiles), e.g. ``--origin ledger.city.example/tlog`` at ``init``. The name is recorded
beside the public key in ``log_meta`` the first time the log is opened; the signing key
carries it too (a signed-note key name), and both are checked on every open.

``format`` records what a log's database holds. A database without it predates tiles and
the signed size-0 checkpoint: it is refused until ``consent-ledger migrate`` has checked it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from hashing import NoteSigner

from .errors import ConfigurationError

LOG_FORMAT = "2"
"""2: tiles are cut from the stored nodes, a new log signs its empty tree, origin unique."""
LEGACY_ORIGIN = "consent-ledger.local/log"
"""The origin every log had before format 2 unless told otherwise; shared by all of them."""
FORMAT_META = "format"
ORIGIN_META = "origin"


def new_origin() -> str:
    """A name no other deployment has: 64 random bits, so collisions need billions of logs."""
    return f"consent-ledger/{secrets.token_hex(8)}"


def key_name(path: Path) -> str | None:
    """The log name a signing key file carries, or None when there is no readable key."""
    try:
        return NoteSigner.from_skey(path.read_text(encoding="ascii").strip()).name
    except (OSError, ValueError):
        return None


def pin_origin(pinned: str | None, asked: str | None, key_path: Path) -> str:
    """The origin a log opens under: the pinned one (``asked`` must agree), else for a new
    log the one asked for, the existing key's name, or a new unique one."""
    if pinned is not None:
        if asked is not None and asked != pinned:
            raise ConfigurationError(
                f"this database holds the log {pinned!r}, not {asked!r}: a log keeps the name "
                "it was created with (leave --origin / CONSENT_LEDGER_ORIGIN unset, or set it "
                "to that name); a new name means a new log (a new data dir and database)"
            )
        return pinned
    return asked or key_name(key_path) or new_origin()


def format_problem(log_format: str | None, origin: str) -> str:
    """Why a database of ``log_format`` is not opened by this version."""
    if log_format is None:
        return legacy_message(origin)
    return (
        f"this log's database is of format {log_format!r}, which this version of "
        f"consent-ledger does not read (it reads {LOG_FORMAT!r}): run the version that wrote it"
    )


def shared_origin_warning(origin: str) -> str | None:
    if origin != LEGACY_ORIGIN:
        return None
    return (
        f"this log's origin {origin!r} is the old shared default: other deployments that kept "
        "it sign checkpoints that look like this log's and anchor under the same registry log "
        "id; it cannot be renamed (its checkpoints, key and anchors name it), so a unique name "
        "needs a new log"
    )


def legacy_message(origin: str) -> str:
    warning = shared_origin_warning(origin)
    shared = "" if warning is None else f" Note: {warning}."
    return (
        "this log's database was created before C2SP tiles (no log format is recorded): "
        "run: consent-ledger migrate, which checks that its tiles give its signed roots and "
        f"records the format; nothing is served or appended until then.{shared}"
    )
