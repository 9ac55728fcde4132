"""The files the command line reads (keys, checkpoints, proofs, receipts, policies): each failure
names the file and says where a right one comes from, never a bare ``[Errno 2]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hashing import NoteVerifier

from .errors import InputFileError

KEY_HINT = "consent-ledger key > log.vkey writes one; the service serves it at GET /v1/log/key"


def read_text(path: str | Path, what: str, hint: str) -> str:
    """The text of the file at ``path`` (a ``what``); ``hint`` says how to get one."""
    try:
        return Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{what} {path}: no such file ({hint})") from None
    except IsADirectoryError:
        raise InputFileError(f"{what} {path} is a directory, not a file ({hint})") from None
    except UnicodeDecodeError:
        raise InputFileError(f"{what} {path} is not text ({hint})") from None
    except OSError as exc:
        raise InputFileError(f"cannot read the {what} {path}: {exc.strerror}") from None


def read_json(path: str | Path, what: str, hint: str) -> dict[str, Any]:
    """The JSON object in the file at ``path``."""
    text = read_text(path, what, hint)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputFileError(f"{path} is not JSON ({exc}); {hint}") from None
    if not isinstance(value, dict):
        raise InputFileError(f"{path} holds JSON but not an object, so no {what}; {hint}")
    return value


def load_key(value: str) -> NoteVerifier:
    """A log's public key given as C2SP vkey text or as the path of a file holding it."""
    path = Path(value)
    if path.is_file() or "+" not in value:
        text = read_text(path, "key file", KEY_HINT)
        where = f"{path} is not a key in the C2SP vkey format (NAME+HASH+BASE64, one line)"
    else:
        text, where = value, f"{value!r} is not a key in the C2SP vkey format (NAME+HASH+BASE64)"
    try:
        return NoteVerifier.from_vkey(text.strip())
    except ValueError as exc:
        raise InputFileError(f"{where}: {exc}; {KEY_HINT}") from None
