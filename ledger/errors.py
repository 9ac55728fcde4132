"""Errors raised by the ledger; the CLI and the API map them to messages and problem responses."""


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InvalidEventError(LedgerError, ValueError):
    """An event was rejected before anything was written (bad kind, not JSON, too large)."""

    def __init__(self, message: str, *, position: int | None = None) -> None:
        self.position = position
        prefix = f"event {position}: " if position is not None else ""
        super().__init__(prefix + message)


class TreeSizeError(LedgerError, ValueError):
    """A proof or root was asked for a tree size or leaf index the log does not have."""


class KeyFileError(LedgerError):
    """The log's signing key file is missing, unreadable, too open, or not the log's key."""


class ConfigurationError(LedgerError):
    """Settings that cannot work (unknown database URL scheme, bad interval)."""


class IntegrityError(LedgerError):
    """Stored data disagrees with itself: a node is missing or differs from its recomputation."""


class RollbackError(IntegrityError):
    """The database is behind (or forked from) a checkpoint this log already signed or anchored:
    it was restored from an old backup or edited, and nothing may be sequenced on top of it."""


class DocumentError(LedgerError, ValueError):
    """A proof, checkpoint or receipt document is malformed."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class MismatchError(DocumentError):
    """A well-formed document's field disagrees with what it must match (a failed check)."""
