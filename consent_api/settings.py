"""Service settings, read from the environment (prefix ``CONSENT_API_``) when the app is made."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.settings import LedgerSettings


class ApiSettings(BaseSettings):
    """How the consent service runs; the log's own settings are nested under ``ledger``."""

    model_config = SettingsConfigDict(env_prefix="CONSENT_API_", extra="ignore")

    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    max_body_bytes: int = Field(default=64 * 1024, gt=0, description="Larger bodies get 413.")
    page_size: int = Field(default=1000, gt=0, le=10_000, description="Leaves per page at most.")
    anchor_in_background: bool = Field(
        default=True, description="Seal and anchor checkpoints from a thread of the service."
    )
