"""Openings of the guardian lapse commitments, from the service's regulator-only endpoint.

A guardian's consent carries ``{"sha256": SHA-256(salt || ISO date)}`` instead of the date (the
date would reveal the child's birth date). With a regulator's token the auditor asks
``/v1/regulator/lapse-openings`` for the date and salt of each guardian consent logged in a
leaf range; ``auditor.replay`` checks each opening against the logged commitment itself, so
the service cannot make a consent lapse later than it committed to.
"""

from __future__ import annotations

from typing import Any, Final

import httpx

from .errors import ApiStatusError, ApiUnreachableError, MalformedResponseError

PATH: Final = "/v1/regulator/lapse-openings"
PAGE: Final = 2000

Openings = dict[tuple[str, int], tuple[str, bytes]]


def fetch_openings(
    http: httpx.Client, api_url: str, token: str, start: int, end: int, *, page: int = PAGE
) -> tuple[Openings, int]:
    """The openings for guardian consents in leaves ``[start, end)``; and requests made."""
    openings: Openings = {}
    url = api_url.rstrip("/") + PATH
    headers = {"Authorization": f"Bearer {token}"}
    requests = 0
    position = start
    while position < end:
        params = {"start": position, "end": end, "limit": page}
        try:
            response = http.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiUnreachableError(url, f"{type(exc).__name__}: {exc}") from exc
        requests += 1
        if not response.is_success:
            raise ApiStatusError(url, response.status_code, response.text[:200])
        try:
            body: Any = response.json()
            for item in body["openings"]:
                version = item["version"]
                if type(version) is not int:  # not int(): it reads "٣" as 3 and 3.7 as 3
                    raise TypeError(f"version {version!r} is not a JSON integer")
                key = (str(item["consent_id"]), version)
                openings[key] = (str(item["guardian_authority_ends"]), bytes.fromhex(item["salt"]))
            following = body["next"]
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedResponseError(url, f"not a page of lapse openings ({exc})") from exc
        if following is None:
            break
        if type(following) is not int or following <= position:
            raise MalformedResponseError(url, f"next {following!r} does not move forward")
        position = following
    return openings, requests
