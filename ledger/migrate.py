"""``consent-ledger migrate``: bring a database from before format 2 to format 2, checked.

Format 2 adds no rows: tiles are cut from the nodes every log already stores. So migrating is
checking, then recording the format: the database against its witness (as every open does),
every tile of the newest signed tree against the stored node above it, and the root those
tiles give against that checkpoint's signed root. An empty log with no checkpoint signs its
size-0 one. The origin stays what it is; a log on the old shared default is warned about.
"""

from __future__ import annotations

from typing import Any

from hashing import root_from_tiles, tiles_for_size

from .errors import ConfigurationError, IntegrityError
from .log import Ledger
from .origin import FORMAT_META, LOG_FORMAT, shared_origin_warning
from .tiles import HASH_SIZE, read_tile


def check_tiles(ledger: Ledger) -> tuple[int, int]:
    """Read and check every tile of the newest signed tree; return (tree size, tiles)."""
    latest = ledger.latest_checkpoint()
    if latest is None:
        return 0, 0
    size = latest.tree_size
    read: dict[Any, list[bytes]] = {}
    for tile in tiles_for_size(size):
        data = read_tile(ledger, tile)
        read[tile] = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
    if root_from_tiles(size, read.__getitem__) != ledger.signed_root(size, latest.note):
        raise IntegrityError(
            f"the log's tiles do not give the signed root of size {size}: the log's storage is "
            "damaged (run: consent-ledger fsck)"
        )
    return size, len(read)


def migrate(ledger: Ledger) -> dict[str, Any]:
    """Check a log and record format 2 (nothing to do on a log already of format 2)."""
    warning = shared_origin_warning(ledger.origin)
    if ledger.log_format == LOG_FORMAT:
        return {
            "migrated": False,
            "format": LOG_FORMAT,
            "origin": ledger.origin,
            "warning": warning,
        }
    if ledger.log_format is not None:
        raise ConfigurationError(
            f"this log's database is of format {ledger.log_format!r}, which this version "
            f"does not know (it writes {LOG_FORMAT!r}); nothing was changed"
        )
    ledger.check_storage()
    size, tiles = check_tiles(ledger)
    ledger.store.set_meta_once(FORMAT_META, LOG_FORMAT)
    ledger.log_format = LOG_FORMAT
    if ledger.latest_checkpoint() is None and ledger.tree_size() == 0:
        ledger.checkpoint()
    return {
        "migrated": True,
        "format": LOG_FORMAT,
        "origin": ledger.origin,
        "signed_tree_size": size,
        "tiles_checked": tiles,
        "warning": warning,
    }
