"""Periodic jobs in each site's time zone: the daily overview and the weekly inspection reminder.

Each run is claimed once in the database (cron_run), so several processes send it once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.outgoing import Outbox
from handlers.overview import daily_overview, inspection_reminder
from handlers.sla.policy import PolicyBook
from storage.due import Wake, wake_after, wake_nobody
from storage.engine import SessionFactory, transaction
from storage.models import Site
from storage.repositories.cron import claim_run

Job = Callable[[AsyncSession, PolicyBook, Clock, Outbox, int], Awaitable[None]]
JOBS: dict[str, Job] = {"overview": daily_overview, "inspection": inspection_reminder}


@dataclass
class CronJobs:
    """Installs and runs the periodic jobs; ``wake`` hears that their messages are due."""

    sessions: SessionFactory
    policies: PolicyBook
    clock: Clock
    wake: Wake = field(default=wake_nobody)
    overview_at: str = "08:30"  # every day
    inspection_at: str = "mon 09:00"  # every week

    async def install(self, scheduler: AsyncIOScheduler) -> None:
        """One job per site and kind, in the site's zone (sites added later need a restart)."""
        async with transaction(self.sessions) as session:
            sites = (await session.exec(select(Site))).all()
        hour, minute = _hm(self.overview_at)
        day, clock_time = self.inspection_at.split()
        week_hour, week_minute = _hm(clock_time)
        for site in sites:
            zone = ZoneInfo(site.timezone)
            daily = CronTrigger(hour=hour, minute=minute, timezone=zone)
            weekly = CronTrigger(day_of_week=day, hour=week_hour, minute=week_minute, timezone=zone)
            for kind, trigger in (("overview", daily), ("inspection", weekly)):
                scheduler.add_job(
                    self.run, trigger, args=[kind, site.id], id=f"{kind}:{site.id}", replace_existing=True
                )

    async def run(self, kind: str, site_id: int) -> bool:
        """Run ``kind`` for a site unless another process already did today; True if it ran."""
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            site = await session.get(Site, site_id)
            if site is None:
                return False
            local_day = now.astimezone(ZoneInfo(site.timezone)).date()
            if not await claim_run(session, f"{kind}:{site_id}:{local_day.isoformat()}", now):
                return False
            out = Outbox(session, now)
            await JOBS[kind](session, self.policies, self.clock, out, site_id)
            await out.flush()
        wake_after(session, self.wake)
        return True


def _hm(value: str) -> tuple[int, int]:
    hour, minute = value.split(":")
    return int(hour), int(minute)
