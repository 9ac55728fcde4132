"""Who a resident is, apart from the log: pseudonyms, and personal data under per-resident keys.

Nothing personal ever becomes a leaf or goes on chain. A resident appears in the log, in tokens
and in every other table only as a *subject*: the hex HMAC-SHA256 of their identifier under a
platform secret (``<data_dir>/platform-pseudonym.key``), stable for the same identifier and
unlinkable to it without the secret. The personal fields that must be kept (the identifier
itself, name, birth date, contact, guardian links) live in ``resident_record``, sealed with
AES-256-GCM under a key of that resident alone (``resident_key``), the subject bound in as
associated data so that a record cannot be passed off as another resident's.

Erasure is crypto-shredding: the key and the record are deleted and a tombstone is kept (subject
and time only), so any copy of the ciphertext left in a backup is unreadable. That holds only if
``resident_key`` is not itself kept in long-lived backups: back it up apart, or not at all. On
SQLite the deleted rows are zeroed (``secure_delete``) and the WAL is truncated; on PostgreSQL
dead rows stay on disk until VACUUM reclaims them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Engine,
    LargeBinary,
    Text,
    bindparam,
    delete,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from ledger.engine import RawReader
from ledger.errors import IntegrityError, KeyFileError
from ledger.store import LedgerStore

from .errors import ErasedError, ForbiddenError, UnknownSubjectError
from .keyfiles import hold_to_pin, pinned_secret

PSEUDONYM_KEY_FILE: Final = "platform-pseudonym.key"
PSEUDONYM_SECRET_BYTES: Final = 32
PSEUDONYM_KEY_LOSES: Final = (
    "give every resident another subject id, orphaning their consents and history"
)
SUBJECT_PATTERN: Final = r"^[0-9a-f]{64}$"
SUBJECT_ERASED: Final = "subject.erased"
NOT_GUARDIAN: Final = "you are not a guardian of this resident"

Subject = Annotated[str, Field(pattern=SUBJECT_PATTERN, description="A pseudonymous subject id.")]


def is_subject(value: str) -> bool:
    """Whether ``value`` has the form of a subject id (64 lowercase hex digits)."""
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def pseudonym(platform_secret: bytes, resident_identifier: str) -> str:
    """The subject id of a resident: hex HMAC-SHA256 of their identifier under the platform secret.

    The identifier is normalized first (``normalize_identifier``), so that the same identifier
    written with other Unicode code points or stray spaces does not split one resident in two.
    """
    if len(platform_secret) < PSEUDONYM_SECRET_BYTES:
        raise ValueError(f"the platform secret must have at least {PSEUDONYM_SECRET_BYTES} bytes")
    normalized = normalize_identifier(resident_identifier)
    if not normalized:
        raise ValueError("a resident identifier cannot be empty")
    return hmac.new(platform_secret, normalized.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonym_key_fingerprint(secret: bytes) -> str:
    """What the database keeps of the pseudonym secret to know it again: a domain-separated
    SHA-256 (the secret is 256 random bits, so this reveals nothing of it)."""
    return hashlib.sha256(b"consent-ledger platform-pseudonym.key\x00" + secret).hexdigest()


def normalize_identifier(resident_identifier: str) -> str:
    """The identifier as the pseudonym sees it: NFC, without surrounding white space."""
    return unicodedata.normalize("NFC", resident_identifier).strip()


@dataclass(frozen=True, slots=True, repr=False)
class PseudonymKey:
    """The platform secret behind subject ids; its repr never shows the secret."""

    secret: bytes

    @classmethod
    def load(cls, data_dir: Path, store: LedgerStore, *, create: bool = True) -> PseudonymKey:
        """Load ``<data_dir>/platform-pseudonym.key``, held to the fingerprint ``store`` pinned;
        on a deployment's first start create it (32 random bytes, 0600) and pin it. Without
        ``create`` (a read-only check), a missing file is refused and nothing is pinned."""
        path = data_dir / PSEUDONYM_KEY_FILE
        secret = pinned_secret(
            path,
            store,
            (lambda: os.urandom(PSEUDONYM_SECRET_BYTES)) if create else None,
            loses=PSEUDONYM_KEY_LOSES,
        )
        if len(secret) != PSEUDONYM_SECRET_BYTES:
            raise KeyFileError(f"{path} must hold exactly {PSEUDONYM_SECRET_BYTES} bytes")
        hold_to_pin(store, path, pseudonym_key_fingerprint(secret), record=create)
        return cls(secret)

    def subject_of(self, resident_identifier: str) -> str:
        return pseudonym(self.secret, resident_identifier)

    def __repr__(self) -> str:
        return "PseudonymKey(<secret>)"


class PersonalRecord(BaseModel):
    """A resident's personal fields: only ever stored encrypted, never logged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    identifier: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    birth_date: date
    contact: str | None = Field(default=None, max_length=200)
    guardians: tuple[Subject, ...] = Field(
        default=(), max_length=8, description="Subjects of the resident's legal guardians."
    )


@dataclass(frozen=True, slots=True)
class Erasure:
    """A resident's erasure: when it happened and, once logged, the leaf that records it."""

    subject: str
    erased_at: datetime
    leaf_index: int | None


def subject_erased_event(erasure: Erasure) -> dict[str, Any]:
    """The data of the ``subject.erased`` event: the pseudonymous subject and the time, no more."""
    instant = erasure.erased_at.astimezone(UTC).isoformat(timespec="seconds")
    return {"subject": erasure.subject, "erased_at": instant.replace("+00:00", "Z")}


# -- storage ---------------------------------------------------------------------------------


class ResidentKeyRow(SQLModel, table=True):
    """A resident's AES-256-GCM key; deleting it shreds every copy of their record."""

    __tablename__ = "resident_key"

    subject: str = SQLField(sa_column=Column(Text, primary_key=True))
    key: bytes = SQLField(sa_column=Column(LargeBinary(32), nullable=False))


class ResidentRecordRow(SQLModel, table=True):
    """A resident's personal record, sealed under their key with the subject as associated data."""

    __tablename__ = "resident_record"

    subject: str = SQLField(sa_column=Column(Text, primary_key=True))
    nonce: bytes = SQLField(sa_column=Column(LargeBinary(12), nullable=False))
    ciphertext: bytes = SQLField(sa_column=Column(LargeBinary, nullable=False))
    updated_at: float = SQLField(sa_column=Column(Double, nullable=False))


class ResidentErasureRow(SQLModel, table=True):
    """A tombstone (subject and time only), so an erased resident reads as erased, not unknown."""

    __tablename__ = "resident_erasure"

    subject: str = SQLField(sa_column=Column(Text, primary_key=True))
    erased_at: float = SQLField(sa_column=Column(Double, nullable=False))
    leaf_index: int | None = SQLField(default=None, sa_column=Column(BigInteger, nullable=True))


_KEY = ResidentKeyRow.__table__  # type: ignore[attr-defined]
_RECORD = ResidentRecordRow.__table__  # type: ignore[attr-defined]
_ERASURE = ResidentErasureRow.__table__  # type: ignore[attr-defined]
# Built once: every access decision asks it, and building a statement costs more than running it.
_HAS_KEY = select(_KEY.c.subject).where(_KEY.c.subject == bindparam("key_subject"))
_HAS_KEY_SQL = "SELECT subject FROM resident_key WHERE subject = ?"


class ResidentVault:
    """Personal records of residents, each under its own key, on the ledger's database."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    @classmethod
    def open(cls, store: LedgerStore) -> ResidentVault:
        """The vault on ``store``'s database, creating its tables on first use."""
        store.create_schema(extra_tables=[_KEY, _RECORD, _ERASURE])
        return cls(store)

    def put(self, subject: str, record: PersonalRecord, *, now: float | None = None) -> bool:
        """Store (or replace) ``subject``'s record; True if the resident is new."""
        _check_subject(subject)
        try:
            return self._put(subject, record, time.time() if now is None else now)
        except sa_exc.IntegrityError:
            # Two first registrations raced (PostgreSQL); the second now finds the key.
            return self._put(subject, record, time.time() if now is None else now)

    def _put(self, subject: str, record: PersonalRecord, now: float) -> bool:
        with self._store.write() as conn:
            if _erased_at(conn, subject) is not None:
                raise ErasedError(f"resident {subject} was erased", subject=subject)
            key = conn.execute(
                select(_KEY.c.key).where(_KEY.c.subject == subject)
            ).scalar_one_or_none()
            created = key is None
            if key is None:
                key = AESGCM.generate_key(bit_length=256)
                conn.execute(_KEY.insert().values(subject=subject, key=key))
            nonce, ciphertext = _seal(key, subject, record)
            values = {"nonce": nonce, "ciphertext": ciphertext, "updated_at": now}
            if created:
                conn.execute(_RECORD.insert().values(subject=subject, **values))
            else:
                conn.execute(_RECORD.update().where(_RECORD.c.subject == subject).values(**values))
        return created

    def read(self, subject: str) -> PersonalRecord:
        """``subject``'s personal record; ErasedError after erasure, UnknownSubjectError if none."""
        _check_subject(subject)
        with self._store.read() as conn:
            key = conn.execute(
                select(_KEY.c.key).where(_KEY.c.subject == subject)
            ).scalar_one_or_none()
            row = conn.execute(
                select(_RECORD.c.nonce, _RECORD.c.ciphertext).where(_RECORD.c.subject == subject)
            ).first()
            if key is None or row is None:
                if _erased_at(conn, subject) is not None:
                    raise ErasedError(f"resident {subject} was erased", subject=subject)
                raise UnknownSubjectError(f"no resident has the subject id {subject}")
        return _open(bytes(key), subject, bytes(row.nonce), bytes(row.ciphertext))

    def record_for_guardian(self, subject: str, guardian: str) -> PersonalRecord:
        """``subject``'s record, if ``guardian`` is one of their guardians; otherwise
        ForbiddenError, the same whether the subject is unknown, erased or another's child, so
        that a resident cannot learn which subject ids exist or were erased."""
        try:
            record = self.read(subject)
        except (ErasedError, UnknownSubjectError):
            record = None
        if record is None or guardian not in record.guardians:
            raise ForbiddenError(NOT_GUARDIAN)
        return record

    def birth_date(self, subject: str) -> date:
        """When ``subject`` was born (for the rule that a guardian's consent lapses at 14)."""
        return self.read(subject).birth_date

    def birth_date_if_known(self, subject: str) -> date | None:
        """The birth date, or None for a subject never registered or erased."""
        try:
            return self.birth_date(subject)
        except (ErasedError, UnknownSubjectError):
            return None

    def ensure_registered(self, subject: str, conn: Connection | None = None) -> None:
        """Raise UnknownSubjectError or ErasedError unless ``subject`` has a readable record
        (read in ``conn``'s transaction if given, so a caller can read more in the same one)."""
        _check_subject(subject)
        if conn is None:
            with self._store.read() as own:
                self._ensure_registered(own, subject)
        else:
            self._ensure_registered(conn, subject)

    @staticmethod
    def has_key(subject: str, reader: RawReader) -> bool:
        """Whether ``subject`` has a key (is registered and not erased), read in ``reader``'s
        transaction; ``ensure_registered`` says why not."""
        return bool(reader.rows(_HAS_KEY_SQL, (subject,)))

    @staticmethod
    def _ensure_registered(conn: Connection, subject: str) -> None:
        if _has_key(conn, subject):
            return
        if _erased_at(conn, subject) is not None:
            raise ErasedError(f"resident {subject} was erased", subject=subject)
        raise UnknownSubjectError(f"no resident has the subject id {subject}")

    def erase(self, subject: str, *, now: float | None = None) -> tuple[Erasure, bool]:
        """Delete ``subject``'s key and record, keeping a tombstone; True if erased just now.

        Erasing again returns the earlier erasure; its ``leaf_index`` says whether the
        ``subject.erased`` event was logged (None: the caller should log it now).
        """
        _check_subject(subject)
        erased_at = time.time() if now is None else now
        with self._store.write() as conn:
            earlier = conn.execute(
                select(_ERASURE.c.erased_at, _ERASURE.c.leaf_index).where(
                    _ERASURE.c.subject == subject
                )
            ).first()
            if earlier is not None:
                return Erasure(subject, _instant(earlier.erased_at), earlier.leaf_index), False
            if not _has_key(conn, subject):
                raise UnknownSubjectError(f"no resident has the subject id {subject}")
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # Zero the freed cells, so the key's bytes do not linger in the file.
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            conn.execute(delete(_KEY).where(_KEY.c.subject == subject))
            conn.execute(delete(_RECORD).where(_RECORD.c.subject == subject))
            conn.execute(_ERASURE.insert().values(subject=subject, erased_at=erased_at))
            if sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete = OFF")
        _truncate_sqlite_wal(self._store.engine)
        return Erasure(subject, _instant(erased_at), None), True

    def subjects_starting(self, prefix: str, limit: int = 3) -> list[str]:
        """Registered (not erased) subject ids that start with ``prefix`` (lowercase hex), at
        most ``limit``: for a person who copied the start of one off a screen."""
        if re.fullmatch(r"[0-9a-f]{1,64}", prefix) is None:
            raise ValueError(f"{prefix!r} is not the start of a subject id (lowercase hex)")
        query = select(_KEY.c.subject).where(_KEY.c.subject.startswith(prefix, autoescape=True))
        with self._store.read() as conn:
            return list(conn.execute(query.order_by(_KEY.c.subject).limit(limit)).scalars())

    def erasure(self, subject: str) -> Erasure | None:
        """``subject``'s erasure, or None if they were never erased."""
        with self._store.read() as conn:
            row = conn.execute(
                select(_ERASURE.c.erased_at, _ERASURE.c.leaf_index).where(
                    _ERASURE.c.subject == subject
                )
            ).first()
        return None if row is None else Erasure(subject, _instant(row.erased_at), row.leaf_index)

    def record_erasure_logged(self, subject: str, leaf_index: int) -> None:
        """Remember the leaf of the ``subject.erased`` event, so it is not logged twice."""
        with self._store.write() as conn:
            conn.execute(
                _ERASURE.update()
                .where(_ERASURE.c.subject == subject, _ERASURE.c.leaf_index.is_(None))
                .values(leaf_index=leaf_index)
            )


def _check_subject(subject: str) -> None:
    if not is_subject(subject):
        raise UnknownSubjectError(f"{subject!r} is not a subject id (64 lowercase hex digits)")


def _has_key(conn: Connection, subject: str) -> bool:
    return conn.execute(_HAS_KEY, {"key_subject": subject}).first() is not None


def _erased_at(conn: Connection, subject: str) -> float | None:
    value: float | None = conn.execute(
        select(_ERASURE.c.erased_at).where(_ERASURE.c.subject == subject)
    ).scalar_one_or_none()
    return value


def _instant(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _seal(key: bytes, subject: str, record: PersonalRecord) -> tuple[bytes, bytes]:
    nonce = os.urandom(12)  # random 96-bit nonces: safe for far more writes than one resident makes
    return nonce, AESGCM(key).encrypt(nonce, record.model_dump_json().encode(), subject.encode())


def _open(key: bytes, subject: str, nonce: bytes, ciphertext: bytes) -> PersonalRecord:
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, subject.encode())
        return PersonalRecord.model_validate_json(plaintext)
    except (InvalidTag, ValidationError) as exc:
        raise IntegrityError(f"the personal record of {subject} does not open") from exc


def _truncate_sqlite_wal(engine: Engine) -> None:
    """Best effort: fold the WAL into the database and empty it, dropping old page images."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()
