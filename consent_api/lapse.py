"""A guardian's authority ends on the child's 14th birthday; that date would reveal the birth
date, so leaves carry a salted commitment to it instead of the date.

The salt is an HMAC, under a key derived from the platform secret, of the consent id and
version: the service recomputes it, restores the date from the vault (the child's encrypted
birth date) and checks it against the commitment. An erased child's date cannot be restored,
and their consents are no longer projected: nobody can act on them any more.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import date
from typing import Any

from .domain.consent import Consent, guardian_authority_end

FIELD = "guardian_authority_ends"


class LapseCommitments:
    def __init__(self, platform_secret: bytes) -> None:
        self._key = hmac.new(platform_secret, b"guardian-lapse-commitment", hashlib.sha256).digest()

    def commitment(self, consent_id: str, version: int, ends: date) -> str:
        salt = hmac.new(self._key, f"{consent_id}:{version}".encode(), hashlib.sha256).digest()
        return hashlib.sha256(salt + ends.isoformat().encode()).hexdigest()

    def opening(self, consent_id: str, version: int) -> str:
        """The salt, hex: with the date, what a regulator needs to check a commitment."""
        salt = hmac.new(self._key, f"{consent_id}:{version}".encode(), hashlib.sha256).digest()
        return salt.hex()

    def to_leaf(self, consent: Consent) -> dict[str, Any]:
        """The consent as logged: the lapse date replaced by its commitment."""
        body = consent.model_dump(mode="json")
        ends = consent.guardian_authority_ends
        if ends is not None:
            body[FIELD] = {"sha256": self.commitment(consent.consent_id, consent.version, ends)}
        return body

    def logged(self, body: dict[str, Any]) -> dict[str, Any]:
        """A projected consent (``from_leaf``'s answer) back as logged: its lapse date as the
        commitment the leaf holds (checking a projected row against its leaf)."""
        ends = body.get(FIELD)
        if not isinstance(ends, str):
            return body
        commitment = self.commitment(
            str(body["consent_id"]), int(body["version"]), date.fromisoformat(ends)
        )
        return {**body, FIELD: {"sha256": commitment}}

    def from_leaf(
        self, body: dict[str, Any], birth_date_of: Callable[[str], date | None]
    ) -> dict[str, Any] | None:
        """The consent with its lapse date restored, or None when it cannot be (erased child).

        Raises ValueError if the restored date does not match the logged commitment.
        """
        committed = body.get(FIELD)
        if not isinstance(committed, dict):
            return body
        born = birth_date_of(str(body["subject"]))
        if born is None:
            return None
        ends = guardian_authority_end(born)
        if self.commitment(str(body["consent_id"]), int(body["version"]), ends) != committed.get(
            "sha256"
        ):
            raise ValueError("the guardian lapse date does not match its logged commitment")
        return {**body, FIELD: ends.isoformat()}
