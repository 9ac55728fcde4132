"""The log as C2SP tlog-tiles under ``/tlog``: ``/tlog/checkpoint`` and ``/tlog/tile/...``.

Public, as the rest of the log is. Full tiles never change: ``Cache-Control: public,
max-age=31536000, immutable``; partial tiles (the right edge of a signed tree) and the
checkpoint are cached briefly. Every answer carries an ``ETag`` and honours ``If-None-Match``.
Tiles come from ``ledger.tiles`` (only within the newest signed tree). Entry bundles
(``tile/entries/...``) are not served: leaves hold clear events today.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from hashing import TilePathError, parse_tile_path
from ledger.log import Ledger
from ledger.tiles import LogTiles, TileBytes, etag_of
from ledger.witnessing import Witnessing

from ..dependencies import get_ledger
from ..errors import NotFoundError
from .log import NOTE_MEDIA, published_note

router = APIRouter(prefix="/tlog", tags=["tiles"])

TILE_MEDIA = "application/octet-stream"
IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=60"
CHECKPOINT = "public, max-age=5"


def _tiles(request: Request) -> LogTiles:
    tiles: LogTiles = request.app.state.tiles
    return tiles


def _witnessing(request: Request) -> Witnessing | None:
    witnessing: Witnessing | None = getattr(request.app.state, "witnessing", None)
    return witnessing


def _answer(request: Request, data: bytes, etag: str, cache: str, media: str) -> Response:
    headers = {"Cache-Control": cache, "ETag": etag}
    if etag in request.headers.get("if-none-match", "").replace(" ", "").split(","):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media, headers=headers)


@router.get(
    "/checkpoint",
    responses={200: {"content": {"text/plain": {}}}, 404: {"description": "No checkpoint yet"}},
)
def checkpoint(
    request: Request,
    ledger: Annotated[Ledger, Depends(get_ledger)],
    witnessing: Annotated[Witnessing | None, Depends(_witnessing)],
) -> Response:
    """The log's published checkpoint (as ``/v1/log/checkpoint``), the tiles' root of trust."""
    note = published_note(ledger, witnessing).encode("utf-8")
    return _answer(request, note, etag_of(note), CHECKPOINT, NOTE_MEDIA)


@router.get(
    "/tile/{tile_path:path}",
    responses={
        200: {"content": {TILE_MEDIA: {}}, "description": "The tile's hashes, 32 bytes each"},
        404: {"description": "No such tile in the newest signed tree, or not a tile path"},
    },
)
async def tile(request: Request, tile_path: str) -> Response:
    """The hash tile ``<L>/<N>[.p/<W>]`` (C2SP tlog-tiles), within the newest signed tree."""
    if tile_path.startswith("entries/"):
        raise NotFoundError("entry bundles are not served by this log (leaves hold clear events)")
    try:
        wanted = parse_tile_path(tile_path)
    except TilePathError as exc:
        raise NotFoundError(f"not a tile path: {exc}") from exc
    tiles = _tiles(request)
    # A full tile read once is answered on the event loop; the rest read storage on a thread.
    found: TileBytes | None = tiles.cached(wanted) if wanted.full else None
    if found is None:
        found = await run_in_threadpool(tiles.tile, wanted)
    cache = IMMUTABLE if found.immutable else PARTIAL
    return _answer(request, found.data, found.etag, cache, TILE_MEDIA)
