"""``create_app(settings)``: the consent service; its state opens in the lifespan, not at import."""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from ledger.anchor_store import AnchorStore
from ledger.anchoring import Anchorer
from ledger.batcher import GroupCommitter
from ledger.cosignature_store import CosignatureStore
from ledger.log import Ledger
from ledger.store import LedgerStore
from ledger.tiles import LogTiles
from ledger.witnessing import Witnessing

from .access import AccessService
from .auth import Authenticator, PlatformKeys
from .breakglass import BreakGlassService
from .consents import ConsentService, SubjectLocks
from .errors import install_problem_handlers
from .identity import PSEUDONYM_KEY_FILE, PSEUDONYM_KEY_LOSES, PseudonymKey, ResidentVault
from .institutions import InstitutionRegistry
from .keyfiles import refuse_lost
from .lapse import LapseCommitments
from .limits import BodyLimit
from .openapi import install_openapi
from .records import Records
from .routes import (
    access,
    admin,
    audit_fhir,
    breakglass,
    consents,
    docs,
    fhir_consent,
    fhir_metadata,
    health,
    history,
    log,
    tiles,
    web,
)
from .routes import lapse as lapse_openings
from .settings import ApiSettings
from .strict_json import StrictJson
from .throttle import CallerGate, CallerLimiter, Pools, limit_caller
from .tokens import PLATFORM_KEY_FILE, PLATFORM_KEY_LOSES

logger = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005
"""How long a thread may hold the GIL while another waits for it (see ``app_from_env``)."""


def app_from_env() -> FastAPI:
    """The app with settings from the environment (what ``consent-ledger serve`` workers run)."""
    app = create_app(ApiSettings())
    # What is loaded by now (the modules, their classes and tables) lives as long as the worker:
    # leave it out of the collector's full passes, which otherwise walk all of it and stall
    # every request in flight for a tenth of a second.
    gc.freeze()
    # Threads building history pages hold the GIL for whole switch intervals; the event loop,
    # answering everyone else, waits for it on every socket call. A shorter interval bounds
    # that wait (CPython's default is 5 ms).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return app


def load_key_files(settings: ApiSettings, store: LedgerStore) -> tuple[PlatformKeys, PseudonymKey]:
    """The platform's key files, held to the fingerprints ``store`` pinned (created and pinned
    on a deployment's first start). Both are checked for before either is created or pinned,
    so a refused start writes nothing."""
    data_dir = settings.ledger.data_dir
    refuse_lost(
        store,
        [
            (data_dir / PLATFORM_KEY_FILE, PLATFORM_KEY_LOSES),
            (data_dir / PSEUDONYM_KEY_FILE, PSEUDONYM_KEY_LOSES),
        ],
    )
    return PlatformKeys.load(settings, store), PseudonymKey.load(data_dir, store)


def check_key_files(settings: ApiSettings) -> None:
    """Load the platform's key files as a start does, for ``serve`` to refuse with their
    message before its workers start."""
    store = LedgerStore.open(settings.ledger.resolved_database_url())
    try:
        load_key_files(settings, store)
    finally:
        store.close()


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = Ledger.open(settings.ledger)
        try:
            # Held to the fingerprints the database pinned: a refused key file (missing, other,
            # too open) stops the start before the service writes anything.
            platform_keys, app.state.pseudonym_key = load_key_files(settings, ledger.store)
        except BaseException:
            ledger.close()
            raise
        app.state.institutions = InstitutionRegistry.open(ledger.store)
        # Registered before keys were checked: reported here, their tokens refused (auth).
        app.state.refused_institutions = app.state.institutions.weak_keys()
        for institution_id, problem in app.state.refused_institutions.items():
            logger.error("institution %s: its tokens are refused: %s", institution_id, problem)
        app.state.vault = ResidentVault.open(ledger.store)
        app.state.platform_keys = platform_keys
        app.state.authenticator = Authenticator(
            platform_keys, app.state.institutions, app.state.vault
        )
        app.state.pools = Pools.of(settings)
        app.state.caller_limiter = CallerLimiter.of(settings)
        committer = GroupCommitter(ledger)
        app.state.ledger = ledger
        app.state.tiles = LogTiles(ledger)
        app.state.committer = committer
        app.state.anchors = AnchorStore(ledger.store)
        app.state.cosignatures = CosignatureStore(ledger.store)
        app.state.witnessing = Witnessing.from_settings(ledger, app.state.cosignatures)
        lapse = LapseCommitments(app.state.pseudonym_key.secret)
        vault: ResidentVault = app.state.vault
        records = Records.open(
            ledger.store,
            lambda body: lapse.from_leaf(body, vault.birth_date_if_known),
            lapse.logged,
        )
        records.catch_up(ledger)  # leaves logged but not projected before a crash
        app.state.records = records
        locks = SubjectLocks(ledger.store)
        app.state.consents = ConsentService(
            records, committer, vault, locks, lapse, app.state.institutions
        )
        app.state.access = AccessService.open(
            ledger.store,
            committer,
            records,
            app.state.institutions,
            app.state.vault,
            settings,
            locks.gate,  # decisions read where no consent change is under way
        )
        app.state.breakglass = BreakGlassService.open(ledger.store, committer, records)
        stop = threading.Event()
        anchorer = Anchorer(ledger)
        worker = None
        if settings.anchor_in_background:
            worker = threading.Thread(
                target=anchorer.run, args=(stop,), name="anchorer", daemon=True
            )
            worker.start()
        witnessing_worker = None
        if settings.anchor_in_background and app.state.witnessing is not None:
            witnessing_worker = threading.Thread(
                target=app.state.witnessing.run, args=(stop,), name="witnessing", daemon=True
            )
            witnessing_worker.start()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                worker.join(timeout=30)
            if witnessing_worker is not None:
                witnessing_worker.join(timeout=30)
            if app.state.witnessing is not None:
                app.state.witnessing.close()
            app.state.access.close()  # decisions in flight finish, through the committer
            committer.close()
            records.mark_complete(ledger.tree_size())
            anchorer.close()
            ledger.close()

    app = FastAPI(
        title="consent-ledger",
        version="0.1.0",
        summary="Residents authorize, hospitals request, every decision is logged and anchored.",
        lifespan=lifespan,
        dependencies=[Depends(limit_caller)],  # every request counts against its caller
        # FastAPI's own pages load unpinned CDN scripts with no CSP: see routes.docs instead.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    install_openapi(app)
    # Routers are tried in this order for every request: the busiest paths come first.
    app.include_router(health.router)
    app.include_router(access.router)
    app.include_router(log.router)
    app.include_router(tiles.router)
    app.include_router(admin.router)
    app.include_router(consents.router)
    app.include_router(fhir_consent.router)
    app.include_router(breakglass.router)
    app.include_router(history.router)
    app.include_router(audit_fhir.router)
    app.include_router(fhir_metadata.router)
    app.include_router(lapse_openings.router)
    app.include_router(web.router)  # the apps' pages, and the small API only they need
    if settings.api_docs:
        app.include_router(docs.router)
    app.add_middleware(StrictJson)  # inside BodyLimit: it reads only bodies within the limit
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CallerGate)  # outermost: a caller over its limits is refused first
    return app
