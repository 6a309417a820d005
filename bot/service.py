"""The running service: the web server, the channels that are switched on, the clockwork."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime

from aiohttp import web

from bot.channel import Channel
from bot.due_notices import DueNotices
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.telegram.channel import TelegramChannel
from bot.web import build_app
from bot.webchat.channel import WebChat
from bot.wecom.channel import WecomChannel
from handlers.conversation.router import Router
from scheduler.clockwork import Clockwork
from scheduler.cron import CronJobs
from scheduler.outbox import OutboxSender
from scheduler.sweep import Sweeper
from storage.due import Became
from storage.engine import transaction
from storage.repositories.due import next_due

log = logging.getLogger("dutydesk.service")
BACKLOG = 1024


class Service:
    """Everything one dutydesk process runs."""

    def __init__(self, runtime: Runtime, *, clockwork: bool = True) -> None:
        self.runtime = runtime
        self.use_clockwork = clockwork
        sessions, policies, clock = runtime.sessions, runtime.policies, runtime.clock
        self.outbox = OutboxSender(sessions, clock, wake=self.wake)
        self.clockwork = Clockwork(self._due_work, self._next_due, clock.now, messages=self.outbox.kick)
        self.router = Router(sessions, policies, clock, wake=self.wake)
        self.sweeper = Sweeper(sessions, policies, clock, wake=self.wake)
        settings = runtime.settings
        self.cron = CronJobs(
            sessions, policies, clock, self.wake, settings.overview_at, settings.inspection_at
        )
        self.pipeline = Pipeline(sessions, clock, self.router, wake=self.wake)
        self.notices = DueNotices(runtime.engine, self.clockwork.wake_at, clock.now)
        self.webchat = WebChat(runtime)
        self.telegram = TelegramChannel(runtime) if settings.telegram_token else None
        self.wecom = WecomChannel(runtime) if settings.wecom_enabled else None
        self.channels: list[Channel] = [c for c in (self.webchat, self.telegram, self.wecom) if c is not None]
        for channel in self.channels:
            self.pipeline.add(channel)
            self.outbox.add(channel.kind, channel.send, channel.limits)
        mounted = [c for c in self.channels if c is not self.webchat or settings.webchat_enabled]
        self.app = build_app(runtime, [c.routes for c in mounted])
        self._runner: web.AppRunner | None = None

    def wake(self, became: Became) -> None:
        """The port every writer of due rows calls after its commit."""
        self.clockwork.wake(became)
        if became.at is not None:
            self.notices.tell(became.at)

    async def start(self) -> None:
        """Listen, start the channels, take up what a previous run left, start the clockwork."""
        settings = self.runtime.settings
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        # A deep accept queue: WeCom and Telegram may open hundreds of connections at once, and
        # with the default 128 the rest wait a second for their SYN to be sent again.
        await web.TCPSite(self._runner, settings.http_host, settings.http_port, backlog=BACKLOG).start()
        for channel in self.channels:
            await channel.start(self.pipeline)
        await self.pipeline.recover()
        if self.use_clockwork:
            await self.cron.install(self.clockwork.scheduler)
            await self.clockwork.start()
            await self.notices.start()
        self.outbox.kick()
        log.info(
            "dutydesk serving on http://%s:%s (%s)",
            settings.http_host,
            settings.http_port,
            settings.describe(),
        )

    async def stop(self) -> None:
        """Stop in reverse order, finishing the messages being handled."""
        self.clockwork.stop()
        await self.notices.stop()
        if self._runner is not None:  # no new webhook posts or web chat messages
            await self._runner.cleanup()
        for channel in self.channels:
            await channel.stop_receiving()
        await self.pipeline.drain()
        await self.outbox.drain()  # what was queued goes out while the bots still can
        for channel in self.channels:
            await channel.close()

    async def _due_work(self) -> None:
        """What the clockwork runs when something falls due."""
        await self.sweeper.sweep()
        await self.pipeline.retry_due()
        self.outbox.kick()

    async def _next_due(self) -> datetime | None:
        async with transaction(self.runtime.sessions) as session:
            return await next_due(session)

    async def sweep(self) -> int:
        """Fire what is due now and send its messages (the clockwork does this by itself)."""
        fired = await self.sweeper.sweep()
        await self.pipeline.retry_due()
        await self.idle()
        return fired

    async def idle(self) -> None:
        """Wait until every inbound message taken so far has been handled and its answers sent."""
        while True:
            await self.pipeline.drain()
            await self.outbox.flush()
            if not self.pipeline.busy:
                return


async def serve(runtime: Runtime, stop: asyncio.Event | None = None) -> None:
    """Run the service until ``stop`` is set or the process gets SIGINT/SIGTERM."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service = Service(runtime)
    await service.start()
    settings = runtime.settings
    base = f"http://{settings.http_host}:{settings.http_port}"
    chat = f" · web chat: {base}/chat" if settings.webchat_enabled else ""
    print(f"dutydesk is running on {base}/healthz{chat}", flush=True)
    try:
        await stop.wait()
    finally:
        await service.stop()
