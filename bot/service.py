"""The running service: the web server, the channels that are switched on, the time ticker."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot.runtime import Runtime
from bot.telegram.channel import TelegramChannel
from bot.web import build_app
from bot.webchat.channel import WebChat
from bot.wecom.channel import WecomChannel
from handlers.conversation.router import Router
from scheduler.clockwork import Clockwork
from scheduler.cron import CronJobs
from scheduler.outbox import LOCAL, TELEGRAM, WECOM, OutboxSender
from scheduler.sweep import Sweeper
from storage.enums import Channel

log = logging.getLogger("dutydesk.service")
BACKLOG = 1024
TICK_SECONDS = 5.0  # the periodic sweep; the next due timer has its own wake-up


class Service:
    """Everything one dutydesk process runs."""

    def __init__(self, runtime: Runtime, tick_seconds: float | None = TICK_SECONDS) -> None:
        self.runtime = runtime
        self.tick_seconds = tick_seconds
        self.router = Router(runtime.sessions, runtime.policies, runtime.clock)
        self.outbox = OutboxSender(runtime.sessions, runtime.clock)
        self.sweeper = Sweeper(runtime.sessions, runtime.policies, runtime.clock, self.outbox.deliver)
        self.clockwork = Clockwork(
            runtime.sessions, self.sweeper.sweep, extra=self.tick, now=runtime.clock.now
        )
        settings = runtime.settings
        self.cron = CronJobs(
            runtime.sessions,
            runtime.policies,
            runtime.clock,
            self.outbox.deliver,
            settings.overview_at,
            settings.inspection_at,
        )
        self.router.after_commit = self.clockwork.reschedule
        self.webchat = WebChat(runtime, self.router, self.outbox)
        self.outbox.add(Channel.WEBCHAT, self.webchat.deliver, LOCAL)
        self.telegram: TelegramChannel | None = None
        if runtime.settings.telegram_token:
            self.telegram = TelegramChannel(runtime, self.router, self.outbox)
            self.outbox.add(Channel.TELEGRAM, self.telegram.send, TELEGRAM)
        self.wecom: WecomChannel | None = None
        if runtime.settings.wecom_enabled:
            self.wecom = WecomChannel(runtime, self.router, self.outbox)
            self.outbox.add(Channel.WECOM, self.wecom.send, WECOM)
        mounts = [self.webchat.routes] if runtime.settings.webchat_enabled else []
        mounts += [self.telegram.routes] if self.telegram else []
        mounts += [self.wecom.routes] if self.wecom else []
        self.app = build_app(runtime, mounts)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen, recover what a previous run left, start the channels and the ticker."""
        settings = self.runtime.settings
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        # A deep accept queue: WeCom and Telegram may open hundreds of connections at once, and
        # with the default 128 the rest wait a second for their SYN to be sent again.
        await web.TCPSite(self._runner, settings.http_host, settings.http_port, backlog=BACKLOG).start()
        await self.webchat.recover()
        if self.telegram is not None:
            await self.telegram.start()
        if self.wecom is not None:
            await self.wecom.start()
        if self.tick_seconds is not None:
            self.clockwork.interval = self.tick_seconds
            await self.cron.install(self.clockwork.scheduler)
            await self.clockwork.start()
        log.info(
            "dutydesk serving on http://%s:%s (%s)",
            settings.http_host,
            settings.http_port,
            settings.describe(),
        )

    async def stop(self) -> None:
        """Stop in reverse order, finishing the messages being handled."""
        self.clockwork.stop()
        if self._runner is not None:  # no new webhook posts or web chat messages
            await self._runner.cleanup()
        await self.webchat.drain()
        if self.wecom is not None:
            await self.wecom.drain()
        if self.telegram is not None:
            await self.telegram.stop_receiving()
        await self.outbox.drain()  # what was queued goes out while the bots still can
        if self.telegram is not None:
            await self.telegram.close()
        if self.wecom is not None:
            await self.wecom.close()

    async def tick(self) -> None:
        """The classification window's reminders and ends."""
        await self.outbox.deliver(await self.router.tick())  # also retries deferred messages
        await self.outbox.drain()

    async def sweep(self) -> int:
        """Fire the due timers now (the clockwork does this by itself when running)."""
        fired = await self.sweeper.sweep()
        await self.outbox.drain()
        return fired

    async def idle(self) -> None:
        """Wait until every inbound message taken so far has been handled and its answers sent."""
        await self.webchat.drain()
        if self.telegram is not None:
            await self.telegram.drain()
        if self.wecom is not None:
            await self.wecom.drain()
        await self.outbox.drain()


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
