"""Every exception the consent domain raises on purpose; the API maps them to problem responses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consent_api.domain.rules import Point


class DomainError(Exception):
    """Base of every error the consent domain raises on purpose."""


class InvalidConsentError(DomainError, ValueError):
    """A consent, a request or a set of consent records breaks a rule of the domain.

    A ``ValueError`` so that, raised inside a model validator, pydantic reports it as a
    validation error of the field or model concerned.
    """


class NarrowingError(DomainError):
    """A proposed new version of a consent would permit something its predecessor did not.

    ``witness`` is one point (requester, holder, category, purpose, instant) at which the
    new version is more permissive, when the refusal is about permissions at all.
    """

    def __init__(self, message: str, *, witness: Point | None = None) -> None:
        self.witness = witness
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Blocker:
    """One element that stops a FHIR Consent from being imported, and why."""

    path: str
    reason: str


class UnsupportedConsentError(DomainError):
    """A FHIR Consent says something this domain cannot express, so it is refused whole.

    ``path`` names the element (``Consent.provision.provision[0].securityLabel``), ``reason``
    says why it cannot be taken in. ``blockers`` lists every such element found, in document
    order (the first is ``path``), so one refusal tells the sender everything to change.
    Nothing of such a resource is ever applied.
    """

    def __init__(self, reason: str, path: str, *, more: Sequence[Blocker] = ()) -> None:
        self.reason = reason
        self.path = path
        self.blockers: tuple[Blocker, ...] = (Blocker(path, reason), *more)
        message = f"{path}: {reason}"
        if more:
            message += "; " + "; ".join(f"{b.path}: {b.reason}" for b in more)
        super().__init__(message)

    @classmethod
    def of(cls, blockers: Sequence[Blocker]) -> UnsupportedConsentError:
        """One error listing ``blockers`` (at least one)."""
        first, *rest = blockers
        return cls(first.reason, first.path, more=rest)
