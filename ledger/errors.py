"""Errors raised by the ledger; the CLI and the API map them to messages and problem responses."""

import errno


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


class NotInitialisedError(ConfigurationError):
    """A data dir or database that ``consent-ledger init`` never made a log in."""


class InputFileError(LedgerError):
    """A file named on the command line is missing, unreadable, or not what it should hold."""


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


class StorageFullError(LedgerError):
    """The database's disk is full: nothing of the write was committed; it may succeed once
    space is freed (the log goes on from where it was, no restart needed)."""


_SQLITE_FULL = 13
_POSTGRESQL_DISK_FULL = "53100"


def storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the disk is full: SQLite's SQLITE_FULL
    ("database or disk is full"), PostgreSQL's disk_full (SQLSTATE 53100), or ENOSPC/EDQUOT."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, StorageFullError):
            return True
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(current, "sqlstate", None) == _POSTGRESQL_DISK_FULL:
            return True
        orig = getattr(current, "orig", None)  # SQLAlchemy's wrapper of the driver's error
        pending += [orig if isinstance(orig, BaseException) else None]
        pending += [current.__cause__, current.__context__]
    return False


class WitnessRefusal(LedgerError):
    """A witness refused a checkpoint; ``status`` is the C2SP tlog-witness HTTP status.

    400 malformed request, 403 no valid signature by a trusted log key, 404 unknown origin,
    409 old size is not the witness's latest (``latest_size``), 422 inconsistent with it.
    """

    def __init__(self, status: int, detail: str, *, latest_size: int | None = None) -> None:
        self.status = status
        self.detail = detail
        self.latest_size = latest_size
        super().__init__(f"{status}: {detail}")
