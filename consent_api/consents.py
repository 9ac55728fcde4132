"""Granting, narrowing, renewing and revoking consents: checked, logged, then projected.

Each change is decided against the projection inside a per-subject critical section, appended
to the log (its leaf index is the answer), and projected. The critical section makes two
concurrent changes of one resident's consents take turns, in one process by a lock and across
PostgreSQL worker processes by an advisory lock on the subject. Every institution a consent
names (grantee or holder, at any depth) must be a well-formed id of a registered institution,
checked before anything is logged: what is logged stays in the log for good.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from ledger.batcher import GroupCommitter
from ledger.store import LedgerStore

from .auth import Principal, Role
from .domain.consent import (
    RESIDENT,
    Consent,
    Grantor,
    guardian_authority_end,
    guardian_in_authority,
    named_institutions,
    renew_by_resident,
)
from .domain.consent import revoke as revoke_consent
from .domain.errors import DomainError
from .domain.narrowing import narrow as narrow_consent
from .domain.vocab import is_institution_id
from .errors import ConflictError, ForbiddenError, NotFoundError, UnprocessableError
from .gate import SubjectGate, advisory_key
from .identity import ResidentVault
from .institutions import InstitutionRegistry
from .lapse import LapseCommitments
from .records import Records, latest_versions


class SubjectLocks:
    """One resident's consent changes at a time, across threads and PostgreSQL workers."""

    def __init__(self, store: LedgerStore, gate: SubjectGate | None = None) -> None:
        self.store = store
        self.gate = gate or SubjectGate()
        """Decisions read under it (``gate``): a change excludes them while it is made."""
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, subject: str) -> Iterator[None]:
        """Change ``subject``'s consents alone: stamp, log and project inside."""
        with self._guard:
            lock = self._locks.setdefault(subject, threading.Lock())
        with lock, self.gate.changing(subject):
            if self.store.engine.dialect.name != "postgresql":
                yield  # SQLite serves from one process; the thread lock is enough
                return
            key = advisory_key(subject)
            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    conn.commit()


class ConsentService:
    def __init__(
        self,
        records: Records,
        committer: GroupCommitter,
        vault: ResidentVault,
        locks: SubjectLocks,
        lapse: LapseCommitments,
        institutions: InstitutionRegistry,
    ) -> None:
        self.lapse = lapse
        self.institutions = institutions
        self.records = records
        self.committer = committer
        self.vault = vault
        self.locks = locks

    # -- who may act ---------------------------------------------------------------------------

    def grantor_for(self, principal: Principal, subject: str, at: datetime) -> tuple[Grantor, Any]:
        """The grantor a caller acts as for ``subject``: themself, or a minor's guardian."""
        if principal.role is not Role.RESIDENT:
            raise ForbiddenError("only residents (or their guardians) change consents")
        if principal.id == subject:
            self.vault.ensure_registered(subject)
            return RESIDENT, None
        record = self.vault.record_for_guardian(subject, principal.id)  # alike for unknown, erased
        ends = guardian_authority_end(record.birth_date)
        if at >= datetime.combine(ends, datetime.min.time(), UTC):
            raise ForbiddenError("a guardian's authority ends on the child's 14th birthday")
        return Grantor(kind="guardian", guardian=principal.id), ends

    def may_read(self, principal: Principal, subject: str) -> None:
        if principal.role in (Role.REGULATOR, Role.ADMIN):
            return
        if principal.role is Role.RESIDENT:
            if principal.id == subject:
                return
            record = self.vault.record_for_guardian(subject, principal.id)
            if guardian_in_authority(record.birth_date, datetime.now(UTC)):
                return
            raise ForbiddenError("a guardian's authority ends on the child's 14th birthday")
        raise ForbiddenError("you may not read this resident's consents")

    # -- changes ---------------------------------------------------------------------------------

    def grant(
        self, principal: Principal, rules: dict[str, Any], subject: str
    ) -> tuple[int, Consent]:
        now = datetime.now(UTC)
        grantor, ends = self.grantor_for(principal, subject, now)
        try:
            # JSON mode: the domain models are strict, and JSON is how rules arrive.
            consent = Consent.model_validate_json(
                json.dumps(
                    {
                        **rules,
                        "consent_id": f"c-{secrets.token_hex(12)}",
                        "subject": subject,
                        "version": 1,
                        "grantor": grantor.model_dump(mode="json"),
                        "guardian_authority_ends": None if ends is None else ends.isoformat(),
                        "status": "active",
                        "granted_at": now.isoformat(),
                        "revoked_at": None,
                    }
                )
            )
        except (DomainError, ValueError) as exc:
            raise UnprocessableError(str(exc)) from exc
        self._check_institutions(consent)
        with self.locks.hold(subject):
            return self._log("consent.granted", consent, now)

    def narrow(
        self, principal: Principal, consent_id: str, rules: dict[str, Any]
    ) -> tuple[int, Consent]:
        current = self.current(consent_id)
        now = datetime.now(UTC)
        grantor, ends = self.grantor_for(principal, current.subject, now)
        with self.locks.hold(current.subject):
            now = datetime.now(UTC)  # stamped where no decision about them reads meanwhile
            current = self.current(consent_id)  # again, inside the critical section
            if current.status == "revoked":
                raise ConflictError(f"consent {consent_id} is revoked")
            try:
                proposed = current.replace(
                    **_rules_from_json(rules),
                    version=current.version + 1,
                    grantor=grantor,
                    guardian_authority_ends=ends,
                    granted_at=now,
                )
                narrowed = narrow_consent(current, proposed)
            except (DomainError, ValueError) as exc:
                raise UnprocessableError(str(exc)) from exc
            self._check_institutions(narrowed)
            return self._log("consent.narrowed", narrowed, now)

    def revoke(self, principal: Principal, consent_id: str) -> tuple[int, Consent]:
        current = self.current(consent_id)
        now = datetime.now(UTC)
        self.grantor_for(principal, current.subject, now)
        with self.locks.hold(current.subject):
            now = datetime.now(UTC)  # stamped where no decision about them reads meanwhile
            current = self.current(consent_id)
            if current.status == "revoked":
                raise ConflictError(f"consent {consent_id} is already revoked")
            return self._log("consent.revoked", revoke_consent(current, now), now)

    def renew(self, principal: Principal, consent_id: str) -> tuple[int, Consent]:
        """The resident, 14 or older, takes over a consent their guardian granted."""
        current = self.current(consent_id)
        if principal.role is not Role.RESIDENT or principal.id != current.subject:
            raise ForbiddenError("only the resident themself renews a guardian's consent")
        now = datetime.now(UTC)
        with self.locks.hold(current.subject):
            now = datetime.now(UTC)  # stamped where no decision about them reads meanwhile
            current = self.current(consent_id)
            try:
                renewed = renew_by_resident(current, now)
            except (DomainError, ValueError) as exc:
                raise UnprocessableError(str(exc)) from exc
            return self._log("consent.narrowed", renewed, now)

    def _check_institutions(self, consent: Consent) -> None:
        """422 unless every institution ``consent`` names is a registered one."""
        for institution_id in sorted(named_institutions(consent)):
            if not is_institution_id(institution_id):
                # Not echoed: it may hold control, zero-width or bidirectional characters.
                raise UnprocessableError(
                    "a grantee or holder is not an institution id (letters, digits, '-', '.')"
                )
            if self.institutions.get(institution_id) is None:
                raise UnprocessableError(f"no institution {institution_id} is registered")

    # -- reads -------------------------------------------------------------------------------------

    def current(self, consent_id: str) -> Consent:
        versions = self.records.consent_versions(consent_id)
        if not versions:
            raise NotFoundError(f"no consent {consent_id}")
        return versions[-1][1]

    def latest_of(self, subject: str) -> list[tuple[int, Consent]]:
        return list(latest_versions(self.records.consent_history(subject)).values())

    def _log(self, kind: str, consent: Consent, at: datetime) -> tuple[int, Consent]:
        # No birth date in the log: a guardian's lapse date goes in as a commitment.
        data = {"consent": self.lapse.to_leaf(consent), "at": _iso(at)}
        leaf_index = self.committer.append(kind, data)
        self.records.project(leaf_index, kind, data)
        return leaf_index, consent


def _rules_from_json(rules: dict[str, Any]) -> dict[str, Any]:
    """Validate only the rule fields of a consent, as JSON, into model values."""
    probe = Consent.model_validate_json(
        json.dumps(
            {
                **rules,
                "consent_id": "probe",
                "subject": "probe",
                "version": 1,
                "grantor": {"kind": "resident", "guardian": None},
                "granted_at": "2000-01-01T00:00:00Z",
            }
        )
    )
    return {name: getattr(probe, name) for name in rules}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
