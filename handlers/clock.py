"""Time, injected: nothing else in the code base asks the system for the current time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time, timezone-aware, in UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (tests, demos, benchmarks)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The time the clock was last set to."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new time."""
        self._now += delta
        return self._now

    def advance_minutes(self, minutes: float) -> datetime:
        """Move forward by ``minutes``."""
        return self.advance(timedelta(minutes=minutes))

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware)."""
        if when.tzinfo is None:
            raise ValueError("naive datetime")
        self._now = when.astimezone(UTC)
