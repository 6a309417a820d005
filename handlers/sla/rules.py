"""The SLA rules as pure functions of (ticket, policy, now).

Nothing here reads a clock or a database: callers pass the time in, which is what lets the
tests walk a ticket through days of deadlines in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from handlers.sla.policy import Policy
from storage.enums import Clock


class SlaTicket(Protocol):
    """What the rules read of a ticket (storage.models.Ticket has all of it)."""

    level: int
    reported_at: datetime
    clocks_started_at: datetime
    classified_at: datetime | None
    acknowledged_at: datetime | None
    arrived_at: datetime | None
    restored_at: datetime | None
    resolved_at: datetime | None
    resolve_due_override: datetime | None
    manager_flagged: bool


class SlaError(ValueError):
    """A request the rules refuse (say, a delay that ends before the current deadline)."""


class ClockStatus(StrEnum):
    """Where one clock stands at a given moment."""

    WAITING = "waiting"  # its start is still unknown (level 3 before the engineer arrives)
    RUNNING = "running"
    MET = "met"
    MET_LATE = "met_late"
    BREACHED = "breached"


@dataclass(frozen=True)
class ClockState:
    """One clock of a ticket, seen at one moment."""

    clock: Clock
    due_at: datetime | None
    met_at: datetime | None
    status: ClockStatus


@dataclass(frozen=True)
class Rise:
    """What a missed resolve deadline does to a ticket."""

    old_level: int
    new_level: int
    at: datetime
    #: True when the clocks restart (3 → 2, 2 → 1); False at level 1, which cannot rise.
    restarts_clocks: bool
    #: A level-1 fault missed its resolve deadline: the manager must step in (once).
    flag_manager: bool


@dataclass(frozen=True)
class ClassificationWindow:
    """The ten minutes a reporter has to settle the level, and the reminder within them."""

    started_at: datetime
    remind_at: datetime
    ends_at: datetime


def clocks_of(level: int, policy: Policy) -> tuple[Clock, ...]:
    """The clocks a ticket of ``level`` has (level 3 promises no restore time by default)."""
    times = policy.level(level)
    return tuple(c for c in Clock if c is not Clock.RESTORE or times.restore is not None)


def due_times(ticket: SlaTicket, policy: Policy) -> dict[Clock, datetime | None]:
    """Each clock's due time; None while its start is unknown (resolve from arrival)."""
    times = policy.level(ticket.level)
    start = ticket.clocks_started_at
    due: dict[Clock, datetime | None] = {Clock.RESPONSE: start + times.response}
    if times.restore is not None:
        due[Clock.RESTORE] = start + times.restore
    if ticket.resolve_due_override is not None:
        due[Clock.RESOLVE] = ticket.resolve_due_override
    elif times.resolve_from == "arrival":
        arrived = ticket.arrived_at
        due[Clock.RESOLVE] = None if arrived is None else max(arrived, start) + times.resolve
    else:
        due[Clock.RESOLVE] = start + times.resolve
    return due


def clock_starts(ticket: SlaTicket, policy: Policy) -> dict[Clock, datetime | None]:
    """When each clock started counting (resolve from arrival starts at the arrival)."""
    times = policy.level(ticket.level)
    start = ticket.clocks_started_at
    starts: dict[Clock, datetime | None] = {Clock.RESPONSE: start}
    if times.restore is not None:
        starts[Clock.RESTORE] = start
    arrived = ticket.arrived_at
    if times.resolve_from == "arrival" and ticket.resolve_due_override is None:
        starts[Clock.RESOLVE] = None if arrived is None else max(arrived, start)
    else:
        starts[Clock.RESOLVE] = start
    return starts


def reminder_times(
    start: datetime, due: datetime, fractions: tuple[float, ...]
) -> list[tuple[float, datetime]]:
    """(fraction, time) of each reminder of a clock running from ``start`` to ``due``."""
    return [(fraction, start + (due - start) * fraction) for fraction in fractions]


def met_time(ticket: SlaTicket, clock: Clock) -> datetime | None:
    """When ``clock`` was met, if it was.

    Response needs both an acknowledging engineer and a settled level; a resolved fault is
    also restored.
    """
    if clock is Clock.RESPONSE:
        if ticket.acknowledged_at is None or ticket.classified_at is None:
            return None
        return max(ticket.acknowledged_at, ticket.classified_at)
    if clock is Clock.RESTORE:
        return ticket.restored_at or ticket.resolved_at
    return ticket.resolved_at


def clock_status(due_at: datetime | None, met_at: datetime | None, now: datetime) -> ClockStatus:
    """Classify one clock: met in time, met late, breached, running or waiting."""
    if met_at is not None:
        return ClockStatus.MET if due_at is None or met_at <= due_at else ClockStatus.MET_LATE
    if due_at is None:
        return ClockStatus.WAITING
    return ClockStatus.BREACHED if now >= due_at else ClockStatus.RUNNING


def evaluate(ticket: SlaTicket, policy: Policy, now: datetime) -> list[ClockState]:
    """Every clock of the ticket with its due time, met time and status at ``now``."""
    states = []
    for clock, due_at in due_times(ticket, policy).items():
        met_at = met_time(ticket, clock)
        states.append(ClockState(clock, due_at, met_at, clock_status(due_at, met_at, now)))
    return states


def rise(ticket: SlaTicket, policy: Policy, now: datetime) -> Rise | None:
    """The automatic level rise due at ``now``, or None.

    A fault not resolved within its limit rises one level (3 → 2 → 1) and the new level's
    clocks start at the rise. At level 1 it stays 1 and is flagged for the manager, once.
    """
    due = due_times(ticket, policy)[Clock.RESOLVE]
    if clock_status(due, met_time(ticket, Clock.RESOLVE), now) is not ClockStatus.BREACHED:
        return None
    if ticket.level > 1:
        return Rise(ticket.level, ticket.level - 1, now, restarts_clocks=True, flag_manager=False)
    if ticket.manager_flagged:
        return None
    return Rise(1, 1, now, restarts_clocks=False, flag_manager=True)


def third_party_delay(ticket: SlaTicket, policy: Policy, new_due: datetime, now: datetime) -> datetime | None:
    """Check a new resolve time agreed with the client; return the deadline it replaces.

    The new time must lie in the future and after the current resolve deadline (it is a
    delay). The caller keeps the old time in the ticket's timeline.
    """
    if ticket.resolved_at is not None:
        raise SlaError("the fault is already resolved")
    current = due_times(ticket, policy)[Clock.RESOLVE]
    if new_due <= now:
        raise SlaError("the new resolve time must lie in the future")
    if current is not None and new_due <= current:
        raise SlaError("the new resolve time must be later than the current deadline")
    return current


def classification_window(started_at: datetime, policy: Policy) -> ClassificationWindow:
    """The window counted from the reporter's first message, with its halfway reminder."""
    window = policy.classification_window
    return ClassificationWindow(started_at, started_at + window / 2, started_at + window)


#: The classification questions of DOMAIN.md, in the order the wizard asks them.
QUESTION_STOPPED = "stopped"  # business stopped, system paralysed, or data lost?
QUESTION_DEGRADED = "degraded"  # performance or capacity partly lost, or a redundant part failed?
QUESTIONS = (QUESTION_STOPPED, QUESTION_DEGRADED)


def level_from_answers(answers: Mapping[str, bool], policy: Policy) -> tuple[int, bool]:
    """The level the answers so far give, and whether they settle it.

    Unsettled answers give the provisional level: the policy's default unless an answer has
    ruled it out, else the nearest level still possible (the more severe one on a tie).
    """
    stopped = answers.get(QUESTION_STOPPED)
    degraded = answers.get(QUESTION_DEGRADED)
    if stopped:
        return 1, True
    if stopped is False and degraded is not None:
        return (2 if degraded else 3), True
    possible = {1, 2, 3}
    if stopped is False:
        possible.discard(1)
    if degraded is not None:
        possible.discard(3 if degraded else 2)
    default = policy.default_level
    return min(possible, key=lambda level: (abs(level - default), level)), False
