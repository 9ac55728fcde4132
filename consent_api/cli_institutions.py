"""``consent-ledger institution add|rotate-key|list``: the admin's hand-over of a hospital's key.

``add`` and ``rotate-key`` make the key pair here, register the public key in the platform's
registry in process (the same ``institution_keys`` steps as ``POST /v1/admin/institutions`` and
``PUT /v1/admin/institutions/{id}/key``, logged the same way), and write the private key to a
file (PKCS#8 PEM, mode 0600; by default ``DATA_DIR/institutions/ID.pem``) for the admin to hand
to the institution. A running service sees the change within ``institutions.CACHE_SECONDS``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import cli as ledger_cli
from ledger.cli import log_options_after
from ledger.errors import ConfigurationError
from ledger.log import Ledger

from . import institution_keys
from .domain.vocab import InstitutionType, is_institution_id
from .errors import ApiError
from .institutions import InstitutionRegistry
from .settings import ApiSettings

KEY_DIR = "institutions"
"""Under the data dir: where the admin's copies of handed-over private keys are written."""


def register_institution(sub: Any, common: argparse.ArgumentParser) -> None:
    text = (
        "register an institution and hand it its key: add and rotate-key make the key pair, "
        "register the public key (logged) and write the private key file to give it"
    )
    command = sub.add_parser("institution", parents=[common], help=text, description=text)
    actions = command.add_subparsers(dest="action", required=True)
    after = [log_options_after()]
    text = "register a new institution with a new key pair"
    add = actions.add_parser("add", parents=after, help=text, description=text)
    add.add_argument("--id", required=True, help="the institution id, e.g. h-north")
    add.add_argument("--name", required=True, help="its name as people know it")
    add.add_argument(
        "--type", required=True, choices=[t.value for t in InstitutionType], help="its kind"
    )
    text = "give a registered institution a new key pair: tokens signed with the old key stop"
    rotate = actions.add_parser("rotate-key", parents=after, help=text, description=text)
    rotate.add_argument("--id", required=True, help="the institution id")
    for action in (add, rotate):
        action.add_argument(
            "--key-file",
            type=Path,
            help=f"where to write the private key (default: DATA_DIR/{KEY_DIR}/ID.pem)",
        )
    text = "list the registered institutions, their key thumbprints and whether they are active"
    actions.add_parser("list", parents=after, help=text, description=text)
    command.set_defaults(handler=cmd_institution)


def cmd_institution(args: argparse.Namespace) -> int:
    try:
        return _institution(args)
    except ApiError as exc:  # the registry's refusals, as the API would answer them
        raise ConfigurationError(str(exc)) from exc


def _institution(args: argparse.Namespace) -> int:
    settings = ApiSettings(ledger=ledger_cli.settings_of(args))
    ledger = Ledger.open(settings.ledger)
    try:
        registry = InstitutionRegistry.open(ledger.store)
        if args.action == "list":
            for institution in registry.all():
                state = "active" if institution.active else "deactivated"
                print(
                    f"{institution.id:<20} {institution.type.value:<19} {state:<11} "
                    f"key {institution.key_thumbprint}  {institution.name}"
                )
            return 0
        if not is_institution_id(args.id):
            raise ConfigurationError(f"--id {args.id!r} is not an institution id (e.g. h-north)")
        path: Path = args.key_file or settings.ledger.data_dir / KEY_DIR / f"{args.id}.pem"
        key = Ed25519PrivateKey.generate()
        if args.action == "add":
            if path.exists():
                raise ConfigurationError(f"{path} exists already; give another --key-file")
            institution, leaf_index = institution_keys.register(
                registry,
                ledger.append,
                issuer=settings.token_issuer,
                institution_id=args.id,
                name=args.name,
                institution_type=InstitutionType(args.type),
                key=key.public_key(),
            )
            done = "registered"
        else:
            institution, leaf_index = institution_keys.rotate(
                registry, ledger.append, args.id, key.public_key()
            )
            done = "has a new key; tokens signed with its old key are refused from now on"
        # Written once registered: a refusal leaves no key file that fits nothing.
        institution_keys.write_private_key(path, key, replace=args.action == "rotate-key")
    finally:
        ledger.close()
    print(
        f"{institution.id} {done} (key thumbprint {institution.key_thumbprint}, leaf "
        f"{leaf_index}).\nIts private key is in {path} (mode 0600). Hand that file to "
        f"{institution.id} over a safe channel, then delete your copy: the platform needs only "
        f"the public key.\nIt signs in at /console/hospital with the id {institution.id} and "
        "that file, or signs its own tokens with it (sign_institution_token).",
        file=sys.stderr,
    )
    print(path)
    return 0
