"""Every exception the consent domain raises on purpose; the API maps them to problem responses."""

from __future__ import annotations

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


class UnsupportedConsentError(DomainError):
    """A FHIR Consent says something this domain cannot express, so it is refused whole.

    ``path`` names the element (``Consent.provision.provision[0].securityLabel``), ``reason``
    says why it cannot be taken in. Nothing of such a resource is ever applied.
    """

    def __init__(self, reason: str, path: str) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}")
