"""The embedded chain's dev key file: created at most once, durably, and read strictly.

The key is written to a temporary file (mode 0600) in the same directory and fsynced, then
``os.link`` puts it in place and the directory is fsynced. Whatever moment a crash comes at,
the key file either does not exist or holds a whole key; and ``link``, unlike ``rename``,
never replaces a key that is already there. Kept apart from :mod:`contracts.embedded` so it
loads without py-evm (the crash tests run it in many short processes).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from contracts.errors import ChainError

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Exactly what create_key writes.
_KEY_TEXT = re.compile(r"([0-9a-f]{64})\n?")


def load_or_create_key(path: Path) -> bytes:
    """The private key in ``path``, first writing a fresh random one there if it is absent."""
    try:
        return read_key(path)
    except FileNotFoundError:
        pass
    key = _random_key()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            # Someone else's key got there first; ours was never used.
            return read_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return key


def read_key(path: Path) -> bytes:
    """The private key in ``path``; FileNotFoundError if there is none, ChainError if the
    file is readable by others or holds anything but 64 lower-case hex digits (and a newline).
    """
    if path.stat().st_mode & 0o077:
        raise ChainError(f"{path} is accessible to other users; chmod 600 it")
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        text = ""
    match = _KEY_TEXT.fullmatch(text)
    if match is None:
        raise ChainError(f"{path} does not hold a private key (64 lower-case hex digits)")
    key = bytes.fromhex(match.group(1))
    if not 0 < int.from_bytes(key, "big") < SECP256K1_ORDER:
        raise ChainError(f"{path} holds a number that is not a secp256k1 private key")
    return key


def _random_key() -> bytes:
    while True:
        key = os.urandom(32)
        if 0 < int.from_bytes(key, "big") < SECP256K1_ORDER:
            return key


def _fsync_dir(directory: Path) -> None:
    """Make a link or unlink in ``directory`` durable (the entry, not just the file data)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
