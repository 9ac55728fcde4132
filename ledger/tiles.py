"""The log as C2SP tlog-tiles: hash tiles cut from the stored nodes, checked, cached, exported.

A tile is read as one range of stored rows (``LedgerStore.node_run``) and only within the
newest signed checkpoint's tree, so what is published is what the log signed. A full tile
never changes: the first read checks that its 256 hashes fold into the stored node above it
(the hash the tile one level up carries), then it is kept in memory. A partial tile is read
each time (one short range). Entry bundles (``tile/entries/...``) are not served: a leaf
holds its clear event today, and what is hashed is what a bundle would have to carry.

``export_tiles`` writes the checkpoint and every tile of its tree to a directory any static
web server or object store can serve as the log's prefix: full tiles once (they are immutable;
those an earlier export of this log wrote are not read again), the partial tiles of the
checkpoint's size, the tiles' root checked against the signed root, and the checkpoint file
last, so a reader never finds a checkpoint whose tiles are missing.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hashing import (
    TILE_WIDTH,
    HashingError,
    TileID,
    VerificationError,
    open_checkpoint,
    root_from_tiles,
    tile_in_tree,
    tiles_for_size,
)

from .errors import IntegrityError, TreeSizeError
from .log import Ledger

HASH_SIZE = 32
FULL_TILES_KEPT = 4096
"""Full tiles kept in memory (8 KiB each: 32 MiB at most)."""

_DAMAGED = "the log's storage is damaged (run: consent-ledger fsck)"


@dataclass(frozen=True, slots=True)
class TileBytes:
    """A tile's bytes, its entity tag, and whether it can never change (a full tile)."""

    data: bytes
    etag: str
    immutable: bool


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


class LogTiles:
    """The tiles of one ledger, within its newest signed checkpoint."""

    def __init__(self, ledger: Ledger, kept: int = FULL_TILES_KEPT) -> None:
        self.ledger = ledger
        self._kept = kept
        self._full: OrderedDict[TileID, TileBytes] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, tile: TileID) -> TileBytes | None:
        """A full tile already read and checked, or None."""
        with self._lock:
            found = self._full.get(tile)
            if found is not None:
                self._full.move_to_end(tile)
            return found

    def tile(self, tile: TileID) -> TileBytes:
        """The tile's bytes; TreeSizeError if it is not in the newest signed tree."""
        found = self.cached(tile)
        if found is not None:
            return found
        data = read_tile(self.ledger, tile)
        found = TileBytes(data, etag_of(data), tile.full)
        if tile.full:
            with self._lock:
                self._full[tile] = found
                while len(self._full) > self._kept:
                    self._full.popitem(last=False)
        return found


def read_tile(ledger: Ledger, tile: TileID) -> bytes:
    """Read one tile from storage; a full tile is checked against the stored node above it."""
    if tile.full:
        return read_full_tiles(ledger, tile.level, tile.index, 1)[0]
    signed, hashes = ledger.store.node_run(tile.node_level, tile.first_node, tile.width)
    _check_signed(tile, signed, tile)
    if len(hashes) != tile.width:
        raise IntegrityError(f"{tile.path()}: some of its nodes are missing: {_DAMAGED}")
    return b"".join(hashes)


def read_full_tiles(ledger: Ledger, level: int, first: int, count: int) -> list[bytes]:
    """Read the full tiles ``(level, first + i)`` for ``i < count`` (one range read), each
    checked: its 256 hashes must fold into the stored node above it."""
    start, end = TileID(level, first), TileID(level, first + count - 1)
    signed, hashes = ledger.store.node_run(start.node_level, start.first_node, count * TILE_WIDTH)
    _check_signed(end, signed, start)
    _, above = ledger.store.node_run(start.node_level + 8, first, count)
    if len(hashes) != count * TILE_WIDTH or len(above) != count:
        raise IntegrityError(f"{start.path()}: some of its nodes are missing: {_DAMAGED}")
    tiles = []
    for n in range(count):
        run = hashes[n * TILE_WIDTH : (n + 1) * TILE_WIDTH]
        if _fold(run) != above[n]:
            where = TileID(level, first + n).path()
            raise IntegrityError(
                f"{where}: its hashes do not fold into the stored node above: {_DAMAGED}"
            )
        tiles.append(b"".join(run))
    return tiles


def _check_signed(last: TileID, signed: int | None, named: TileID) -> None:
    if signed is None or not tile_in_tree(last, signed):
        have = "no checkpoint yet" if signed is None else f"the newest is of size {signed}"
        raise TreeSizeError(f"{named.path()} is not in a signed tree of this log ({have})")


def _fold(hashes: list[bytes]) -> bytes:
    sha256 = hashlib.sha256
    run = hashes
    while len(run) > 1:
        run = [sha256(b"\x01" + run[i] + run[i + 1]).digest() for i in range(0, len(run), 2)]
    return run[0]


@dataclass(frozen=True, slots=True)
class ExportReport:
    directory: str
    tree_size: int
    tiles_written: int
    tiles_kept: int

    def to_dict(self) -> dict[str, int | str]:
        return {
            "directory": self.directory,
            "tree_size": self.tree_size,
            "tiles_written": self.tiles_written,
            "tiles_kept": self.tiles_kept,
        }


def export_tiles(ledger: Ledger, directory: Path, note: str | None = None) -> ExportReport:
    """Write the newest signed checkpoint (or ``note``, a cosigned copy of it) and its tiles
    under ``directory``; a full tile already there is kept (it cannot change)."""
    latest = ledger.latest_checkpoint()
    if latest is None:
        raise TreeSizeError("the log has no signed checkpoint yet (run: consent-ledger init)")
    size = latest.tree_size
    root = ledger.signed_root(size, latest.note)
    written = kept = 0
    exported = _exported_size(ledger, directory, size)
    wanted: list[TileID] = []
    for tile in tiles_for_size(size):
        if (
            tile.full
            and tile.tree_size_needed() <= exported
            and _full_tile_file(directory / tile.path())
        ):
            kept += 1
        else:
            wanted.append(tile)
    for tile, data in _read_runs(ledger, wanted):
        _write_atomically(directory / tile.path(), data, sync=False)
        written += 1

    def from_files(tile: TileID) -> list[bytes]:
        data = (directory / tile.path()).read_bytes()
        return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]

    if root_from_tiles(size, from_files) != root:
        raise IntegrityError(
            f"the tiles under {directory} do not give the signed root of size {size}: the "
            f"directory holds tiles of another log, or {_DAMAGED}"
        )
    # Tiles are renamed into place unsynced (an fsync each would cost more than the appends
    # they follow); the checkpoint is synced, last. On a journalling file system that orders
    # data before the metadata naming it (ext4's default), the tiles are then on disk too;
    # elsewhere a tile lost to a crash is rewritten by the next export (a full tile is kept
    # only when it is whole).
    _write_atomically(directory / "checkpoint", (note or latest.note).encode("utf-8"), sync=True)
    return ExportReport(str(directory), size, written, kept)


def _read_runs(ledger: Ledger, tiles: list[TileID]) -> Iterator[tuple[TileID, bytes]]:
    """The tiles' bytes, consecutive full tiles of a level read together (in runs of 64)."""
    run: list[TileID] = []
    for tile in [*tiles, None]:
        if run and (
            tile is None
            or not tile.full
            or tile.level != run[0].level
            or tile.index != run[-1].index + 1
            or len(run) == 64
        ):
            read = read_full_tiles(ledger, run[0].level, run[0].index, len(run))
            yield from zip(run, read, strict=True)
            run = []
        if tile is not None and tile.full:
            run.append(tile)
        elif tile is not None:
            yield tile, read_tile(ledger, tile)


def _exported_size(ledger: Ledger, directory: Path, size: int) -> int:
    """The size of the checkpoint an earlier export of this log left in ``directory`` (its
    full tiles below that size are this log's), or 0 if there is none of this log's."""
    try:
        note = (directory / "checkpoint").read_text("utf-8")
        earlier = open_checkpoint(note, ledger.verifier, ledger.origin)
    except (OSError, UnicodeDecodeError, HashingError, VerificationError):
        return 0
    return earlier.tree_size if earlier.tree_size <= size else 0


def _full_tile_file(path: Path) -> bool:
    try:
        return path.stat().st_size == TILE_WIDTH * HASH_SIZE
    except FileNotFoundError:
        return False


def _write_atomically(path: Path, data: bytes, *, sync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        if sync:
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if sync:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
