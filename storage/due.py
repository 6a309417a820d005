"""What a transaction made due, so that whoever commits it can wake the scheduler.

Code that writes a due row (a timer, a deferred retry) notes its time here, and code that
writes outbox rows notes that messages wait; the session keeps the earliest time. After the
commit the caller hands what was noted to the scheduler's port ("something became due"), which
sends the messages and moves its wake-up: no polling, and handlers never call the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

_AT, _MESSAGES = "dutydesk.due_at", "dutydesk.messages"


@dataclass(frozen=True)
class Became:
    """What a committed transaction made due."""

    #: The earliest due row it wrote (a timer, a retry), if any.
    at: datetime | None = None
    #: Whether it wrote outbox rows that may be sent now.
    messages: bool = False


#: The scheduler's port, called after the commit.
Wake = Callable[[Became], None]


def wake_nobody(became: Became) -> None:
    """A Wake for code that runs without a scheduler (the CLI, tests of the handlers)."""


def note_due(session: AsyncSession, at: datetime) -> None:
    """Record that a row falls due at ``at`` once this session's transaction commits."""
    earliest = session.info.get(_AT)
    if earliest is None or at < earliest:
        session.info[_AT] = at


def note_messages(session: AsyncSession) -> None:
    """Record that this transaction wrote outbox rows."""
    session.info[_MESSAGES] = True


def noted(session: AsyncSession) -> Became | None:
    """What this session's transaction made due (None: nothing)."""
    at, messages = session.info.get(_AT), bool(session.info.get(_MESSAGES))
    if at is None and not messages:
        return None
    return Became(at if isinstance(at, datetime) else None, messages)


def wake_after(session: AsyncSession, wake: Wake) -> None:
    """Tell ``wake`` what the committed transaction of ``session`` made due."""
    if (became := noted(session)) is not None:
        wake(became)
