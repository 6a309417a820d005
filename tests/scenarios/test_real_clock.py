"""One test on the real clock: a policy scaled to seconds, the service's own scheduler, and a
reminder reaching the engineer through the fake Bot API on time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.runtime import Runtime
from bot.service import Service
from handlers.clock import ManualClock, SystemClock
from handlers.sla.policy import PolicyBook, parse_policy
from handlers.tickets.service import TicketService
from storage.due import wake_after
from storage.engine import transaction
from storage.repositories.sites import subsystems
from tests.conftest import Database
from tests.fakes.telegram_api import FakeBotApi
from tests.scenarios.conftest import seed_cast
from tests.scenarios.stage import TOKEN, free_port, settings_for

SECONDS_POLICY = """
[levels.1]
response = "4s"
restore = "30s"
resolve = "60s"
[levels.2]
response = "30m"
restore = "8h"
resolve = "24h"
[levels.3]
response = "60m"
resolve = "48h"
[classification]
window = "10m"
default_level = 2
[reminders]
at = [0.5]
"""


async def test_a_reminder_arrives_on_time_on_the_real_clock(db: Database) -> None:
    cast = await seed_cast(db, ManualClock(datetime.now(UTC)))
    engineer = cast["e1"].telegram_id
    async with FakeBotApi(TOKEN) as api:
        for actor in cast.values():
            api.user(actor.telegram_id, actor.name)
        port = free_port()
        policies = PolicyBook(parse_policy(SECONDS_POLICY, "seconds policy"))
        runtime = Runtime(settings_for("telegram", port, api), db.engine, db.factory, policies, SystemClock())
        service = Service(runtime)
        await service.start()
        try:
            async with transaction(db.factory) as session:
                network = (await subsystems(session, 1))[3]
                desk = TicketService(session, policies, runtime.clock)
                ticket = await desk.report(
                    site_id=1,
                    reporter_id=cast["r1"].person_id,
                    subsystem_id=network.id,
                    description="断网",
                    level=1,
                    confirmed=True,
                )
            wake_after(session, service.wake)  # what every writer of due rows does after its commit
            due = ticket.reported_at + timedelta(seconds=2)  # 50 % of the 4 s response

            def reminded() -> bool:
                return any((m.text or "").startswith("⏰ 工单 #1") for m in api.messages_to(engineer))

            await api.wait_until(reminded, 10.0)
            late = (datetime.now(UTC) - due).total_seconds()
            assert 0 <= late <= 1.0, late

            def breached() -> bool:
                return any("响应已超时" in (m.text or "") for m in api.messages_to(cast["s1"].telegram_id))

            await api.wait_until(breached, 10.0)
            late = (datetime.now(UTC) - ticket.reported_at - timedelta(seconds=4)).total_seconds()
            assert 0 <= late <= 1.0, late
        finally:
            await service.stop()
