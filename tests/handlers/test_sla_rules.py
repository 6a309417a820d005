"""The SLA rules (handlers/sla/rules.py) as pure functions: no database, no clock.

Times are timezone-aware UTC; START is 2026-12-01 09:00 in Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.sla.policy import DEFAULT_POLICY_PATH, Policy, load_policy, parse_policy
from handlers.sla.rules import (
    ClockState,
    ClockStatus,
    Rise,
    SlaError,
    classification_window,
    clock_status,
    clocks_of,
    due_times,
    evaluate,
    level_from_answers,
    met_time,
    rise,
    third_party_delay,
)
from storage.enums import Clock

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
POLICY = load_policy()
M, H = timedelta(minutes=1), timedelta(hours=1)


@dataclass
class PlainTicket:
    """The fields the rules read (satisfies rules.SlaTicket)."""

    level: int
    reported_at: datetime = START
    clocks_started_at: datetime = START
    classified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    arrived_at: datetime | None = None
    restored_at: datetime | None = None
    resolved_at: datetime | None = None
    resolve_due_override: datetime | None = None
    manager_flagged: bool = False


def policy_with_default_level(level: int) -> Policy:
    """The default policy with another classification.default_level."""
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    assert "default_level = 2" in text
    return parse_policy(text.replace("default_level = 2", f"default_level = {level}"), f"default-{level}")


def apply(ticket: PlainTicket, r: Rise) -> None:
    """Apply a rise the way TicketService.apply_rise does."""
    if r.restarts_clocks:
        ticket.level = r.new_level
        ticket.clocks_started_at = r.at
        ticket.resolve_due_override = None
    ticket.manager_flagged = ticket.manager_flagged or r.flag_manager


# -- 1. the seed's table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "clock", "after_report"),
    [
        pytest.param(1, Clock.RESPONSE, 10 * M, id="L1-response-10m"),
        pytest.param(1, Clock.RESTORE, 4 * H, id="L1-restore-4h"),
        pytest.param(1, Clock.RESOLVE, 12 * H, id="L1-resolve-12h"),
        pytest.param(2, Clock.RESPONSE, 30 * M, id="L2-response-30m"),
        pytest.param(2, Clock.RESTORE, 8 * H, id="L2-restore-8h"),
        pytest.param(2, Clock.RESOLVE, 24 * H, id="L2-resolve-24h"),
        pytest.param(3, Clock.RESPONSE, 60 * M, id="L3-response-60m"),
    ],
)
def test_deadline_counted_from_report(level: int, clock: Clock, after_report: timedelta) -> None:
    assert due_times(PlainTicket(level), POLICY)[clock] == START + after_report


@pytest.mark.parametrize("arrival", [0 * M, 90 * M, 30 * H], ids=["at-report", "after-90m", "after-30h"])
def test_level3_resolve_counted_from_arrival(arrival: timedelta) -> None:
    ticket = PlainTicket(3, arrived_at=START + arrival)
    assert due_times(ticket, POLICY)[Clock.RESOLVE] == START + arrival + 48 * H


def test_level3_has_no_resolve_deadline_before_arrival_and_no_restore_clock() -> None:
    assert due_times(PlainTicket(3), POLICY) == {Clock.RESPONSE: START + 60 * M, Clock.RESOLVE: None}


@pytest.mark.parametrize(
    ("level", "clocks"),
    [
        (1, (Clock.RESPONSE, Clock.RESTORE, Clock.RESOLVE)),
        (2, (Clock.RESPONSE, Clock.RESTORE, Clock.RESOLVE)),
        (3, (Clock.RESPONSE, Clock.RESOLVE)),
    ],
)
def test_clocks_of_level(level: int, clocks: tuple[Clock, ...]) -> None:
    assert clocks_of(level, POLICY) == clocks


def test_level1_report_at_0900_shanghai() -> None:
    reported = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    ticket = PlainTicket(1, reported_at=reported, clocks_started_at=reported)
    assert due_times(ticket, POLICY) == {
        Clock.RESPONSE: datetime(2026, 12, 1, 1, 10, tzinfo=UTC),
        Clock.RESTORE: datetime(2026, 12, 1, 5, 0, tzinfo=UTC),
        Clock.RESOLVE: datetime(2026, 12, 1, 13, 0, tzinfo=UTC),
    }


# -- 2. met times and statuses ---------------------------------------------------------------


def at(offset: timedelta | None) -> datetime | None:
    """START + offset, keeping None."""
    return None if offset is None else START + offset


@pytest.mark.parametrize(
    ("acknowledged", "classified", "restored", "resolved", "met"),
    [
        pytest.param(None, None, None, None, (None, None, None), id="open"),
        pytest.param(3 * M, None, None, None, (None, None, None), id="acknowledged-only"),
        pytest.param(None, 3 * M, None, None, (None, None, None), id="classified-only"),
        pytest.param(3 * M, 7 * M, None, None, (7 * M, None, None), id="response-at-classified"),
        pytest.param(8 * M, 2 * M, None, None, (8 * M, None, None), id="response-at-acknowledged"),
        pytest.param(None, None, 2 * H, None, (None, 2 * H, None), id="restored"),
        pytest.param(None, None, None, 3 * H, (None, 3 * H, 3 * H), id="resolved-counts-as-restored"),
        pytest.param(None, None, 2 * H, 5 * H, (None, 2 * H, 5 * H), id="restored-then-resolved"),
    ],
)
def test_met_time(
    acknowledged: timedelta | None,
    classified: timedelta | None,
    restored: timedelta | None,
    resolved: timedelta | None,
    met: tuple[timedelta | None, timedelta | None, timedelta | None],
) -> None:
    """Response needs acknowledged and classified (the later counts); resolved implies restored."""
    ticket = PlainTicket(
        1,
        acknowledged_at=at(acknowledged),
        classified_at=at(classified),
        restored_at=at(restored),
        resolved_at=at(resolved),
    )
    clocks = (Clock.RESPONSE, Clock.RESTORE, Clock.RESOLVE)
    assert tuple(met_time(ticket, clock) for clock in clocks) == tuple(at(m) for m in met)


DUE = START + H


@pytest.mark.parametrize(
    ("due_at", "met_at", "now", "status"),
    [
        pytest.param(DUE, None, DUE - timedelta(seconds=1), ClockStatus.RUNNING, id="running"),
        pytest.param(DUE, None, DUE, ClockStatus.BREACHED, id="breached-exactly-at-due"),
        pytest.param(DUE, None, DUE + H, ClockStatus.BREACHED, id="breached-after-due"),
        pytest.param(DUE, DUE, DUE + H, ClockStatus.MET, id="met-exactly-at-due"),
        pytest.param(DUE, DUE - M, DUE + H, ClockStatus.MET, id="met-early"),
        pytest.param(DUE, DUE + timedelta(seconds=1), DUE + H, ClockStatus.MET_LATE, id="met-late"),
        pytest.param(None, None, DUE, ClockStatus.WAITING, id="waiting"),
        pytest.param(None, DUE, DUE, ClockStatus.MET, id="met-without-due"),
    ],
)
def test_clock_status(
    due_at: datetime | None, met_at: datetime | None, now: datetime, status: ClockStatus
) -> None:
    assert clock_status(due_at, met_at, now) is status


def test_evaluate_level1_ticket() -> None:
    ticket = PlainTicket(
        1, acknowledged_at=START + 3 * M, classified_at=START + 12 * M, restored_at=START + 3 * H
    )
    assert evaluate(ticket, POLICY, START + 13 * H) == [
        ClockState(Clock.RESPONSE, START + 10 * M, START + 12 * M, ClockStatus.MET_LATE),
        ClockState(Clock.RESTORE, START + 4 * H, START + 3 * H, ClockStatus.MET),
        ClockState(Clock.RESOLVE, START + 12 * H, None, ClockStatus.BREACHED),
    ]


def test_evaluate_level3_before_arrival_waits_for_resolve() -> None:
    ticket = PlainTicket(3)
    assert evaluate(ticket, POLICY, START + 30 * M) == [
        ClockState(Clock.RESPONSE, START + 60 * M, None, ClockStatus.RUNNING),
        ClockState(Clock.RESOLVE, None, None, ClockStatus.WAITING),
    ]


# -- 3. the rise chain 3 → 2 → 1 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticket", "now"),
    [
        pytest.param(PlainTicket(1), START + 12 * H - timedelta(seconds=1), id="L1-before-deadline"),
        pytest.param(PlainTicket(1, resolved_at=START + 12 * H), START + 20 * H, id="L1-resolved-in-time"),
        pytest.param(PlainTicket(1, resolved_at=START + 13 * H), START + 20 * H, id="L1-resolved-late"),
        pytest.param(PlainTicket(3), START + 100 * H, id="L3-before-arrival"),
        pytest.param(PlainTicket(3, arrived_at=START + H), START + 49 * H - M, id="L3-before-deadline"),
        pytest.param(PlainTicket(1, manager_flagged=True), START + 20 * H, id="L1-already-flagged"),
    ],
)
def test_no_rise(ticket: PlainTicket, now: datetime) -> None:
    assert rise(ticket, POLICY, now) is None


def test_rise_chain_from_level3_to_level1() -> None:
    ticket = PlainTicket(3, acknowledged_at=START + 5 * M, classified_at=START + 5 * M, arrived_at=START + H)
    first = START + 49 * H  # missed level-3 resolve, 48 h after arrival
    risen = rise(ticket, POLICY, first)
    assert risen == Rise(3, 2, first, restarts_clocks=True, flag_manager=False)
    assert risen is not None
    apply(ticket, risen)
    assert due_times(ticket, POLICY) == {
        Clock.RESPONSE: first + 30 * M,
        Clock.RESTORE: first + 8 * H,
        Clock.RESOLVE: first + 24 * H,
    }
    statuses = [s.status for s in evaluate(ticket, POLICY, first)]
    assert statuses == [ClockStatus.MET, ClockStatus.RUNNING, ClockStatus.RUNNING]  # not born breached
    assert rise(ticket, POLICY, first + 24 * H - M) is None

    second = first + 24 * H + 7 * M  # the scheduler may notice a little late
    risen = rise(ticket, POLICY, second)
    assert risen == Rise(2, 1, second, restarts_clocks=True, flag_manager=False)
    assert risen is not None
    apply(ticket, risen)
    assert ticket.level == 1 and not ticket.manager_flagged
    assert due_times(ticket, POLICY) == {
        Clock.RESPONSE: second + 10 * M,
        Clock.RESTORE: second + 4 * H,
        Clock.RESOLVE: second + 12 * H,
    }
    assert rise(ticket, POLICY, second + 12 * H - M) is None
    third = second + 12 * H
    assert rise(ticket, POLICY, third) == Rise(1, 1, third, restarts_clocks=False, flag_manager=True)


def test_missed_level1_flags_manager_once() -> None:
    ticket = PlainTicket(1)
    now = START + 12 * H
    risen = rise(ticket, POLICY, now)
    assert risen == Rise(1, 1, now, restarts_clocks=False, flag_manager=True)
    assert risen is not None
    apply(ticket, risen)
    assert ticket.level == 1 and ticket.clocks_started_at == START and ticket.manager_flagged
    assert rise(ticket, POLICY, now + H) is None


def test_risen_level2_counts_resolve_from_rise_not_report() -> None:
    risen_at = START + 60 * H
    ticket = PlainTicket(2, clocks_started_at=risen_at, arrived_at=START + 12 * H)
    assert due_times(ticket, POLICY)[Clock.RESOLVE] == risen_at + 24 * H
    assert rise(ticket, POLICY, START + 24 * H) is None


# -- 4. third-party delay --------------------------------------------------------------------


def test_third_party_delay_returns_original_deadline_and_override_applies() -> None:
    ticket = PlainTicket(1)
    new_due = START + 20 * H
    assert third_party_delay(ticket, POLICY, new_due, START + H) == START + 12 * H
    ticket.resolve_due_override = new_due
    assert due_times(ticket, POLICY) == {
        Clock.RESPONSE: START + 10 * M,
        Clock.RESTORE: START + 4 * H,
        Clock.RESOLVE: new_due,
    }
    assert rise(ticket, POLICY, START + 13 * H) is None
    assert third_party_delay(ticket, POLICY, START + 30 * H, START + 2 * H) == new_due


def test_third_party_delay_before_level3_arrival_has_no_original() -> None:
    assert third_party_delay(PlainTicket(3), POLICY, START + 72 * H, START + H) is None


@pytest.mark.parametrize(
    ("ticket", "new_due", "message"),
    [
        pytest.param(PlainTicket(1), START + 2 * H - M, "future", id="in-the-past"),
        pytest.param(PlainTicket(1), START + 2 * H, "future", id="now"),
        pytest.param(PlainTicket(1), START + 12 * H, "later than the current", id="equal-to-deadline"),
        pytest.param(PlainTicket(1), START + 11 * H, "later than the current", id="before-deadline"),
        pytest.param(
            PlainTicket(1, resolve_due_override=START + 20 * H), START + 19 * H, "later", id="override"
        ),
        pytest.param(
            PlainTicket(1, resolved_at=START + H), START + 20 * H, "already resolved", id="resolved"
        ),
    ],
)
def test_third_party_delay_refused(ticket: PlainTicket, new_due: datetime, message: str) -> None:
    with pytest.raises(SlaError, match=message):
        third_party_delay(ticket, POLICY, new_due, START + 2 * H)


# -- 5. classification -----------------------------------------------------------------------


def test_classification_window_reminds_halfway() -> None:
    window = classification_window(START, POLICY)
    assert (window.started_at, window.remind_at, window.ends_at) == (START, START + 5 * M, START + 10 * M)


@pytest.mark.parametrize("default_level", [1, 2, 3])
@pytest.mark.parametrize(
    ("answers", "level"),
    [
        pytest.param({"stopped": True}, 1, id="stopped"),
        pytest.param({"stopped": True, "degraded": False}, 1, id="stopped-not-degraded"),
        pytest.param({"stopped": False, "degraded": True}, 2, id="degraded"),
        pytest.param({"stopped": False, "degraded": False}, 3, id="neither"),
    ],
)
def test_settled_answers_ignore_default(default_level: int, answers: dict[str, bool], level: int) -> None:
    assert level_from_answers(answers, policy_with_default_level(default_level)) == (level, True)


@pytest.mark.parametrize(
    ("default_level", "answers", "provisional"),
    [
        pytest.param(1, {}, 1, id="no-answers-default-1"),
        pytest.param(2, {}, 2, id="no-answers-default-2"),
        pytest.param(3, {}, 3, id="no-answers-default-3"),
        pytest.param(1, {"stopped": False}, 2, id="not-stopped-rules-out-1"),
        pytest.param(2, {"stopped": False}, 2, id="not-stopped-default-2"),
        pytest.param(3, {"stopped": False}, 3, id="not-stopped-default-3"),
        pytest.param(3, {"degraded": True}, 2, id="degraded-rules-out-3"),
        pytest.param(2, {"degraded": False}, 1, id="not-degraded-rules-out-2-more-severe-on-tie"),
        pytest.param(3, {"degraded": False}, 3, id="not-degraded-default-3"),
    ],
)
def test_unsettled_answers_give_provisional_level(
    default_level: int, answers: dict[str, bool], provisional: int
) -> None:
    assert level_from_answers(answers, policy_with_default_level(default_level)) == (provisional, False)


def test_default_policy_provisional_level_is_2() -> None:
    assert level_from_answers({}, POLICY) == (2, False)
