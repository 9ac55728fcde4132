"""Walking FHIR JSON strictly: every key of every object is consumed or refused.

``JsonNode`` wraps one JSON object with its FHIR path and remembers which keys the reader
consumed (read, or ignored on purpose). ``done()`` refuses the keys left over with an
``UnsupportedConsentError`` naming each, which is how unknown or unsupported elements can never
slip through a reader unnoticed; ``Blockers`` gathers such refusals across a whole resource.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final, TypeVar

from consent_api.domain.errors import Blocker, InvalidConsentError, UnsupportedConsentError

WHY: Final = {
    "securityLabel": "restrictions by security label cannot be enforced: requests carry none",
    "code": "restrictions by clinical code cannot be enforced: requests carry data categories",
    "class": "only the data categories of this ledger can be enforced",
    "data": "restrictions to particular resources cannot be enforced",
    "dataPeriod": "restrictions by the data's own time frame cannot be enforced",
    "policy": "a policy referenced by URI cannot be interpreted",
    "implicitRules": "implicit rules cannot be interpreted",
    "contained": "contained resources are not resolved",
    "modifierExtension": "modifier extensions change the meaning and are not understood",
    "extension": "extensions other than this ledger's are not understood",
}
"""Why an element is refused, by element name; anything else is simply "not supported"."""
_NOT_SUPPORTED: Final = "this element is not supported"
T = TypeVar("T")


class JsonNode:
    """One JSON object at ``path``, remembering which of its keys were consumed."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidConsentError(f"{path} is not an object")
        self.data: Mapping[str, object] = data
        self.path = path
        self._seen: set[str] = {"id"}  # element ids carry no meaning

    def raw(self, key: str) -> object:
        self._seen.add(key)
        return self.data.get(key)

    def text(self, key: str) -> str | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, str):
            raise InvalidConsentError(f"{self.path}.{key} is not a string")
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise UnsupportedConsentError(f"{key} is required here", self.path)
        return value

    def child(self, key: str) -> JsonNode | None:
        value = self.raw(key)
        return None if value is None else JsonNode(value, f"{self.path}.{key}")

    def children(self, key: str) -> list[JsonNode]:
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidConsentError(f"{self.path}.{key} is not an array")
        return [JsonNode(item, f"{self.path}.{key}[{i}]") for i, item in enumerate(value)]

    def ignore(self, *keys: str) -> None:
        self._seen.update(keys)

    def unsupported(self, key: str, reason: str) -> UnsupportedConsentError:
        return UnsupportedConsentError(reason, f"{self.path}.{key}")

    def done(self) -> None:
        """Refuse every key nobody consumed: elements the ledger cannot express."""
        left = [
            Blocker(f"{self.path}.{key}", WHY.get(key.removeprefix("_"), _NOT_SUPPORTED))
            for key in self.data
            if key not in self._seen  # a primitive's extensions (_key): refused like it
        ]
        if left:
            raise UnsupportedConsentError.of(left)


class Blockers:
    """Every element that blocks an import, gathered so that a refusal names them all.

    ``attempt`` runs one independent part of the reading; an ``UnsupportedConsentError`` it
    raises is recorded and ``fallback`` stands in for its result, so reading goes on and
    later blockers are found too. ``raise_any`` refuses the resource if anything was found.
    """

    def __init__(self) -> None:
        self.found: list[Blocker] = []

    def attempt(self, read: Callable[[], T], fallback: T) -> T:
        try:
            return read()
        except UnsupportedConsentError as error:
            self.found.extend(error.blockers)
            return fallback

    def add(self, error: UnsupportedConsentError) -> None:
        self.found.extend(error.blockers)

    def raise_any(self) -> None:
        if self.found:
            raise UnsupportedConsentError.of(self.found)


def codes(concept: JsonNode) -> set[tuple[str | None, str | None]]:
    """The (system, code) pairs of a CodeableConcept; its text and displays are ignored."""
    concept.ignore("text")
    pairs = {coding_of(coding) for coding in concept.children("coding")}
    concept.done()
    return pairs


def coding_of(coding: JsonNode) -> tuple[str | None, str | None]:
    """The (system, code) of a Coding; display, version and userSelected are ignored."""
    coding.ignore("display", "version", "userSelected")
    pair = (coding.text("system"), coding.text("code"))
    coding.done()
    return pair


def parse_date(value: str, path: str) -> date:
    """A full FHIR date (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise InvalidConsentError(f"{path}: {value!r} is not a FHIR date") from error


def parse_instant(value: str, path: str, *, zone: tzinfo, end: bool) -> datetime:
    """A FHIR date or dateTime as an instant.

    A dateTime with a time is taken as it is (FHIR requires its offset). A partial date (year,
    month or day, in ``zone``) covers its whole span: its first microsecond as a start, its
    last as an ``end``, since FHIR's period end includes every time matching it.
    """
    try:
        if "T" in value:
            parsed = datetime.fromisoformat(value)
            if parsed.utcoffset() is None:
                raise ValueError("no time zone")
            return parsed
        # FHIR's partial dates are ASCII digits; ``int`` would also take "٢٠٢٠", "+2020", " 1".
        if not re.fullmatch(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?", value):
            raise ValueError("not YYYY, YYYY-MM or YYYY-MM-DD")
        parts = value.split("-")
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else (12 if end else 1)
        last_day = calendar.monthrange(year, month)[1]
        day = int(parts[2]) if len(parts) > 2 else (last_day if end else 1)
        first = datetime.combine(date(year, month, day), time(), zone)
    except (ValueError, IndexError) as error:
        raise InvalidConsentError(f"{path}: {value!r} is not a FHIR dateTime") from error
    return first + timedelta(days=1, microseconds=-1) if end else first
