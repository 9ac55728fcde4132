"""The registry of institutions and the Ed25519 public keys they sign their own tokens with.

An admin registers an institution with its public key (a JWK or PEM); the institution keeps the
private key. Deactivating an institution refuses its tokens from then on; rows are never deleted,
so what an institution did stays attributable.

Every request looks its institution up (its key, whether it is active), so a registry remembers
what it read for ``CACHE_SECONDS``. Its own writes forget the entry at once; a change made by
another worker process is seen within ``CACHE_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from sqlalchemy import Boolean, Column, Double, LargeBinary, Row, Text, select
from sqlalchemy import exc as sa_exc
from sqlmodel import Field, SQLModel

from hashing import check_public_key, point_problem
from ledger.store import LedgerStore

from .domain.vocab import InstitutionType, is_institution_id
from .errors import ConflictError, NotFoundError

_B64URL_32: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
CACHE_SECONDS: Final = 1.0
"""How long a registry trusts an institution it read (another worker may deactivate it)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """An Ed25519 public key from an OKP JWK (RFC 8037); ValueError for anything else."""
    if "d" in jwk:
        raise ValueError("this JWK holds a private key; register only the public key")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError('the JWK must have "kty": "OKP" and "crv": "Ed25519"')
    x = jwk.get("x")
    if not isinstance(x, str) or not _B64URL_32.fullmatch(x):
        raise ValueError('the JWK "x" must be 32 bytes, base64url without padding')
    raw = base64.urlsafe_b64decode(x + "=")
    if _b64url(raw) != x:  # the unused low bits of the last character must be zero
        raise ValueError('the JWK "x" is not canonical base64url')
    check_public_key(raw)
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_from_pem(pem: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo); ValueError for anything else."""
    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the PEM key is not an Ed25519 public key")
    check_public_key(raw_public_key(key))
    return key


def key_problem(key: Ed25519PublicKey) -> str | None:
    """Why ``key`` must not verify anyone's tokens (small order, non-canonical), or None.

    Checked on each token verified in full, so without the curve check (a modular
    exponentiation): a key off the curve verifies nothing anyway, and registration refused it.
    """
    return point_problem(raw_public_key(key), on_curve=False)


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def jwk_of(key: Ed25519PublicKey) -> dict[str, str]:
    """The public JWK of ``key`` (RFC 8037)."""
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw_public_key(key))}


def thumbprint(key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of ``key``: a short stable name for it."""
    canonical = json.dumps(jwk_of(key), sort_keys=True, separators=(",", ":")).encode()
    return _b64url(hashlib.sha256(canonical).digest())


@dataclass(frozen=True, slots=True)
class Institution:
    id: str
    name: str
    type: InstitutionType
    public_key: Ed25519PublicKey
    key_thumbprint: str
    active: bool
    registered_at: datetime
    deactivated_at: datetime | None


class InstitutionRow(SQLModel, table=True):
    """A registered institution and the public key its tokens must verify against."""

    __tablename__ = "institution"

    id: str = Field(sa_column=Column(Text, primary_key=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    type: str = Field(sa_column=Column(Text, nullable=False))
    public_key: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    key_thumbprint: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    active: bool = Field(sa_column=Column(Boolean, nullable=False))
    registered_at: float = Field(sa_column=Column(Double, nullable=False))
    deactivated_at: float | None = Field(default=None, sa_column=Column(Double, nullable=True))


_INSTITUTION = InstitutionRow.__table__  # type: ignore[attr-defined]
_CACHED_AT_MOST = 10_000  # only institutions that exist are remembered; bounded all the same


def _institution(row: Row[Any]) -> Institution:
    return Institution(
        id=row.id,
        name=row.name,
        type=InstitutionType(row.type),
        public_key=Ed25519PublicKey.from_public_bytes(bytes(row.public_key)),
        key_thumbprint=row.key_thumbprint,
        active=bool(row.active),
        registered_at=datetime.fromtimestamp(row.registered_at, UTC),
        deactivated_at=(
            None if row.deactivated_at is None else datetime.fromtimestamp(row.deactivated_at, UTC)
        ),
    )


class InstitutionRegistry:
    """Reads and writes the ``institution`` table of the ledger's database."""

    def __init__(self, store: LedgerStore, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Institution]] = {}
        self._writes = 0  # a read that overlapped one of our writes is not remembered
        self._lock = threading.Lock()

    @classmethod
    def open(cls, store: LedgerStore) -> InstitutionRegistry:
        store.create_schema(extra_tables=[_INSTITUTION])
        return cls(store)

    def get(self, institution_id: str) -> Institution | None:
        """The institution as read at most ``cache_seconds`` ago (unknown ones: read now)."""
        cached = self.cached(institution_id)
        if cached is not None:
            return cached
        now = time.monotonic()
        writes = self._writes
        with self._store.read() as conn:
            row = conn.execute(
                select(_INSTITUTION).where(_INSTITUTION.c.id == institution_id)
            ).first()
        if row is None:
            self._cache.pop(institution_id, None)
            return None
        institution = _institution(row)
        with self._lock:
            if len(self._cache) >= _CACHED_AT_MOST:
                self._cache.clear()
            if writes == self._writes:
                self._cache[institution_id] = (now + self._cache_seconds, institution)
        return institution

    def cached(self, institution_id: str) -> Institution | None:
        """The institution if it was read less than ``cache_seconds`` ago; never reads."""
        cached = self._cache.get(institution_id)
        return cached[1] if cached is not None and time.monotonic() < cached[0] else None

    def _forget(self, institution_id: str) -> None:
        with self._lock:
            self._writes += 1
            self._cache.pop(institution_id, None)

    def weak_keys(self) -> dict[str, str]:
        """Institutions registered (before keys were checked) under a key that must not verify
        anyone, by id, with the reason: their tokens are refused (``Authenticator``)."""
        return {
            institution.id: problem
            for institution in self.all()
            if (problem := key_problem(institution.public_key)) is not None
        }

    def all(self) -> list[Institution]:
        with self._store.read() as conn:
            rows = conn.execute(select(_INSTITUTION).order_by(_INSTITUTION.c.id)).all()
        return [_institution(row) for row in rows]

    def register(
        self,
        institution_id: str,
        name: str,
        institution_type: InstitutionType,
        public_key: Ed25519PublicKey,
        *,
        now: float | None = None,
    ) -> Institution:
        """Add an active institution; ConflictError if the id or the key is already registered."""
        if not is_institution_id(institution_id):
            raise ValueError(f"{institution_id!r} is not an institution id")
        check_public_key(raw_public_key(public_key))
        key_thumbprint = thumbprint(public_key)
        try:
            with self._store.write() as conn:
                taken = conn.execute(
                    select(_INSTITUTION.c.id).where(
                        (_INSTITUTION.c.id == institution_id)
                        | (_INSTITUTION.c.key_thumbprint == key_thumbprint)
                    )
                ).first()
                if taken is not None:
                    raise self._conflict(institution_id, taken.id)
                conn.execute(
                    _INSTITUTION.insert().values(
                        id=institution_id,
                        name=name,
                        type=institution_type.value,
                        public_key=raw_public_key(public_key),
                        key_thumbprint=key_thumbprint,
                        active=True,
                        registered_at=time.time() if now is None else now,
                    )
                )
        except sa_exc.IntegrityError as exc:  # a concurrent registration won the race
            raise ConflictError(f"institution {institution_id} or its key is registered") from exc
        self._forget(institution_id)
        registered = self.get(institution_id)
        assert registered is not None
        return registered

    def replace_key(self, institution_id: str, public_key: Ed25519PublicKey) -> str:
        """Make ``public_key`` the institution's, so tokens signed with the old one are refused;
        return the old key's thumbprint. NotFoundError, or ConflictError if it is deactivated or
        the key is already registered (to it or to another)."""
        check_public_key(raw_public_key(public_key))
        key_thumbprint = thumbprint(public_key)
        try:
            with self._store.write() as conn:
                row = conn.execute(
                    select(_INSTITUTION.c.active, _INSTITUTION.c.key_thumbprint).where(
                        _INSTITUTION.c.id == institution_id
                    )
                ).first()
                if row is None:
                    raise NotFoundError(f"no institution has the id {institution_id}")
                if not row.active:
                    raise ConflictError(f"institution {institution_id} is deactivated")
                holder = conn.execute(
                    select(_INSTITUTION.c.id).where(_INSTITUTION.c.key_thumbprint == key_thumbprint)
                ).scalar_one_or_none()
                if holder is not None:
                    raise ConflictError(f"this public key is already registered for {holder}")
                conn.execute(
                    _INSTITUTION.update()
                    .where(_INSTITUTION.c.id == institution_id)
                    .values(public_key=raw_public_key(public_key), key_thumbprint=key_thumbprint)
                )
        except sa_exc.IntegrityError as exc:  # the same key registered meanwhile
            raise ConflictError("this public key is already registered") from exc
        self._forget(institution_id)
        return str(row.key_thumbprint)

    @staticmethod
    def _conflict(institution_id: str, holder: str) -> ConflictError:
        if holder == institution_id:
            return ConflictError(
                f"institution {institution_id} is already registered; to give it a new key: "
                f"PUT /v1/admin/institutions/{institution_id}/key, or consent-ledger institution "
                f"rotate-key --id {institution_id}"
            )
        return ConflictError(f"this public key is already registered for institution {holder}")

    def unregister(self, institution_id: str) -> None:
        """Undo a registration whose ``institution.registered`` event could not be logged."""
        with self._store.write() as conn:
            conn.execute(_INSTITUTION.delete().where(_INSTITUTION.c.id == institution_id))
        self._forget(institution_id)

    def deactivate(self, institution_id: str, *, now: float | None = None) -> Institution:
        """Refuse the institution's tokens from now on; ConflictError if it already is."""
        with self._store.write() as conn:
            active = conn.execute(
                select(_INSTITUTION.c.active).where(_INSTITUTION.c.id == institution_id)
            ).scalar_one_or_none()
            if active is None:
                raise NotFoundError(f"no institution has the id {institution_id}")
            if not active:
                raise ConflictError(f"institution {institution_id} is already deactivated")
            conn.execute(
                _INSTITUTION.update()
                .where(_INSTITUTION.c.id == institution_id)
                .values(active=False, deactivated_at=time.time() if now is None else now)
            )
        self._forget(institution_id)
        deactivated = self.get(institution_id)
        assert deactivated is not None
        return deactivated
