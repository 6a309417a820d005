"""Telling a database that is busy or away (worth trying again) from a real error."""

from __future__ import annotations

from sqlalchemy import exc

#: Driver errors (asyncpg, sqlite3) that mean "busy, gone or cut off", by class name: the
#: drivers' own exceptions reach us wrapped by SQLAlchemy's adapters.
TRANSIENT_NAMES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "InterfaceError",
        "PostgresConnectionError",
        "ConnectionRejectionError",
        "AdminShutdownError",
        "CrashShutdownError",
        "SerializationError",
        "DeadlockDetectedError",
        "LockNotAvailableError",
        "QueryCanceledError",
    }
)
TRANSIENT_WORDS = (
    "database is locked",
    "database table is locked",
    "connection was closed",
    "connection is closed",
)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is the database being busy, unreachable or cut off,
    or a time-out: the same work may well succeed when tried again."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current, exc.OperationalError | exc.InterfaceError | exc.TimeoutError | exc.DisconnectionError
        ):
            return True
        if isinstance(current, ConnectionError | TimeoutError | OSError):
            return True
        if type(current).__name__ in TRANSIENT_NAMES:
            return True
        if any(word in str(current).lower() for word in TRANSIENT_WORDS):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return False
