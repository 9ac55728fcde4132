"""Grant tokens: the short-lived, single-use proof that a permitted request may be served.

A permit comes with a random 256-bit secret, given once to the requester, who hands it to the
holding institution; the holder redeems it before it releases anything. Only the SHA-256 of
the token is stored (table ``grant``), bound to requester, holder, subject, categories,
purpose and request id. Redemption is one guarded transition, ``UPDATE ... WHERE redeemed_at IS
NULL AND expires_at > now``, so of two concurrent redemptions exactly one succeeds, on SQLite
and on PostgreSQL alike. The log never holds the token, only ``grant_ref`` (a hash prefix).

Each way a redemption is refused is an ``ApiError`` with a stable problem type and the
``refusal`` code logged with it in ``access.refused``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Executable,
    LargeBinary,
    Row,
    Text,
    bindparam,
    select,
)
from sqlmodel import Field, SQLModel

from ledger.store import LedgerStore

from .domain.vocab import Category, InstitutionType, Purpose
from .errors import ApiError

GRANT_TOKEN_BYTES: Final = 32
GRANT_TOKEN_PATTERN: Final = r"^[A-Za-z0-9_-]{43}$"  # noqa: S105 (a syntax, not a secret)
"""A grant token: 32 random bytes, base64url without padding."""
GRANT_REF_HEX: Final = 16
"""How much of the token's hash the log may carry: 64 bits, to correlate, never to redeem."""


def new_grant_token() -> str:
    return secrets.token_urlsafe(GRANT_TOKEN_BYTES)


def token_hash(token: str) -> bytes:
    """What is stored of a token: its SHA-256."""
    return hashlib.sha256(token.encode("ascii")).digest()


def grant_ref(hashed: bytes) -> str:
    """The hash prefix under which the log names a presented token."""
    return hashed.hex()[:GRANT_REF_HEX]


# -- refusals --------------------------------------------------------------------------------


class GrantRefusedError(ApiError):
    """A redemption refused; ``refusal`` is the code logged in ``access.refused``."""

    refusal = "refused"


class UnknownGrantError(GrantRefusedError):
    status, slug, title = 404, "grant-unknown", "No grant has this token"
    refusal = "unknown-grant"


class GrantWrongPartyError(GrantRefusedError):
    status, slug, title = 403, "grant-wrong-party", "The grant was issued to other parties"
    refusal = "wrong-party"


class GrantPartyInactiveError(GrantRefusedError):
    status, slug, title = 403, "grant-party-inactive", "A party to the grant is no longer active"
    refusal = "party-inactive"


class GrantMismatchError(GrantRefusedError):
    status, slug, title = 422, "grant-mismatch", "The grant covers another subject or request"
    refusal = "binding-mismatch"


class GrantRedeemedError(GrantRefusedError):
    status, slug, title = 409, "grant-already-redeemed", "The grant was already redeemed"
    refusal = "already-redeemed"


class GrantExpiredError(GrantRefusedError):
    status, slug, title = 410, "grant-expired", "The grant has expired"
    refusal = "expired"


class ConsentWithdrawnError(GrantRefusedError):
    status, slug, title = 422, "consent-no-longer-covers", "The consents no longer permit this"
    refusal = "consent-no-longer-covers"


# -- storage ---------------------------------------------------------------------------------


class GrantRow(SQLModel, table=True):
    """One issued grant, by the hash of its token; ``redeemed_at`` is set exactly once."""

    __tablename__ = "grant"

    request_id: str = Field(sa_column=Column(Text, primary_key=True))
    token_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    requester: str = Field(sa_column=Column(Text, nullable=False))
    requester_type: str = Field(sa_column=Column(Text, nullable=False))
    holder: str = Field(sa_column=Column(Text, nullable=False))
    subject: str = Field(sa_column=Column(Text, nullable=False))
    categories: str = Field(sa_column=Column(Text, nullable=False))
    purpose: str = Field(sa_column=Column(Text, nullable=False))
    breakglass: bool = Field(sa_column=Column(Boolean, nullable=False))
    decision_leaf_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    issued_at: float = Field(sa_column=Column(Double, nullable=False))
    expires_at: float = Field(sa_column=Column(Double, nullable=False))
    redeemed_at: float | None = Field(default=None, sa_column=Column(Double, nullable=True))
    outcome: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome_leaf_index: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )


_GRANT = GrantRow.__table__  # type: ignore[attr-defined]
# Constant statements, so that the group committer writes a batch's grants in one executemany.
_ISSUE = _GRANT.insert()
# SET takes the parameters named as columns (outcome, outcome_leaf_index).
_SETTLE = _GRANT.update().where(
    _GRANT.c.request_id == bindparam("settled_request_id"), _GRANT.c.outcome.is_(None)
)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a grant is bound to, and where it stands."""

    request_id: str
    token_hash: bytes
    requester: str
    requester_type: InstitutionType
    holder: str
    subject: str
    categories: frozenset[Category]
    purpose: Purpose
    breakglass: bool
    decision_leaf_index: int
    issued_at: float
    expires_at: float
    redeemed_at: float | None = None

    @property
    def ref(self) -> str:
        return grant_ref(self.token_hash)


class Claim(StrEnum):
    """The outcome of trying to redeem a grant."""

    CLAIMED = "claimed"
    REDEEMED = "already-redeemed"
    EXPIRED = "expired"


class UnreadableGrantError(Exception):
    """A stored grant row holding a value no issued grant has: it was written by hand."""

    def __init__(self, request_id: str, decision_leaf_index: int, reason: str) -> None:
        super().__init__(reason)
        self.request_id = request_id
        self.decision_leaf_index = decision_leaf_index
        self.reason = reason


def _grant(row: Row[Any]) -> Grant:
    """The grant a row stores (UnreadableGrantError if no grant could be stored so)."""
    try:
        return _parsed(row)
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableGrantError(
            str(row.request_id), int(row.decision_leaf_index), f"unreadable: {exc}"
        ) from exc


def _parsed(row: Row[Any]) -> Grant:
    return Grant(
        request_id=row.request_id,
        token_hash=bytes(row.token_hash),
        requester=row.requester,
        requester_type=InstitutionType(row.requester_type),
        holder=row.holder,
        subject=row.subject,
        categories=frozenset(Category(c) for c in json.loads(row.categories)),
        purpose=Purpose(row.purpose),
        breakglass=bool(row.breakglass),
        decision_leaf_index=int(row.decision_leaf_index),
        issued_at=float(row.issued_at),
        expires_at=float(row.expires_at),
        redeemed_at=None if row.redeemed_at is None else float(row.redeemed_at),
    )


class GrantStore:
    """Issued grants on the ledger's database."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    @classmethod
    def open(cls, store: LedgerStore) -> GrantStore:
        store.create_schema(extra_tables=[_GRANT])
        return cls(store)

    def issue(self, grant: Grant) -> None:
        with self._store.write() as conn:
            conn.execute(*self.issue_row(grant))

    @staticmethod
    def issue_row(grant: Grant) -> tuple[Executable, dict[str, Any]]:
        """The insert that issues ``grant``, to run in the transaction logging its decision."""
        return _ISSUE, {
            "request_id": grant.request_id,
            "token_hash": grant.token_hash,
            "requester": grant.requester,
            "requester_type": grant.requester_type.value,
            "holder": grant.holder,
            "subject": grant.subject,
            "categories": json.dumps(sorted(grant.categories)),
            "purpose": grant.purpose.value,
            "breakglass": grant.breakglass,
            "decision_leaf_index": grant.decision_leaf_index,
            "issued_at": grant.issued_at,
            "expires_at": grant.expires_at,
        }

    def get(self, hashed: bytes) -> Grant | None:
        with self._store.read() as conn:
            row = conn.execute(select(_GRANT).where(_GRANT.c.token_hash == hashed)).first()
        return None if row is None else _grant(row)

    def page(self, *, after: str, limit: int) -> list[Grant | UnreadableGrantError]:
        """The grants after request id ``after`` in its order (for a scrub), each row read as
        its grant or as the reason it is none."""
        query = (
            select(_GRANT)
            .where(_GRANT.c.request_id > after)
            .order_by(_GRANT.c.request_id)
            .limit(limit)
        )
        with self._store.read() as conn:
            rows = conn.execute(query).all()
        found: list[Grant | UnreadableGrantError] = []
        for row in rows:
            try:
                found.append(_grant(row))
            except UnreadableGrantError as exc:
                found.append(exc)
        return found

    def claim(self, hashed: bytes, now: float) -> Claim:
        """Mark the grant redeemed at ``now`` if it is neither redeemed nor expired; atomic."""
        with self._store.write() as conn:
            claimed = conn.execute(
                _GRANT.update()
                .where(
                    _GRANT.c.token_hash == hashed,
                    _GRANT.c.redeemed_at.is_(None),
                    _GRANT.c.expires_at > now,
                )
                .values(redeemed_at=now)
            ).rowcount
            if claimed == 1:
                return Claim.CLAIMED
            redeemed_at = conn.execute(
                select(_GRANT.c.redeemed_at).where(_GRANT.c.token_hash == hashed)
            ).scalar_one()
        return Claim.EXPIRED if redeemed_at is None else Claim.REDEEMED

    def settle(self, request_id: str, outcome: str, leaf_index: int) -> None:
        """Record how a claimed grant ended (released or refused) and the leaf saying so."""
        with self._store.write() as conn:
            conn.execute(*self.settle_row(request_id, outcome, leaf_index))

    @staticmethod
    def settle_row(
        request_id: str, outcome: str, leaf_index: int
    ) -> tuple[Executable, dict[str, Any]]:
        """The update that settles a grant, to run in the transaction logging its outcome."""
        return _SETTLE, {
            "settled_request_id": request_id,
            "outcome": outcome,
            "outcome_leaf_index": leaf_index,
        }
