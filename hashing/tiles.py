"""C2SP tlog-tiles: which hash tiles a tree has, and their paths.

A tile is a run of at most 256 consecutive hashes of one tree level. Tile level ``L`` holds
the hashes of the perfect subtrees of ``256**L`` leaves (tree level ``8 * L``), so the tile
``(L, N)`` holds the nodes ``(8 * L, N * 256 + i)`` for ``i`` below its width. A full tile is
256 hashes wide; the rightmost tile of a level may be partial (1 to 255), written
``.p/<W>``. Paths: ``tile/<L>/<N>[.p/<W>]``, ``N`` in 3-digit groups, all but the last
prefixed ``x`` (index 1234067 is ``x001/x234/067``). Pure computation; nothing here reads
storage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hashing.compact import CompactRange
from hashing.errors import TilePathError, TreeArgumentError
from hashing.nodes import NodeID, range_nodes
from hashing.rfc6962 import check_hash_lengths, node_hash

TILE_HEIGHT = 8
"""Tree levels per tile level."""
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile."""
MAX_TILE_LEVEL = 63

_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_GROUP = re.compile(r"[0-9]{3}")


@dataclass(frozen=True, slots=True, order=True)
class TileID:
    """The tile at tile level ``level``, position ``index``, of ``width`` hashes."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not 0 <= self.level <= MAX_TILE_LEVEL:
            raise TilePathError(f"tile level {self.level} is not between 0 and {MAX_TILE_LEVEL}")
        if self.index < 0:
            raise TilePathError(f"tile index {self.index} is negative")
        if not 1 <= self.width <= TILE_WIDTH:
            raise TilePathError(f"tile width {self.width} is not between 1 and {TILE_WIDTH}")

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def node_level(self) -> int:
        """The tree level of the hashes in this tile."""
        return TILE_HEIGHT * self.level

    @property
    def first_node(self) -> int:
        """The index, within ``node_level``, of the tile's first hash."""
        return self.index * TILE_WIDTH

    def node_ids(self) -> list[NodeID]:
        """The tree nodes whose hashes make up the tile, left to right."""
        return [NodeID(self.node_level, self.first_node + i) for i in range(self.width)]

    def tree_size_needed(self) -> int:
        """The smallest tree size holding every node of this tile."""
        return (self.first_node + self.width) << self.node_level

    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]``."""
        suffix = "" if self.full else f".p/{self.width}"
        return f"tile/{self.level}/{encode_index(self.index)}{suffix}"


def encode_index(index: int) -> str:
    """``index`` as 3-digit path elements, all but the last prefixed ``x``."""
    if index < 0:
        raise TilePathError(f"tile index {index} is negative")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def parse_tile_path(path: str) -> TileID:
    """The tile a ``<L>/<N>[.p/<W>]`` path (what follows ``tile/``) names; only the canonical
    spelling is accepted, so one tile has one path."""
    parts = path.split("/")
    width = TILE_WIDTH
    if len(parts) >= 3 and parts[-2].endswith(".p"):
        if not _WIDTH.fullmatch(parts[-1]) or int(parts[-1]) >= TILE_WIDTH:
            raise TilePathError(f"{path!r}: a partial tile's width is 1 to 255")
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2][: -len(".p")]]
    if len(parts) < 2 or not _LEVEL.fullmatch(parts[0]):
        raise TilePathError(f"{path!r} is not <level>/<index>[.p/<width>]")
    level, groups = int(parts[0]), parts[1:]
    if not all(group.startswith("x") for group in groups[:-1]):
        raise TilePathError(f"{path!r}: every index element but the last starts with x")
    digits = [group.removeprefix("x") for group in groups[:-1]] + [groups[-1]]
    if not all(_GROUP.fullmatch(group) for group in digits):
        raise TilePathError(f"{path!r}: index elements are 3 digits")
    index = int("".join(digits))
    tile = TileID(level, index, width)
    if tile.path() != f"tile/{path}":
        raise TilePathError(f"{path!r} is not the canonical path of {tile.path()!r}")
    return tile


def tiles_for_size(tree_size: int) -> list[TileID]:
    """Every tile of the tree of ``tree_size`` leaves, full and partial, level by level."""
    if tree_size < 0:
        raise TilePathError(f"tree size {tree_size} is negative")
    tiles: list[TileID] = []
    level = 0
    while tree_size >> (TILE_HEIGHT * level):
        hashes = tree_size >> (TILE_HEIGHT * level)
        full, partial = divmod(hashes, TILE_WIDTH)
        tiles.extend(TileID(level, index) for index in range(full))
        if partial:
            tiles.append(TileID(level, full, partial))
        level += 1
    return tiles


def tile_in_tree(tile: TileID, tree_size: int) -> bool:
    """Whether every hash of ``tile`` is a node of the tree of ``tree_size`` leaves."""
    return tile.tree_size_needed() <= tree_size


TileReader = Callable[[TileID], Sequence[bytes]]
"""The hashes of one tile, as many as its width."""


def root_from_tiles(tree_size: int, read_tile: TileReader) -> bytes:
    """The root of the tree of ``tree_size`` leaves, from the tiles of that tree alone.

    Each frontier node (a perfect subtree of ``2**h`` leaves) is the fold of ``2**(h % 8)``
    aligned hashes of one tile of level ``h // 8``; the frontier folds into the root.
    """
    if tree_size < 0:
        raise TilePathError(f"tree size {tree_size} is negative")
    frontier: list[bytes] = []
    read: dict[TileID, Sequence[bytes]] = {}
    for node in range_nodes(0, tree_size):
        level, rest = divmod(node.level, TILE_HEIGHT)
        first = node.index << rest
        index, offset = divmod(first, TILE_WIDTH)
        width = min(TILE_WIDTH, (tree_size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH)
        tile = TileID(level, index, width)
        if tile not in read:
            hashes = read_tile(tile)
            if len(hashes) != width:
                raise TreeArgumentError(f"{tile.path()} holds {len(hashes)} hashes, not {width}")
            check_hash_lengths(hashes, tile.path(), TreeArgumentError)
            read[tile] = hashes
        run = list(read[tile][offset : offset + (1 << rest)])
        while len(run) > 1:
            run = [node_hash(run[i], run[i + 1]) for i in range(0, len(run), 2)]
        frontier.append(run[0])
    return CompactRange.from_frontier(tree_size, frontier).root()
