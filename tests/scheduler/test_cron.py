"""The daily overview and the weekly inspection reminder: content, recipients, once per day."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler.cron import CronJobs
from scheduler.sweep import Sweeper
from storage.engine import transaction
from storage.enums import Channel
from storage.repositories.people import link_identity
from tests.conftest import Desk
from tests.scheduler.conftest import Inboxes


@pytest.fixture
async def cron(desk: Desk, inboxes: Inboxes) -> CronJobs:
    return CronJobs(desk.db.factory, desk.policies, desk.clock)


async def test_the_daily_overview_reaches_the_supervisor_once(
    desk: Desk, cron: CronJobs, inboxes: Inboxes
) -> None:
    w = desk.world
    await desk.report(level=1)
    site = w.site.id or 0
    assert await cron.run("overview", site)
    got = await inboxes.take()
    assert set(got) == {w.supervisor}
    (overview,) = got[w.supervisor]
    assert overview.startswith(
        "📊 每日概览 · 示例法院 · 12-01\n未关闭工单：1（一级 1）\n2小时内到期：1\n昨日超时：0"
    )
    # 12-05 and 12-06 are a weekend with nobody named on duty: flagged before they happen.
    assert overview.endswith("未安排值班的节假日：12-05, 12-06")
    assert not await cron.run("overview", site)  # a second process the same day sends nothing
    assert (await inboxes.take()) == {}
    desk.clock.advance(timedelta(days=1))
    await Sweeper(desk.db.factory, desk.policies, desk.clock).sweep()  # the misses are seen
    await inboxes.take()
    assert await cron.run("overview", site)
    assert "昨日超时：3" in (await inboxes.take())[w.supervisor][0]  # response, restore, resolve of 12-01


async def test_the_weekly_inspection_reminder_goes_to_the_engineers(
    desk: Desk, cron: CronJobs, inboxes: Inboxes
) -> None:
    w = desk.world
    async with transaction(desk.db.factory) as session:
        await link_identity(session, w.outsider, Channel.WEBCHAT, f"p{w.outsider}")
    assert await cron.run("inspection", w.site.id or 0)
    got = await inboxes.take()
    assert set(got) == {w.engineer, w.backup_engineer}
    assert got[w.engineer] == ["📋 本周巡检提醒：请完成各子系统巡检，并填写《信息化系统设备巡检报告》。"]
