"""The limits the replay holds the service to, set by the regulator, not read from the log.

A service that wrote its own deadlines and lifetimes could write any it liked: the replay
bounds each logged time by these instead (``auditor.replay``). Defaults are the service's own
defaults or maxima (``consent_api/settings.py``), so a deployment left at its defaults audits
clean; a regulator who knows a deployment's settings passes them on the command line.
"""

from __future__ import annotations

from typing import Final, NamedTuple

US_PER_S: Final = 1_000_000

DEFAULT_CLOCK_TOLERANCE_S: Final = 5.0
"""How far an event's instant may precede one logged before it: group commit appends events
in the order their transactions commit, which can differ from the order of their clocks."""
DEFAULT_JUSTIFY_WITHIN_S: Final = 86_400
"""The service's default ``breakglass_justify_within``."""
DEFAULT_GRANT_TTL_S: Final = 3_600
"""The longest ``grant_ttl`` the service accepts (its default is 300 s)."""
GRANT_RETENTION_US: Final = 3_600 * US_PER_S
"""Grants expired longer than this before the latest instant replayed are kept as ids only."""
PRUNE_EVERY_US: Final = 600 * US_PER_S
"""How often (in event time) the replay moves long-expired grants to ids: a function of the
events alone, so a full and an incremental replay prune at the very same leaves."""


class Policy(NamedTuple):
    """The regulator's limits, in microseconds."""

    clock_tolerance_us: int = int(DEFAULT_CLOCK_TOLERANCE_S * US_PER_S)
    justify_within_us: int = DEFAULT_JUSTIFY_WITHIN_S * US_PER_S
    grant_ttl_us: int = DEFAULT_GRANT_TTL_S * US_PER_S

    @classmethod
    def of_seconds(
        cls,
        clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE_S,
        justify_within: float = DEFAULT_JUSTIFY_WITHIN_S,
        grant_ttl: float = DEFAULT_GRANT_TTL_S,
    ) -> Policy:
        if min(clock_tolerance, justify_within, grant_ttl) < 0:
            raise ValueError("limits must not be negative")
        return cls(
            round(clock_tolerance * US_PER_S),
            round(justify_within * US_PER_S),
            round(grant_ttl * US_PER_S),
        )
