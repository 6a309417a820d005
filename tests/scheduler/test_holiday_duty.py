"""On a holiday the roster decides who is pinged: the duty engineer, then the named backup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.sweep import Sweeper
from storage.engine import transaction
from storage.roster_models import DutyShift
from tests.conftest import Desk
from tests.scheduler.conftest import Inboxes

#: 2026-10-01, National Day, 10:00 in Asia/Shanghai.
HOLIDAY_10AM = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


async def test_a_holiday_report_goes_to_the_duty_engineer_and_a_miss_to_the_backup(
    desk: Desk, inboxes: Inboxes
) -> None:
    w = desk.world
    desk.clock.set(HOLIDAY_10AM - timedelta(hours=2))
    async with transaction(desk.db.factory) as session:
        session.add(
            DutyShift(
                site_id=w.site.id or 0,
                starts_at=HOLIDAY_10AM - timedelta(hours=10),  # the whole day, local time
                ends_at=HOLIDAY_10AM + timedelta(hours=14),
                engineer_id=w.backup_engineer,  # the on-site engineer is off today
                backup_id=w.engineer,
                created_at=desk.clock.now(),
            )
        )
    desk.clock.set(HOLIDAY_10AM)
    await desk.report(level=1)
    sweeper = Sweeper(desk.db.factory, desk.policies, desk.clock)
    desk.clock.advance(timedelta(minutes=5))
    await sweeper.sweep()
    assert set(await inboxes.take()) == {w.backup_engineer}  # the duty engineer is reminded
    desk.clock.advance(timedelta(minutes=5))
    await sweeper.sweep()
    got = await inboxes.take()
    assert set(got) == {w.engineer, w.supervisor}  # the missed response: the named backup and the supervisor
    assert got[w.engineer] == ["⚠️ 工单 #1（一级）响应已超时，截止时间 10-01 10:10"]
