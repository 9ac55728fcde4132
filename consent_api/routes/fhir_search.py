"""FHIR search on our routes: declared parameters, applied or visibly not, and opaque paging.

Each searchable resource declares its parameters once (``SearchParam``); the routes read the
query through ``Search``, and the CapabilityStatement lists the same declarations, so what is
advertised is what is applied. As FHIR R4 says (search.html, "Handling Errors"), a parameter
the server does not know is ignored and left out of the Bundle's self link, unless the client
sent ``Prefer: handling=strict``, which turns it into a 400. A known parameter with a bad value
is always a 400. Paging is FHIR's ``_count``; the next page is an opaque ``_cursor`` the
server writes into the ``next`` link (a client never builds one).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal
from urllib.parse import urlencode

from fastapi import Request

from ..domain.errors import InvalidConsentError
from ..domain.fhir_json import parse_instant
from ..errors import ApiError
from ..paging import public_base

DEFAULT_COUNT: Final = 100
MAX_COUNT: Final = 1000
CURSOR: Final = "_cursor"
_DIGITS: Final = re.compile(r"[0-9]+")
"""ASCII digits only: ``str.isdigit`` takes "²", which ``int`` then refuses."""
PAGING: Final = frozenset({"_count", CURSOR})
DATE_PREFIXES: Final = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
ParamType = Literal["reference", "token", "date", "number"]


class BadSearchError(ApiError):
    """A search the server cannot run as asked (FHIR: 400 with an OperationOutcome)."""

    status, slug, title = 400, "bad-search", "The search cannot be run as asked"


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter a resource supports, as the CapabilityStatement lists it."""

    name: str
    type: ParamType
    documentation: str


@dataclass(frozen=True, slots=True)
class DateRange:
    """A date search value: its prefix and the instants its precision spans."""

    prefix: str
    low: datetime
    high: datetime

    def matches(self, instant: datetime) -> bool:
        """Whether ``instant`` satisfies this value (FHIR date search on an instant)."""
        inside = self.low <= instant <= self.high
        return {
            "eq": inside,
            "ne": not inside,
            "gt": instant > self.high,
            "sa": instant > self.high,
            "lt": instant < self.low,
            "eb": instant < self.low,
            "ge": instant >= self.low,
            "le": instant <= self.high,
        }[self.prefix]


class Search:
    """The query of one search request, read against the resource's declared parameters."""

    def __init__(self, request: Request, params: Iterable[SearchParam]) -> None:
        self.request = request
        self._known = {p.name: p for p in params}
        strict = "handling=strict" in request.headers.get("prefer", "").replace(" ", "")
        self.values: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            base = name.split(":", 1)[0]
            if base in self._known or name in PAGING:
                self.values.setdefault(name, []).append(value)
            elif strict:
                raise BadSearchError(
                    f"unknown search parameter {name!r} (Prefer: handling=strict)",
                    path=name,
                )
        for name in self.values:
            if ":" in name:  # modifiers (:exact, :missing...) are not supported
                raise BadSearchError(f"search modifier not supported: {name}", path=name)
        self.count = self._count()
        self.after = self._cursor()

    def one(self, name: str) -> str | None:
        values = self.values.get(name, [])
        if len(values) > 1:
            raise BadSearchError(f"{name} may be given once", path=name)
        return values[0] if values else None

    def tokens(self, name: str) -> set[str] | None:
        """The codes of a token parameter (comma: any of them), or None when absent."""
        values = self.values.get(name)
        if values is None:
            return None
        return {code.rsplit("|", 1)[-1] for value in values for code in value.split(",")}

    def references(self, name: str, kind: str) -> set[str] | None:
        """The ids of a reference parameter (``Kind/id`` or a bare ``id``), or None."""
        values = self.values.get(name)
        if values is None:
            return None
        ids: set[str] = set()
        for value in values:
            for item in value.split(","):
                found, _, ident = item.rpartition("/")
                if (found not in ("", kind) and not found.endswith(f"/{kind}")) or not ident:
                    raise BadSearchError(f"{name}: expected {kind}/<id>, got {item!r}", path=name)
                ids.add(ident)
        return ids

    def dates(self, name: str) -> list[DateRange]:
        """Every value of a date parameter (all must hold: ``ge..&le..`` is a range)."""
        return [_date_range(name, value) for value in self.values.get(name, [])]

    @property
    def base_url(self) -> str:
        return public_base(self.request)

    def self_link(self) -> str:
        """This search as applied: only the parameters the server honoured, cursor included."""
        return self._url(self.values)

    def next_link(self, last_leaf_index: int) -> str:
        values = {k: v for k, v in self.values.items() if k != CURSOR}
        values[CURSOR] = [_encode_cursor(last_leaf_index)]
        return self._url(values)

    def _url(self, values: Mapping[str, list[str]]) -> str:
        pairs = [(name, value) for name, items in values.items() for value in items]
        query = urlencode(pairs)
        path = self.request.url.path.lstrip("/")
        return f"{public_base(self.request)}{path}" + (f"?{query}" if query else "")

    def _count(self) -> int:
        raw = self.one("_count")
        if raw is None:
            return DEFAULT_COUNT
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_COUNT:
            raise BadSearchError(f"_count must be 1 to {MAX_COUNT}", path="_count")
        return int(raw)

    def _cursor(self) -> int | None:
        raw = self.one(CURSOR)
        return None if raw is None else _decode_cursor(raw)


def _encode_cursor(leaf_index: int) -> str:
    return base64.urlsafe_b64encode(f"after:{leaf_index}".encode()).decode().rstrip("=")


def _decode_cursor(raw: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "after" or not _DIGITS.fullmatch(number) or len(number) > 19:
        raise BadSearchError("_cursor is not one this server wrote", path=CURSOR)
    return int(number)


def _date_range(name: str, value: str) -> DateRange:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    if value[:2].isalpha() and value[:2] not in DATE_PREFIXES:
        raise BadSearchError(f"{name}: prefix {value[:2]!r} not supported", path=name)
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    try:
        low = parse_instant(text, name, zone=UTC, end=False)
        high = parse_instant(text, name, zone=UTC, end=True) if "T" not in text else low
    except InvalidConsentError as error:
        raise BadSearchError(
            f"{name}: {value!r} is not a FHIR date or dateTime", path=name
        ) from error
    return DateRange(prefix, low, high)
