"""The day's parties as HTTP clients of one service: each call is signed as its caller.

The admin's token comes from the platform key (whoever holds the data dir is the platform's
identity provider); residents and the regulator get theirs from the admin over the API;
institutions sign their own, each with the key pair it generated and had registered.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..auth import PlatformKeys, Role, issue_token, sign_institution_token
from ..settings import ApiSettings

Headers = dict[str, str]


class Parties:
    def __init__(self, client: Any, platform: PlatformKeys, settings: ApiSettings) -> None:
        self.client = client
        self.settings = settings
        """Anything with ``request(method, url, json=, headers=)`` (an httpx-style client)."""
        self.audience = platform.audience
        self.keys: dict[str, Ed25519PrivateKey] = {}
        self.admin = _bearer(issue_token(platform, Role.ADMIN, "demo-admin"))
        self._issued: dict[tuple[str, str], Headers] = {}

    def call(
        self, method: str, url: str, headers: Headers, body: Any = None, expect: int = 200
    ) -> Any:
        """The answer's JSON (or text); RuntimeError if the service answers otherwise."""
        response = self.client.request(method, url, json=body, headers=headers)
        if response.status_code != expect:
            raise RuntimeError(
                f"{method} {url}: expected {expect}, got {response.status_code}: {response.text}"
            )
        if response.headers["content-type"].startswith("text/plain"):
            return response.text
        return response.json()

    def institution(self, institution_id: str) -> Headers:
        """A fresh short-lived token the institution signs with its own key."""
        key = self.keys[institution_id]
        return _bearer(sign_institution_token(key, institution_id, audience=self.audience))

    def resident(self, subject: str) -> Headers:
        return self._platform_token("resident", subject)

    def regulator(self) -> Headers:
        return self._platform_token("regulator", "regulator-1")

    def _platform_token(self, role: str, subject: str) -> Headers:
        if (role, subject) not in self._issued:
            body = {"role": role, "subject": subject}
            issued = self.call("POST", "/v1/admin/tokens", self.admin, body, 201)
            self._issued[role, subject] = _bearer(issued["access_token"])
        return self._issued[role, subject]


def _bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}
