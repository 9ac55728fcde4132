"""The AnchorRegistry address a platform anchors in, remembered in ``<data_dir>/contract-address``
so that ``verify-receipt`` on the operator's machine need not be told it, and checked for form
so that a placeholder such as ``0x…`` is refused with where the real one comes from."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigurationError

FILE = "contract-address"
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
WHERE = (
    "the platform's operator has it in DATA_DIR/contract-address (written by consent-ledger "
    "anchor); the service lists it as anchor.contract in GET /v1/log/anchors; the auditor's "
    "deployment file names it too. Take it from a source you trust, not from the receipt"
)


def remember(data_dir: Path, address: str) -> None:
    """Write ``address`` to the data dir's file (whole or not at all) unless it is there."""
    path = data_dir / FILE
    if path.exists() and path.read_text("ascii").strip() == address:
        return
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    tmp.write_text(address + "\n", "ascii")
    os.replace(tmp, path)


def checked(address: str) -> str:
    """``address`` if it has the form of one (0x and 40 hex digits); ConfigurationError else."""
    if _ADDRESS.fullmatch(address.strip()) is None:
        raise ConfigurationError(
            f"--contract {address!r} is not an address (0x and 40 hex digits): {WHERE}"
        )
    return address.strip()


def recalled(data_dir: Path) -> str | None:
    """The address remembered in ``data_dir``, if any."""
    path = data_dir / FILE
    if not path.is_file():
        return None
    return checked(path.read_text("ascii"))
