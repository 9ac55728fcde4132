"""Every error the auditor raises: the audit could not be carried out (exit code 2).

Kept apart from findings on purpose. A finding is evidence about the platform (its log, its
anchors, its key); an ``AuditError`` says the auditor could not look: the API or the chain did
not answer, a response could not be read, the state file is damaged or pins another log.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base: the audit could not be carried out."""


class FetchError(AuditError):
    """Talking to the service's public log endpoints failed."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


class ApiUnreachableError(FetchError):
    """The service did not answer (refused, timed out, connection dropped)."""


class ApiStatusError(FetchError):
    """The service answered with a non-2xx status; ``detail`` is its problem text, if any."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(url, f"HTTP {status}" + (f": {detail}" if detail else ""))
        self.status = status
        self.detail = detail


class MalformedResponseError(FetchError):
    """A 2xx response whose body is not what the endpoint documents; ``what`` says which part."""

    def __init__(self, url: str, what: str) -> None:
        super().__init__(url, f"malformed response: {what}")
        self.what = what


class StateError(AuditError):
    """The auditor's state file cannot be read or fails its own checks."""


class OutdatedReplayError(StateError):
    """The replay state was written by an older auditor: it is replayed again from leaf 0."""


class StateMismatchError(StateError):
    """The state pins another ``field`` (chain, contract, key) than this run was given."""

    def __init__(self, field: str, pinned: object, given: object) -> None:
        super().__init__(
            f"the state directory pins {field} {pinned!r}, but this run was given {given!r}; "
            "use another state directory for another log"
        )
        self.field = field
        self.pinned = pinned
        self.given = given


class ConfigurationError(AuditError):
    """What the regulator configured cannot be used (no registry at the address, say)."""
