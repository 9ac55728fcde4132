"""Every error the contracts package raises: one base class, one subclass per failure kind."""

from __future__ import annotations


class ChainError(Exception):
    """Base class for errors talking to the chain or the anchor registry on it."""


class ChainUnavailableError(ChainError):
    """The node cannot be reached (refused, timed out, dropped, or the data dir is locked).

    Nothing is known about the request's fate; an anchorer queues its work and retries.
    """


class AnchorRejectedError(ChainError):
    """The registry reverted the call, or a mined transaction failed.

    ``error_name`` is the contract's custom error (``NotLogAnchorer``, ``StaleTreeSize``, ...)
    when the revert data could be decoded, else ``None``; ``error_args`` its arguments.
    """

    def __init__(
        self,
        message: str,
        *,
        error_name: str | None = None,
        error_args: tuple[object, ...] = (),
        tx_hash: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.error_args = error_args
        self.tx_hash = tx_hash


class AnchorMismatchError(ChainError):
    """The chain disagrees with a claimed anchor record in ``field``.

    ``expected`` is the record's value, ``actual`` the chain's (``None`` when the chain has
    nothing there at all, e.g. an unknown transaction hash).
    """

    def __init__(self, field: str, expected: object, actual: object) -> None:
        super().__init__(
            f"anchor {field} mismatch: record has {_show(expected)}, chain has {_show(actual)}"
        )
        self.field = field
        self.expected = expected
        self.actual = actual


class AnchorTimeoutError(ChainError):
    """A sent transaction was not mined within the time the caller was willing to wait."""


class ArtifactError(ChainError):
    """The compiled contract artifact is missing, malformed, or does not match its source."""


def _show(value: object) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else repr(value)
