"""The service's secret files in the data dir: created once (mode 0600), refused if too open,
and pinned to the deployment: the database keeps a fingerprint of each (``log_meta``), so a
missing or different file is refused instead of silently replaced, as the log's key is."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from sqlalchemy import inspect, literal, select, table

from ledger.errors import KeyFileError
from ledger.store import LedgerStore


def load_or_create_secret(path: Path, create: Callable[[], bytes]) -> bytes:
    """The bytes of the secret file at ``path``; on first use write ``create()`` there, mode 0600.

    Of two processes starting at once exactly one file wins whole (written aside, then linked
    into place), and both return its content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return read_secret(path)
    content = create()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)  # atomic, and refuses an existing name
    except FileExistsError:
        return read_secret(path)
    finally:
        tmp.unlink()
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # a second key after a power loss would orphan what the first made
    finally:
        os.close(directory)
    return content


def read_secret(path: Path) -> bytes:
    """Read a secret file, refusing one that its group or others may read or write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} is open to others (mode {stat.filemode(mode)}); run: chmod 600 {path}"
        )
    return path.read_bytes()


# -- pinned to the deployment ----------------------------------------------------------------

PIN_PREFIX: Final = "platform-key:"
"""``log_meta`` names the fingerprint of each secret file under this prefix and its file name."""
SERVICE_TABLES: Final = (
    "resident_key",
    "resident_erasure",
    "institution",
    "consent_record",
    "access_record",
    "grant",
)
"""Tables only the service writes: a row in any means the deployment is in use."""


def pinned_secret(
    path: Path, store: LedgerStore, create: Callable[[], bytes] | None, *, loses: str
) -> bytes:
    """The secret file at ``path``, created (``create``) only for a deployment that never had
    one: KeyFileError if it is missing where the database pinned it (``hold_to_pin``) or where
    the service was already used before pins were kept. ``loses``: what a new one would cost.

    Checked before anything is written, so a refused start leaves the data dir as it was.
    """
    if not path.exists():
        refuse_lost(store, [(path, loses)], creating=create is not None)
        assert create is not None  # refused otherwise
        return load_or_create_secret(path, create)
    return read_secret(path)


def refuse_lost(
    store: LedgerStore, files: Sequence[tuple[Path, str]], *, creating: bool = True
) -> None:
    """KeyFileError for the first of ``files`` (each with what a new one would cost) that is
    missing where the deployment had it: a start checks all its files so before it creates or
    pins any. Without ``creating``, any missing file is refused."""
    for path, loses in files:
        if path.exists():
            continue
        pinned = store.get_meta(PIN_PREFIX + path.name)
        if pinned is not None or not creating or in_use(store):
            known = "" if pinned is None else f" (fingerprint {pinned})"
            raise KeyFileError(
                f"{path} is missing, and this deployment was set up with it{known}; a new key "
                f"would {loses}: restore the file from the data dir's backup"
            )


def hold_to_pin(store: LedgerStore, path: Path, fingerprint: str, *, record: bool = True) -> None:
    """Refuse (KeyFileError) a secret file other than the one the deployment pinned; pin it the
    first time (unless ``record`` is false: a read-only check, ``fsck``)."""
    name = PIN_PREFIX + path.name
    pinned = store.set_meta_once(name, fingerprint) if record else store.get_meta(name)
    if pinned is not None and pinned != fingerprint:
        raise KeyFileError(
            f"{path} is not the key this deployment was set up with (fingerprint {pinned}, "
            f"the file's is {fingerprint}): restore the file from the data dir's backup"
        )


def in_use(store: LedgerStore) -> bool:
    """Whether any table only the service writes has a row (for deployments from before pins)."""
    present = set(inspect(store.engine).get_table_names()) & set(SERVICE_TABLES)
    with store.read() as conn:
        return any(
            conn.execute(select(literal(1)).select_from(table(name)).limit(1)).first() is not None
            for name in sorted(present)
        )
