"""The service's secret files in the data dir: created once (mode 0600), refused if too open."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from ledger.errors import KeyFileError


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
