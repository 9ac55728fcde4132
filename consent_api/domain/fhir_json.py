"""Walking FHIR JSON strictly: every key of every object is consumed or refused.

``JsonNode`` wraps one JSON object with its FHIR path and remembers which keys the reader
consumed (read, or ignored on purpose). ``done()`` refuses the first key left over with an
``UnsupportedConsentError`` naming it, which is how unknown or unsupported elements can never
slip through a reader unnoticed.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

from consent_api.domain.errors import InvalidConsentError, UnsupportedConsentError

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
        """Refuse the first key nobody consumed: an element the ledger cannot express."""
        for key in self.data:
            if key not in self._seen:
                bare = key.removeprefix("_")  # a primitive's extensions: refused like it
                raise self.unsupported(key, WHY.get(bare, "this element is not supported"))


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
        parts = value.split("-")
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else (12 if end else 1)
        last_day = calendar.monthrange(year, month)[1]
        day = int(parts[2]) if len(parts) > 2 else (last_day if end else 1)
        first = datetime.combine(date(year, month, day), time(), zone)
    except (ValueError, IndexError) as error:
        raise InvalidConsentError(f"{path}: {value!r} is not a FHIR dateTime") from error
    return first + timedelta(days=1, microseconds=-1) if end else first
