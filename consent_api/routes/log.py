"""The log, read-only, for auditors and anyone: checkpoints, leaves, proofs, anchors, key."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from contracts.records import AnchorRecord
from ledger.anchor_store import AnchorStore
from ledger.errors import IntegrityError
from ledger.log import Ledger
from ledger.store import StoredCheckpoint
from ledger.witnessing import Witnessing

from ..dependencies import get_ledger, get_settings
from ..errors import NotFoundError
from ..paging import public_url_of
from ..settings import ApiSettings

router = APIRouter(prefix="/v1/log", tags=["log"])

NOTE_MEDIA = "text/plain; charset=utf-8"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class LeafOut(BaseModel):
    leaf_index: int
    leaf_data: str = Field(description="The exact leaf bytes, base64; the leaf hash is over them.")


class LeavesPage(BaseModel):
    start: int
    end: int
    tree_size: int
    leaves: list[LeafOut]
    next: str | None = Field(description="The next page's URL, or null at the end.")


class InclusionOut(BaseModel):
    leaf_index: int
    tree_size: int
    proof: list[str] = Field(description="Sibling hashes, base64, leaf to root.")


class ConsistencyOut(BaseModel):
    size1: int
    size2: int
    proof: list[str]


class AnchorOut(BaseModel):
    tree_size: int
    checkpoint: str = Field(description="The signed checkpoint this anchor commits to.")
    anchor: dict[str, int | str] = Field(description="Chain id, contract, tx, block, root.")


# An auditor reads every leaf of the log through ``/leaves``, a page at a time: it reads on the
# driver's connection (``LedgerStore.raw_read``, as each access decision does), since
# SQLAlchemy's work per row costs several times what SQLite does to answer (4 ms a page of
# 1,000 leaves against 0.6 ms, measured on a log of 1M leaves).
_SIZE_SQL = "SELECT tree_size FROM log_head WHERE id = 1"
_LEAVES_SQL = (
    "SELECT leaf_index, leaf_data FROM leaf "
    "WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index"
)


def refuse_gaps(count: int, start: int, stop: int, size: int) -> None:
    """Leaf rows below the head went missing: refuse, rather than serve a page with a gap."""
    if count != max(0, stop - start):
        raise IntegrityError(
            f"leaves {start}..{stop - 1} of a tree of {size} are not all stored: the log's "
            "storage is damaged (run: consent-ledger fsck)"
        )


def _anchors(request: Request) -> AnchorStore:
    anchors: AnchorStore = request.app.state.anchors
    return anchors


def _witnessing(request: Request) -> Witnessing | None:
    witnessing: Witnessing | None = getattr(request.app.state, "witnessing", None)
    return witnessing


def _note(checkpoint: StoredCheckpoint, witnessing: Witnessing | None) -> str:
    return checkpoint.note if witnessing is None else witnessing.cosigned_note(checkpoint)


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, 404: {"description": "No checkpoint yet"}},
)
def latest_checkpoint(
    ledger: Annotated[Ledger, Depends(get_ledger)],
    witnessing: Annotated[Witnessing | None, Depends(_witnessing)],
) -> PlainTextResponse:
    """The latest signed checkpoint, as C2SP signed-note text.

    With witnesses configured, the newest checkpoint the witness quorum cosigned, with
    their cosignatures (tlog-cosignature lines after the log's signature).
    """
    return PlainTextResponse(published_note(ledger, witnessing), media_type=NOTE_MEDIA)


def published_note(ledger: Ledger, witnessing: Witnessing | None) -> str:
    """The checkpoint the log publishes: its newest, or with witnesses configured the newest
    the quorum cosigned, with the cosignatures (also served as the tiles' ``checkpoint``)."""
    if witnessing is None:
        checkpoint = ledger.latest_checkpoint()
        if checkpoint is None:
            raise NotFoundError("no checkpoint has been sealed yet")
        return checkpoint.note
    checkpoint = witnessing.published()
    if checkpoint is None:
        raise NotFoundError("no checkpoint has been cosigned by the witness quorum yet")
    return witnessing.cosigned_note(checkpoint)


@router.get("/checkpoints/{tree_size}", response_class=PlainTextResponse)
def checkpoint_at(
    tree_size: Annotated[int, Path(ge=0, le=2**63 - 1)],
    ledger: Annotated[Ledger, Depends(get_ledger)],
    witnessing: Annotated[Witnessing | None, Depends(_witnessing)],
) -> PlainTextResponse:
    """The signed checkpoint sealed at exactly ``tree_size``, with any witness cosignatures."""
    checkpoint = ledger.store.checkpoint_at(tree_size)
    if checkpoint is None:
        raise NotFoundError(f"no checkpoint was sealed at size {tree_size}")
    return PlainTextResponse(_note(checkpoint, witnessing), media_type=NOTE_MEDIA)


@router.get("/leaves", response_model=LeavesPage)
def leaves(
    request: Request,
    ledger: Annotated[Ledger, Depends(get_ledger)],
    settings: Annotated[ApiSettings, Depends(get_settings)],
    start: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    end: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> Response:
    """Leaves ``start <= leaf_index < end`` in order, at most ``page_size`` per page."""
    with ledger.store.raw_read() as reader:
        # Leaves only ever grow: those below the size read first are all there after it.
        size = int(reader.rows(_SIZE_SQL, ())[0][0])
        stop = size if end is None else min(end, size)
        stop = min(stop, start + settings.page_size)
        rows = reader.rows(_LEAVES_SQL, (start, stop)) if start < stop else []
    refuse_gaps(len(rows), start, stop, size)
    wanted_end = size if end is None else min(end, size)
    following = None
    if stop < wanted_end:
        following = public_url_of(request, start=stop)
    # The page is written by orjson, in the shape of ``LeavesPage``, rather than validated
    # model by model (about 5x less time per leaf).
    b64 = binascii.b2a_base64
    page = {
        "start": start,
        "end": max(start, stop),
        "tree_size": size,
        "leaves": [
            {"leaf_index": index, "leaf_data": b64(data, newline=False).decode()}
            for index, data in rows
        ],
        "next": following,
    }
    return Response(orjson.dumps(page), media_type="application/json")


@router.get("/proof/inclusion")
def inclusion(
    ledger: Annotated[Ledger, Depends(get_ledger)],
    leaf_index: Annotated[int, Query(ge=0, le=2**63 - 1)],
    tree_size: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> InclusionOut:
    """Inclusion proof of a leaf in the tree of ``tree_size`` (default: the newest signed
    checkpoint's, so that the proof verifies against a checkpoint one can fetch)."""
    size = ledger.signed_size(leaf_index) if tree_size is None else tree_size
    proof = ledger.inclusion_proof(leaf_index, size)
    return InclusionOut(
        leaf_index=proof.leaf_index,
        tree_size=proof.tree_size,
        proof=[_b64(h) for h in proof.hashes],
    )


@router.get("/proof/consistency")
def consistency(
    ledger: Annotated[Ledger, Depends(get_ledger)],
    size1: Annotated[int, Query(ge=0, le=2**63 - 1)],
    size2: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> ConsistencyOut:
    """Consistency proof that the tree of ``size2`` (default: the newest signed checkpoint's)
    extends the tree of ``size1``."""
    proof = ledger.consistency_proof(size1, ledger.signed_size() if size2 is None else size2)
    return ConsistencyOut(
        size1=proof.size1, size2=proof.size2, proof=[_b64(h) for h in proof.hashes]
    )


@router.get("/anchors")
def anchors(
    ledger: Annotated[Ledger, Depends(get_ledger)],
    store: Annotated[AnchorStore, Depends(_anchors)],
    witnessing: Annotated[Witnessing | None, Depends(_witnessing)],
    after: Annotated[int, Query(ge=-1, le=2**63 - 1)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AnchorOut]:
    """Anchored checkpoints with a tree size above ``after``, oldest first."""
    out = []
    for anchor in store.confirmed(after_size=after, limit=limit):
        checkpoint = ledger.store.checkpoint_at(anchor.tree_size)
        if checkpoint is None or anchor.record is None:
            continue
        record = AnchorRecord.from_json(anchor.record)
        out.append(
            AnchorOut(
                tree_size=anchor.tree_size,
                checkpoint=_note(checkpoint, witnessing),
                anchor=record.to_dict(),
            )
        )
    return out


@router.get("/witness-policy", response_class=PlainTextResponse)
def witness_policy(
    ledger: Annotated[Ledger, Depends(get_ledger)],
    witnessing: Annotated[Witnessing | None, Depends(_witnessing)],
) -> PlainTextResponse:
    """The log's witness policy (C2SP tlog-policy): its witnesses and the quorum it publishes
    under. A verifier should pin it (or get it out of band), as it pins the log key. A log
    that names no witnesses says so in the same format (``quorum none``)."""
    if witnessing is None or witnessing.ledger.settings.witness_policy_file is None:
        text = f"log {ledger.verifier.to_vkey()}\nquorum none\n"
    else:
        text = witnessing.ledger.settings.witness_policy_file.read_text(encoding="utf-8")
    return PlainTextResponse(text, media_type=NOTE_MEDIA)


@router.get("/key", response_class=PlainTextResponse)
def key(ledger: Annotated[Ledger, Depends(get_ledger)]) -> PlainTextResponse:
    """The log's public key (C2SP vkey) that signs its checkpoints."""
    return PlainTextResponse(ledger.verifier.to_vkey() + "\n", media_type=NOTE_MEDIA)
