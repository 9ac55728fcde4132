"""C2SP tlog-tiles maths: paths as the spec spells them, the tiles of a tree, and the root
rebuilt from tiles against a literal reading of the spec's MTH(D[...]) definition."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashing import (
    TILE_WIDTH,
    TileID,
    TilePathError,
    TreeArgumentError,
    leaf_hash,
    merkle_root,
    parse_tile_path,
    root_from_tiles,
    tile_in_tree,
    tiles_for_size,
)


def _leaves(count: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(count)]


def _spec_tile(leaves: list[bytes], tile: TileID) -> list[bytes]:
    # The spec's definition, literally: MTH(D[(n*256+i)*256**l : (n*256+i+1)*256**l]).
    span = 256**tile.level
    return [
        merkle_root(leaves[(tile.index * 256 + i) * span : (tile.index * 256 + i + 1) * span])
        for i in range(tile.width)
    ]


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (TileID(0, 0), "tile/0/000"),
        (TileID(0, 5, 17), "tile/0/005.p/17"),
        (TileID(1, 1234067), "tile/1/x001/x234/067"),  # the spec's example
        (TileID(2, 1000), "tile/2/x001/000"),
        (TileID(63, 999, 255), "tile/63/999.p/255"),
    ],
)
def test_paths_as_the_spec_spells_them(tile: TileID, path: str) -> None:
    assert tile.path() == path
    assert parse_tile_path(path.removeprefix("tile/")) == tile


@pytest.mark.parametrize(
    "path",
    [
        "0/x000/005",  # a leading zero group: not the canonical spelling
        "00/005",  # a leading zero in the level
        "64/000",  # level past 63
        "0/5",  # not 3 digits
        "0/x1/005",
        "0/005/",
        "0/005.p",
        "0/005.p/0",
        "0/005.p/256",  # partial tiles are 1 to 255 wide
        "0/005.p/05",
        "0/001/x002",  # the x goes on all but the last
        "entries/000",  # entry bundles are not hash tiles
        "-1/000",
        "",
    ],
)
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(TilePathError):
        parse_tile_path(path)


def test_the_specs_tree_of_70000() -> None:
    tiles = tiles_for_size(70_000)
    assert sum(1 for t in tiles if t.level == 0 and t.full) == 273
    assert [t for t in tiles if not (t.level == 0 and t.full)] == [
        TileID(0, 273, 112),
        TileID(1, 0),
        TileID(1, 1, 17),
        TileID(2, 0, 1),
    ]
    assert tiles_for_size(256) == [TileID(0, 0), TileID(1, 0, 1)]
    assert tiles_for_size(0) == []
    assert all(tile_in_tree(t, 70_000) for t in tiles)
    assert not tile_in_tree(TileID(0, 273), 70_000)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=3 * TILE_WIDTH**2 + 5))
def test_root_from_tiles_is_the_trees_root(size: int) -> None:
    leaves = _leaves(size)
    tiles = {t: _spec_tile(leaves, t) for t in tiles_for_size(size)}
    assert root_from_tiles(size, lambda t: tiles[t]) == merkle_root(leaves)


def test_root_from_tiles_refuses_a_short_tile() -> None:
    leaves = _leaves(300)
    tiles = {t: _spec_tile(leaves, t) for t in tiles_for_size(300)}
    tiles[TileID(0, 1, 44)] = tiles[TileID(0, 1, 44)][:-1]
    with pytest.raises(TreeArgumentError):
        root_from_tiles(300, lambda t: tiles[t])
