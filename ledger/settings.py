"""Ledger settings, read from the environment (prefix ``CONSENT_LEDGER_``) on demand."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LedgerSettings(BaseSettings):
    """Where the log lives and how it seals checkpoints.

    Defaults need nothing installed: SQLite in ``./var`` and an in-process chain.
    """

    model_config = SettingsConfigDict(env_prefix="CONSENT_LEDGER_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Key files, SQLite file, chain state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite in data_dir/ledger.db."
    )
    origin: str | None = Field(
        default=None,
        description="Checkpoint origin line: names this log; anchors are keyed by its hash. "
        "Chosen when the log is created (default: consent-ledger/<16 random hex>, unique per "
        "deployment) and pinned in its database; given later, it must be that name.",
    )
    max_event_bytes: int = Field(default=16 * 1024, gt=0, description="Largest canonical event.")
    checkpoint_every: int = Field(default=10_000, gt=0, description="Seal after this many events.")
    checkpoint_interval: float = Field(
        default=10.0, gt=0, description="Or after this many seconds."
    )
    rpc_url: str | None = Field(default=None, description="JSON-RPC node; default is embedded.")
    contract_address: str | None = Field(
        default=None, description="AnchorRegistry address; default: deploy one and remember it."
    )
    anchor_key_file: Path | None = Field(
        default=None,
        description="Hex private key of the anchoring account (needed with rpc_url), mode 0600.",
    )
    witness_policy_file: Path | None = Field(
        default=None,
        description="C2SP tlog-policy file: the witnesses (with URLs) each checkpoint is sent "
        "to, and the quorum a checkpoint needs to be published.",
    )
    anchor_timeout: float = Field(default=30.0, gt=0, description="Wait this long for a block.")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ledger.db').resolve()}"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "log.key"

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"
