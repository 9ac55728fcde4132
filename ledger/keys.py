"""The log's Ed25519 signing key: created on first use, kept in a file only its owner can read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hashing import NoteSigner

from .errors import KeyFileError


def load_or_create_signer(path: Path, name: str) -> NoteSigner:
    """Load the signing key at ``path``, creating it (mode 0600) if there is none yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _load(path, name)
    signer = NoteSigner.generate(name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(signer.to_skey() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        # link() is atomic and refuses an existing name: of two first starts, one key wins whole.
        os.link(tmp, path)
    except FileExistsError:
        return _load(path, name)
    finally:
        tmp.unlink()
    # The new name must survive a power loss too, or a later start would make a second key.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return signer


def _load(path: Path, name: str) -> NoteSigner:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} is readable by others (mode {stat.filemode(mode)}); run: chmod 600 {path}"
        )
    text = path.read_text(encoding="ascii").strip()
    try:
        signer = NoteSigner.from_skey(text)
    except ValueError as exc:
        raise KeyFileError(f"{path} does not hold a signing key: {exc}") from exc
    if signer.name != name:
        raise KeyFileError(f"{path} is the key of {signer.name!r}, not of this log ({name!r})")
    return signer
