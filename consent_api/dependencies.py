"""What routes depend on, injected with ``Depends`` so tests can override any of it."""

from __future__ import annotations

from fastapi import Request

from ledger.batcher import GroupCommitter
from ledger.log import Ledger

from .auth import PlatformKeys
from .consents import ConsentService
from .identity import PseudonymKey, ResidentVault
from .institutions import InstitutionRegistry
from .records import Records
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


def get_platform_keys(request: Request) -> PlatformKeys:
    keys: PlatformKeys = request.app.state.platform_keys
    return keys


def get_institutions(request: Request) -> InstitutionRegistry:
    institutions: InstitutionRegistry = request.app.state.institutions
    return institutions


def get_vault(request: Request) -> ResidentVault:
    vault: ResidentVault = request.app.state.vault
    return vault


def get_pseudonym_key(request: Request) -> PseudonymKey:
    key: PseudonymKey = request.app.state.pseudonym_key
    return key


def get_records(request: Request) -> Records:
    records: Records = request.app.state.records
    return records


def get_consent_service(request: Request) -> ConsentService:
    service: ConsentService = request.app.state.consents
    return service
