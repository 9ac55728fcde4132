"""An institution's key pair, from the admin's hands to the institution's: registering it,
rotating it, and the private key file handed over (PKCS#8 PEM, mode 0600).

Both the admin API and ``consent-ledger institution`` go through ``register`` and ``rotate``:
the registry changes first and the event is logged second; a failed append undoes the change,
so that no unlogged key authenticates anyone. The log holds the key's thumbprint only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from .domain.vocab import InstitutionType
from .errors import ConflictError
from .institutions import Institution, InstitutionRegistry

Append = Callable[[str, dict[str, Any]], int]
"""Log one event and return its leaf index (a group committer's or the ledger's ``append``)."""
KEY_ROTATED = "institution.key_rotated"


def register(
    registry: InstitutionRegistry,
    append: Append,
    *,
    issuer: str,
    institution_id: str,
    name: str,
    institution_type: InstitutionType,
    key: Ed25519PublicKey,
) -> tuple[Institution, int]:
    """Register an institution and log ``institution.registered``: the institution, its leaf."""
    if institution_id == issuer:
        raise ConflictError(f"{institution_id!r} is the platform's own issuer name")
    institution = registry.register(institution_id, name, institution_type, key)
    event = {
        "institution_id": institution.id,
        "institution_type": institution.type.value,
        "key_thumbprint": institution.key_thumbprint,
    }
    try:
        leaf_index = append("institution.registered", event)
    except Exception:
        registry.unregister(institution.id)  # unlogged, it must not authenticate anyone
        raise
    return institution, leaf_index


def rotate(
    registry: InstitutionRegistry, append: Append, institution_id: str, key: Ed25519PublicKey
) -> tuple[Institution, int]:
    """Replace the institution's key (its tokens signed with the old one are refused from now
    on) and log ``institution.key_rotated``: the institution, its leaf."""
    before = registry.get(institution_id)
    old_thumbprint = registry.replace_key(institution_id, key)
    now = registry.get(institution_id)
    assert before is not None
    assert now is not None
    event = {
        "institution_id": institution_id,
        "key_thumbprint": now.key_thumbprint,
        "previous_key_thumbprint": old_thumbprint,
    }
    try:
        leaf_index = append(KEY_ROTATED, event)
    except Exception:
        registry.replace_key(institution_id, before.public_key)  # unlogged: not the key
        raise
    return now, leaf_index


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The key as the hospital console and ``sign_institution_token`` take it: PKCS#8 PEM."""
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def write_private_key(path: Path, key: Ed25519PrivateKey, *, replace: bool = False) -> None:
    """Write ``key`` to ``path`` (mode 0600, whole or not at all); an existing file is kept
    unless ``replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_pem(key))
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # refuses an existing name
    finally:
        tmp.unlink(missing_ok=True)
