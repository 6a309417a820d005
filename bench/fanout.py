"""A fan-out: N pings due in the same second to N different Telegram chats, within the Bot API limit.

For each database (SQLite; PostgreSQL with --postgres, in a scratch schema) N outbox rows for N
Telegram users are written at once through ``handlers.outgoing.Outbox`` (one INSERT, all
``not_before = now``) and committed, and the commit is handed to the service's port
(``Service.wake``, as every writer of outbox rows does after its commit), which kicks the
sender. The real service delivers them: the real OutboxSender (TELEGRAM limits) through the real
``TelegramChannel.send`` (python-telegram-bot), with the service's clockwork running (a deferred
row, e.g. after a 429, is a due row: the clockwork wakes at its time and kicks the sender again;
nothing polls), against the fake Bot API with ``rate_limit(per_second=30)`` (429 beyond 30 calls
in any sliding second).

Printed per run: messages/s delivered from the first to the last delivery ((delivered - 1) / span,
so a sender at exactly 30/s shows 30.0), the 429 answers the fake sent, the chats left without
their message (and rows still unsent), the chats that got their message more than once, and how
many due-work runs the clockwork did meanwhile. Goals: >= 27 msg/s, 0 x 429, 0 lost. In the same
run a bare PTB Bot with a client-side pacer at exactly 30 calls/s sends the same N messages to the
same kind of fake: the rate is shown as a share of that (a 429 there is retried in the pacer's
next slot).

    .venv/bin/python -m bench.fanout [--count 1000] [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from sqlalchemy import func, text, update
from sqlmodel import col, select
from telegram import Bot
from telegram.error import RetryAfter

from bot.runtime import Runtime
from bot.service import Service
from handlers.clock import SystemClock
from handlers.messages import Address
from handlers.outgoing import Outbox
from handlers.sla.policy import PolicyBook, load_policy
from storage.due import wake_after
from storage.engine import SessionFactory, create_engine, create_session_factory, transaction
from storage.enums import Channel
from storage.migrate import upgrade
from storage.models import OutboxMessage, Person
from tests.fakes.telegram_api import FakeBotApi
from tests.scenarios.stage import TOKEN, free_port, settings_for

FIRST_CHAT = 70_000
PER_SECOND = 30  # the fake's limit, and the baseline pacer's rate
GOAL_RATE = 27.0
SLACK = 15.0  # seconds past count / GOAL_RATE after which a run gives up on what is left
STARTUP = "startup"  # the id of the clockwork's first run


@dataclass
class Run:
    """What one run delivered, as the fake Bot API saw it."""

    name: str
    count: int
    started: float  # perf_counter when the messages became due
    deliveries: list[float]  # perf_counter of every sendMessage the fake carried out
    per_chat: dict[int, int]  # messages each chat received
    too_many: int  # 429 answers (rate limit and injected failures)
    rate_limited: int  # of which from rate_limit()
    other_errors: int  # any other non-2xx answer
    unsent_rows: int | None = None  # outbox rows neither sent nor failed at the end (None: no outbox)
    failed_rows: int = 0
    retried_rows: int = 0
    clockwork_runs: int | None = None  # due-work runs of the service's clockwork (None: no service)
    notes: list[str] = field(default_factory=list)

    @property
    def span(self) -> float:
        """Seconds from the first to the last delivery."""
        return self.deliveries[-1] - self.deliveries[0] if len(self.deliveries) > 1 else 0.0

    @property
    def rate(self) -> float:
        """Deliveries per second between the first and the last one."""
        return (len(self.deliveries) - 1) / self.span if self.span > 0 else 0.0

    @property
    def lost(self) -> int:
        """Chats that did not get their message."""
        return sum(1 for n in self.per_chat.values() if n == 0)

    @property
    def duplicates(self) -> int:
        """Chats that got their message more than once."""
        return sum(1 for n in self.per_chat.values() if n > 1)

    def missed_goals(self) -> list[str]:
        """The goals missed (empty: all met)."""
        missed = []
        if self.rate < GOAL_RATE:
            missed.append(f"{self.rate:.1f} msg/s < {GOAL_RATE:.0f}")
        if self.too_many:
            missed.append(f"{self.too_many} x 429")
        if self.lost:
            missed.append(f"{self.lost} lost")
        return missed


class Deliveries:
    """Times every sendMessage the fake carries out (checked after each request it answers)."""

    def __init__(self, api: FakeBotApi) -> None:
        self.api = api
        self.times: list[float] = []
        self._seen = 0

    def observe(self) -> bool:
        """Record what was sent since the last look; never 'done' (the watch is cancelled)."""
        now = time.perf_counter()
        sent = self.api.sent
        self.times.extend(now for item in sent[self._seen :] if item.method == "sendMessage")
        self._seen = len(sent)
        return False

    async def watch(self) -> None:
        """Observe until cancelled."""
        with contextlib.suppress(TimeoutError):
            await self.api.wait_until(self.observe, within=24 * 3600.0)


def chats(count: int) -> list[int]:
    """The Telegram chat ids of the pinged people."""
    return [FIRST_CHAT + n for n in range(count)]


def finish(name: str, api: FakeBotApi, watcher: Deliveries, started: float, count: int) -> Run:
    """The fake's view of a run."""
    watcher.observe()
    statuses = [call.status for call in api.calls]
    return Run(
        name=name,
        count=count,
        started=started,
        deliveries=watcher.times,
        per_chat={chat: len(api.messages_to(chat)) for chat in chats(count)},
        too_many=sum(1 for s in statuses if s == 429),
        rate_limited=api.rate_limited,
        other_errors=sum(1 for s in statuses if s is not None and s != 429 and not 200 <= s < 300),
    )


async def baseline_run(count: int) -> Run:
    """The ceiling: a bare PTB Bot sending one message per chat, paced at exactly PER_SECOND."""
    async with FakeBotApi(TOKEN) as api:
        for chat in chats(count):
            api.user(chat, f"人员{chat}")
        async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
            api.rate_limit(PER_SECOND)  # after getMe
            watcher = Deliveries(api)
            watch = asyncio.create_task(watcher.watch())
            loop = asyncio.get_running_loop()
            queue = deque(chats(count))
            started, first_slot, slot = time.perf_counter(), loop.time(), 0
            deadline = first_slot + count / GOAL_RATE + SLACK
            try:
                while queue and loop.time() < deadline:
                    await asyncio.sleep(max(0.0, first_slot + slot / PER_SECOND - loop.time()))
                    slot += 1
                    chat = queue.popleft()
                    try:
                        await bot.send_message(chat, f"值班提醒 {chat}")
                    except RetryAfter:
                        queue.appendleft(chat)  # again in the next slot
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
        return finish("baseline", api, watcher, started, count)


async def seed(sessions: SessionFactory, count: int, now: datetime) -> list[int]:
    """One person per chat; their ids."""
    async with transaction(sessions) as session:
        people = [Person(name=f"人员{n}", created_at=now) for n in range(count)]
        session.add_all(people)
        await session.flush()
        return [person.id or 0 for person in people]


async def outbox_figures(sessions: SessionFactory) -> tuple[int, int, int]:
    """Telegram rows (unsent and not failed, failed, sent after more than one attempt)."""
    telegram = OutboxMessage.channel == Channel.TELEGRAM
    async with transaction(sessions) as session:
        unsent = (
            await session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(telegram, col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None))
            )
        ).one()
        failed = (
            await session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(telegram, col(OutboxMessage.failed_at).is_not(None))
            )
        ).one()
        retried = (
            await session.exec(
                select(func.count()).select_from(OutboxMessage).where(telegram, OutboxMessage.attempts > 1)
            )
        ).one()
    return unsent, failed, retried


async def give_up(sessions: SessionFactory, now: datetime) -> None:
    """Past the deadline: mark what is left failed so the sender's flush runs dry."""
    async with transaction(sessions) as session:
        await (await session.connection()).execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None))
            .values(failed_at=now, error="bench deadline")
        )


async def dutydesk_run(name: str, url: str, schema: str | None, count: int) -> Run:
    """The real service on one database: rows due at once, the outbox sender delivers them."""
    kwargs = {"connect_args": {"server_settings": {"search_path": schema}}} if schema else {}
    engine = create_engine(url, **kwargs)
    await upgrade(engine)
    async with FakeBotApi(TOKEN) as api:
        for chat in chats(count):
            api.user(chat, f"人员{chat}")
        port = free_port()
        settings = settings_for("telegram", port, api)
        runtime = Runtime(
            settings, engine, create_session_factory(engine), PolicyBook(load_policy()), SystemClock()
        )
        people = await seed(runtime.sessions, count, runtime.clock.now())
        service = Service(runtime)  # with its clockwork: it wakes at every deferred row's time
        first_run = asyncio.Event()

        def on_job(event: JobExecutionEvent) -> None:
            if event.job_id == STARTUP:
                first_run.set()

        service.clockwork.scheduler.add_listener(on_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        await service.start()
        watcher = Deliveries(api)
        watch = asyncio.create_task(watcher.watch())
        try:
            api.rate_limit(PER_SECOND)  # after getMe, setMyCommands and setWebhook
            await first_run.wait()  # the clockwork's first run (nothing due) is not ours
            runs_before = service.clockwork.runs
            async with transaction(runtime.sessions) as session:
                out = Outbox(session, runtime.clock.now())
                for chat, person in zip(chats(count), people, strict=True):
                    out.say(Address(Channel.TELEGRAM, str(chat)), f"值班提醒 {chat}", (), person)
                await out.flush()
            started = time.perf_counter()
            wake_after(session, service.wake)  # what every writer does after its commit
            deadline = started + count / GOAL_RATE + SLACK
            notes: list[str] = []
            unsent_at_deadline = 0
            while (await outbox_figures(runtime.sessions))[0]:
                if time.perf_counter() > deadline:
                    notes.append(f"gave up after {deadline - started:.0f} s")
                    unsent_at_deadline = (await outbox_figures(runtime.sessions))[0]
                    await give_up(runtime.sessions, runtime.clock.now())
                    break
                await asyncio.sleep(0.2)
            await service.outbox.drain()
            clockwork_runs = service.clockwork.runs - runs_before
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await service.stop()
        run = finish(name, api, watcher, started, count)
        _, run.failed_rows, run.retried_rows = await outbox_figures(runtime.sessions)
        run.unsent_rows, run.notes = unsent_at_deadline, notes
        run.clockwork_runs = clockwork_runs
        if unsent_at_deadline:
            run.failed_rows -= unsent_at_deadline  # those were marked failed by give_up
    await engine.dispose()
    return run


def line(run: Run, ceiling: Run | None) -> str:
    """One result line."""
    rows = (
        f" | rows: unsent {run.unsent_rows}, failed {run.failed_rows}, retried {run.retried_rows}"
        if run.unsent_rows is not None
        else ""
    )
    share = f" | {run.rate / ceiling.rate:6.1%} of baseline" if ceiling and ceiling.rate else ""
    first = (run.deliveries[0] - run.started) * 1000 if run.deliveries else float("nan")
    other = f" + {run.other_errors} other errors" if run.other_errors else ""
    notes = f" | {'; '.join(run.notes)}" if run.notes else ""
    if run.clockwork_runs is not None:
        rows += f" | clockwork runs {run.clockwork_runs}"
    return (
        f"{run.name:10s} {len(run.deliveries):5d} delivered, first->last {run.span:6.2f} s = "
        f"{run.rate:5.1f} msg/s{share} | 429 x {run.too_many} (rate limit {run.rate_limited}){other} | "
        f"lost {run.lost} | duplicates {run.duplicates} | first after {first:5.0f} ms{rows}{notes}"
    )


async def with_scratch_schema(url: str, count: int) -> Run:
    """dutydesk on PostgreSQL in a schema created for the run and dropped after it."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        return await dutydesk_run("postgresql", url, schema, count)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def main() -> None:
    """The baseline, then dutydesk on each database; the figures and the goals."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="pings, one per chat (default 1000)")
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch schema is created and dropped)")
    args = parser.parse_args()
    count: int = args.count
    print(
        f"{count} pings due at once to {count} Telegram chats; the fake Bot API answers 429 beyond "
        f"{PER_SECOND} calls in any sliding second"
    )
    baseline = await baseline_run(count)
    print(line(baseline, None) + f" | bare PTB Bot, pacer at {PER_SECOND}/s")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(await dutydesk_run("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}", None, count))
        print(line(runs[-1], baseline))
    if args.postgres:
        runs.append(await with_scratch_schema(args.postgres, count))
        print(line(runs[-1], baseline))
    verdicts = [
        f"{run.name} " + ("met" if not run.missed_goals() else "NOT met: " + ", ".join(run.missed_goals()))
        for run in runs
    ]
    print(f"goals (>= {GOAL_RATE:.0f} msg/s, 0 x 429, 0 lost): " + " | ".join(verdicts))


if __name__ == "__main__":
    asyncio.run(main())
