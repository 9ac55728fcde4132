"""Service settings, read from the environment (prefix ``CONSENT_API_``) when the app is made."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.settings import LedgerSettings

AUDIENCE_PREFIX = "consent-ledger/"
"""Unless ``token_audience`` is set, every token's ``aud`` is this and the RFC 7638 thumbprint
of the deployment's platform key (``auth.deployment_audience``): its own, unlike any other's."""

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
"""Where ``consent-ledger serve`` listens by default; ``serve`` derives it from --host/--port."""


def served_url(host: str, port: int) -> str:
    """``http://host:port`` for a listening address: the public URL ``serve`` assumes unless
    ``CONSENT_API_PUBLIC_URL`` is set. A wildcard bind names no host, so loopback stands in."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (recognised, not bound to)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class ApiSettings(BaseSettings):
    """How the consent service runs; the log's own settings are nested under ``ledger``."""

    model_config = SettingsConfigDict(env_prefix="CONSENT_API_", extra="ignore")

    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    max_body_bytes: int = Field(default=64 * 1024, gt=0, description="Larger bodies get 413.")
    page_size: int = Field(default=1000, gt=0, le=10_000, description="Leaves per page at most.")
    anchor_in_background: bool = Field(
        default=True, description="Seal and anchor checkpoints from a thread of the service."
    )
    token_issuer: str = Field(
        default="consent-ledger.local/platform",
        min_length=1,
        description="iss of platform-issued tokens (residents, regulators, admins).",
    )
    token_audience: str | None = Field(
        default=None,
        min_length=1,
        description="aud every token must carry; default: one derived from the platform key.",
    )
    token_ttl: int = Field(default=900, gt=0, description="Platform token lifetime, seconds.")
    token_max_ttl: int = Field(
        default=3600, gt=0, le=86_400, description="No platform token is issued for longer."
    )
    grant_ttl: int = Field(
        default=300, gt=0, le=3600, description="A permit's grant token lives this long, seconds."
    )
    breakglass_justify_within: int = Field(
        default=86_400, gt=0, description="A break-glass access must be justified within, seconds."
    )
    api_docs: bool = Field(
        default=False,
        description="Serve the API reference at /docs (Swagger UI from a pinned package).",
    )
    audit_report: Path | None = Field(
        default=None, description="The auditor's JSON report (auditor --json), for regulators."
    )
    public_url: str = Field(
        default=DEFAULT_PUBLIC_URL,
        pattern=r"^https?://[^/\s?#@]+(/[^\s?#]*)?$",
        description="The service's public base URL (scheme, host, port, optional path prefix): "
        "every link the service writes (Link and FHIR next, log pages) starts with it, never "
        "with the request's Host header.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="serve: seconds a client has to send a request's headers, else 408.",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="serve: seconds a client has to send a request's body after its headers.",
    )
    explorer_tx_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]*\{tx\}[^\s]*$",
        description="Where the consoles link an anchor's transaction, with {tx} for its hash.",
    )

    caller_concurrency: int = Field(
        default=64, gt=0, description="Requests of one caller in flight at once; more get 429."
    )
    caller_rate: float = Field(
        default=5000.0, gt=0, description="Requests a second one caller may send, sustained."
    )
    caller_burst: int = Field(
        default=5000, gt=0, description="Requests one caller may send at once above its rate."
    )
    history_per_caller: int = Field(
        default=2, gt=0, description="Access-history pages of one caller in flight at once."
    )
    history_rate: float = Field(
        default=1000.0,
        gt=0,
        description="Access-history entries one caller may ask for per second (a page of 1,000 "
        "entries with their receipts costs tens of milliseconds of the service's CPU).",
    )
    refusal_delay: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="Seconds a 429 is held back before it is sent (at most its Retry-After), so "
        "a caller that asks again at once costs little; 0 sends it at once.",
    )
    history_burst: int = Field(
        default=5000, gt=0, description="Access-history entries one caller may ask for at once."
    )
    history_threads: int = Field(
        default=2, gt=0, description="Threads building access-history pages, for all callers."
    )
    redemption_threads: int = Field(
        default=8, gt=0, description="Threads redeeming grants (apart from readers' threads)."
    )
    auth_threads: int = Field(
        default=4, gt=0, description="Threads verifying tokens not seen before."
    )

    @model_validator(mode="after")
    def _ttl_within_max(self) -> Self:
        if self.token_ttl > self.token_max_ttl:
            raise ValueError(f"token_ttl {self.token_ttl} exceeds {self.token_max_ttl}")
        return self
