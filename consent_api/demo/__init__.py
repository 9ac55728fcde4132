"""``consent-ledger demo``: one day on a regional health platform, through the real service.

``run_day`` starts ``create_app(settings)`` in-process and drives it over HTTP (Starlette's
test client, so the lifespan, authentication and every route run as they do when served): an
admin registers institutions, each with its own Ed25519 key, and residents; residents consent;
hospitals ask and holders redeem grants before they release; a consent is narrowed and another
revoked; emergencies break the glass; checkpoints are sealed and anchored on the chain; a
resident reads who viewed their records and one receipt is verified with nothing but the key
from ``GET /v1/log/key`` and the chain. The screen, like the log, sees only pseudonyms.

``world`` makes up the population, ``parties`` holds the callers' credentials, ``day`` plays
the scenes and ``report`` prints the summaries.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

from ledger.anchoring import Anchorer
from ledger.settings import LedgerSettings

from ..app import create_app
from ..settings import ApiSettings
from .day import JUSTIFY_WITHIN, Day
from .parties import Parties
from .world import populate

__all__ = ["demo_settings", "next_day_dir", "run_day"]


def demo_settings(ledger: LedgerSettings) -> ApiSettings:
    """The service as the day runs it: anchored at the day's moments, a short break-glass window."""
    return ApiSettings(
        ledger=ledger, anchor_in_background=False, breakglass_justify_within=JUSTIFY_WITHIN
    )


def next_day_dir(base: Path) -> Path:
    """``base/demo/day-NNN``, the first not taken: each run of the demo is a day of its own."""
    number = 1
    while (base / "demo" / f"day-{number:03d}").exists():
        number += 1
    return base / "demo" / f"day-{number:03d}"


def run_day(settings: ApiSettings, *, residents: int = 300, seed: int = 7) -> int:
    """Play the day on an empty log in ``settings``' data dir and print what happened.

    The day seals and anchors checkpoints itself, at its own moments, so the app's background
    anchorer is turned off (one anchorer holds the embedded chain). For a break-glass access to
    be overdue by evening, pass a short ``breakglass_justify_within`` (``demo_settings`` does).
    """
    with warnings.catch_warnings():
        # Starlette would rather have httpx2 than httpx; either does for the demo.
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    settings = settings.model_copy(update={"anchor_in_background": False})
    world = populate(residents, seed, datetime.now(UTC).date())
    app = create_app(settings)
    with TestClient(app) as client:
        anchorer = Anchorer(app.state.ledger)
        try:
            Day(Parties(client, app.state.platform_keys, settings), world, anchorer).play(
                settings, seed
            )
        finally:
            anchorer.close()
    return 0
