"""``consent-ledger issue-token``: a platform token for an admin, a regulator or a resident.

Whoever holds the data dir is the platform's identity provider. A resident is named the way the
platform knows them: by the identifier they were registered with (``--identifier``, pseudonymised
here with the platform's pseudonym key, as ``POST /v1/admin/residents`` does), or by their
subject id or a unique start of it (``--subject``, as the screens show it cut short).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ledger import cli as ledger_cli
from ledger.errors import ConfigurationError
from ledger.log import Ledger
from ledger.settings import LedgerSettings

from . import auth
from .errors import ErasedError, UnknownSubjectError
from .identity import (
    PSEUDONYM_KEY_FILE,
    PseudonymKey,
    ResidentVault,
    is_subject,
    normalize_identifier,
)
from .keyfiles import read_secret
from .settings import ApiSettings

MIN_PREFIX = 6
"""The fewest hex digits of a subject id taken as its start (the screens show ten)."""
_REGISTER = "register them first: POST /v1/admin/residents (or the admin's screen)"


def register_issue_token(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``issue-token`` to the ``consent-ledger`` command line (``sub`` from add_subparsers)."""
    text = (
        "print a platform token (whoever holds the data dir is the platform's identity "
        "provider): for an admin or a regulator by account id, for a resident by the "
        "identifier they were registered with or by their subject id"
    )
    command = sub.add_parser("issue-token", parents=[common], help=text, description=text)
    command.add_argument(
        "--role",
        required=True,
        choices=sorted(r.value for r in auth.PLATFORM_ROLES),
        help="whom the token is for",
    )
    who = command.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--subject",
        help="an admin's or regulator's account id (e.g. ops, reg-1); or a resident's "
        f"pseudonymous subject id, or its first {MIN_PREFIX} or more hex digits",
    )
    who.add_argument(
        "--identifier",
        help="a resident's identifier as registered (e.g. their national id); the token "
        "names them by pseudonym only",
    )
    fields = ApiSettings.model_fields
    command.add_argument(
        "--ttl",
        type=int,
        default=None,
        help=f"seconds the token lives (default: {fields['token_ttl'].default}, or "
        f"CONSENT_API_TOKEN_TTL; at most {fields['token_max_ttl'].default}, or "
        "CONSENT_API_TOKEN_MAX_TTL)",
    )
    command.set_defaults(handler=cmd_issue_token)


def cmd_issue_token(args: argparse.Namespace) -> int:
    settings = ApiSettings(ledger=ledger_cli.settings_of(args))
    subject = args.subject
    if args.role == auth.Role.RESIDENT.value:
        subject = resident_subject(settings.ledger, args.subject, args.identifier)
    elif args.identifier is not None:
        raise ConfigurationError(
            f"--identifier names a resident; a {args.role} is named by --subject ACCOUNT_ID"
        )
    print(auth.issue_token(settings, args.role, subject, args.ttl))
    return 0


def resident_subject(settings: LedgerSettings, subject: str | None, identifier: str | None) -> str:
    """The registered resident's full subject id, from ``--identifier`` or ``--subject``."""
    ledger = Ledger.open(settings)
    try:
        vault = ResidentVault.open(ledger.store)
        if identifier is not None:
            found = _by_identifier(settings, identifier)
            shown = "the identifier given"
        else:
            assert subject is not None
            found, shown = _by_subject(vault, subject.strip().lower()), f"subject {subject}"
        try:
            vault.ensure_registered(found)
        except ErasedError as exc:
            raise ConfigurationError(f"the resident of {shown} was erased: {exc}") from exc
        except UnknownSubjectError:
            message = f"no resident is registered with {shown}; {_REGISTER}"
            raise ConfigurationError(message) from None
    finally:
        ledger.close()
    if subject is not None and found != subject:
        print(f"consent-ledger: resident {found}", file=sys.stderr)
    return found


def _by_identifier(settings: LedgerSettings, identifier: str) -> str:
    if not normalize_identifier(identifier):
        raise ConfigurationError("--identifier is blank")
    path = settings.data_dir / PSEUDONYM_KEY_FILE
    if not path.exists():  # made when the service registers its first resident
        raise ConfigurationError(
            f"no resident is registered on this platform yet ({path} does not exist); {_REGISTER}"
        )
    return PseudonymKey(read_secret(path)).subject_of(identifier)


def _by_subject(vault: ResidentVault, subject: str) -> str:
    if is_subject(subject):
        return subject
    try:
        matches = vault.subjects_starting(subject) if len(subject) >= MIN_PREFIX else None
    except ValueError:
        matches = None
    if matches is None:
        raise ConfigurationError(
            f"--subject {subject!r} is not a resident's subject id (64 hex digits) nor the start "
            f"of one ({MIN_PREFIX} hex digits or more); to name a resident by their national "
            "id, give --identifier ID"
        )
    if not matches:
        raise ConfigurationError(
            f"no registered resident's subject id starts with {subject}; {_REGISTER}, or give "
            "--identifier ID"
        )
    if len(matches) > 1:
        shown = ", ".join(f"{m[: len(subject) + 4]}…" for m in matches[:2])
        more = " and more" if len(matches) > 2 else ""
        raise ConfigurationError(
            f"{subject} is the start of several residents' subject ids ({shown}{more}): give "
            "more digits"
        )
    return matches[0]
