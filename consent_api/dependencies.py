"""What routes depend on, injected with ``Depends`` so tests can override any of it."""

from __future__ import annotations

from fastapi import Request

from ledger.batcher import GroupCommitter
from ledger.log import Ledger

from .settings import ApiSettings


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_committer(request: Request) -> GroupCommitter:
    committer: GroupCommitter = request.app.state.committer
    return committer
