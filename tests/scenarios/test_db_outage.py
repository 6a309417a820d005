"""The database goes away in the middle of reports, and every report still completes once.

A service runs as in the other scenarios (webhook-mode Telegram through the fake Bot API, or
the web chat), but its engine reaches PostgreSQL through a TCP proxy the test cuts (every open
connection aborted, every new one closed at once: what asyncpg sees when PostgreSQL or the
network goes away), or its SQLite file is held locked by another connection.

How the outage is made deterministic: the router is wrapped (``Tripwire``) so that the outage
starts just as a chosen stored update's handling begins. That update was stored (webhook 200,
web chat 202) but cannot be handled, so the pipeline's retries are what must carry it over.
Around it the reporters play three parts:

- "waiting": walk to the summary, then press 确认提交 while the database is away (the
  issue's reporter who got no ticket): the webhook answers 503 and the fake Bot API delivers
  the update again; the web chat's page sends it again with the same client id, as
  ``chat.html`` does (after 1, 2 and 4 s);
- "busy": walk the wizard concurrently; the handling of the Nth 是 among them starts the
  outage, so the others meet it at whatever step they are;
- "late": starts reporting only once the database is away (its 报修 is refused first).

What stands in for the clockwork (the stage runs without it): the clock runs in real time
from the stage's start, and a ticker kicks the outbox (rows deferred or whose lease ran out go
out). It deliberately does not run the sweep's retry of stored updates (``retry_due``, 30 s
after receipt): the pipeline's own retries must finish every report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

import bot.pipeline
from bot.runtime import Runtime
from bot.service import Service
from handlers.clock import ManualClock
from handlers.conversation.router import Router
from handlers.dialogs.common import Confirm, YesNo
from handlers.messages import Inbound
from handlers.sla.policy import PolicyBook, load_policy
from handlers.texts import ZH, text
from storage.engine import create_engine, create_session_factory, transaction
from storage.models import Conversation, InboxUpdate, Ticket
from tests.conftest import START, Database, make_engine
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_api import FakeBotApi
from tests.scenarios.conftest import seed_cast
from tests.scenarios.stage import TOKEN, Actor, Seen, TelegramDriver, free_port, settings_for

POSTGRES = pytest.mark.parametrize("db", ["postgresql"], indirect=True)
SQLITE = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
CHANNELS = pytest.mark.parametrize("channel", ["telegram", "webchat"])

SUBSYSTEM, DEVICE = "计算机网络", "NET-CORE-01 核心交换机1"
YES, CONFIRM = YesNo(True).pack(), Confirm(True).pack()
APOLOGY = text(ZH, "apology")
SUBMITTED = "已提交工单"
#: How long a person waits for the bot's answer to one step before the test fails.
STEP_WITHIN = 30.0
#: The web chat page's pauses before its second, third and fourth try (chat.html).
PAGE_RETRIES = (1.0, 2.0, 4.0)
#: How often the fake Bot API sends again an update the webhook refused.
REDELIVER_EVERY = 0.5
TICK = 0.25
#: A short busy timeout for the SQLite test (milliseconds): see test_sqlite_locked_mid_report.
SHORT_BUSY_MS = 200

log = logging.getLogger("tests.db_outage")


# -- the clock and the router of the stage --------------------------------------------------------


class RunningClock:
    """Real time, counted from the stage's start (a working-day morning), and movable."""

    def __init__(self, start: datetime) -> None:
        self._start, self._t0, self._offset = start, time.monotonic(), timedelta()

    def now(self) -> datetime:
        """The start plus the real time elapsed plus every ``advance``."""
        return self._start + self._offset + timedelta(seconds=time.monotonic() - self._t0)

    def advance(self, delta: timedelta) -> None:
        """Jump forward (as if ``delta`` passed at once)."""
        self._offset += delta


Proceed = Callable[[], Awaitable[bool]]
Around = Callable[[Inbound, str | None, Proceed], Awaitable[bool]]


async def _straight(event: Inbound, key: str | None, proceed: Proceed) -> bool:
    return await proceed()


@dataclass
class Tripwire(Router):
    """The service's router with a hook around every handling attempt (one call per attempt)."""

    around: Around = field(default=_straight)

    async def handle(self, event: Inbound, inbox_key: str | None = None) -> bool:
        async def proceed() -> bool:
            return await Router.handle(self, event, inbox_key)

        return await self.around(event, inbox_key, proceed)


# -- people on a channel while the database comes and goes ---------------------------------------


def _has_label(label: str) -> Callable[[list[Seen]], bool]:
    return lambda seen: any(label in s.labels for s in seen)


def _has_text(part: str) -> Callable[[list[Seen]], bool]:
    return lambda seen: any(part in s.text for s in seen)


def _submitted(seen: list[Seen]) -> int:
    return sum(s.text.startswith(SUBMITTED) for s in seen)


class Hands(Protocol):
    """How the test's people use one channel when the service may refuse them for a while."""

    refused: int

    async def say(self, who: Actor, message: str) -> None: ...
    async def tap(self, who: Actor, label: str) -> None: ...
    async def seen(self, who: Actor) -> list[Seen]: ...
    async def until(self, who: Actor, check: Callable[[list[Seen]], bool], within: float) -> None: ...


class TelegramHands:
    """People on Telegram: the fake Bot API keeps an update until the webhook answers 2xx, and
    sends what is still queued again every REDELIVER_EVERY seconds (Telegram does, with longer
    pauses)."""

    def __init__(self, api: FakeBotApi, driver: TelegramDriver) -> None:
        self.api, self.driver = api, driver
        #: Webhook deliveries answered with anything but 2xx (503: not stored).
        self.refused = 0
        self._redelivering = asyncio.create_task(self._redeliver())

    async def close(self) -> None:
        """Stop redelivering."""
        self._redelivering.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._redelivering

    async def deliver(self) -> None:
        """POST what is queued to the webhook once."""
        statuses = await self.api.deliver()
        self.refused += sum(not 200 <= status < 300 for status in statuses)

    async def _redeliver(self) -> None:
        while True:
            await asyncio.sleep(REDELIVER_EVERY)
            if self.api.updates:
                await self.deliver()

    async def say(self, who: Actor, message: str) -> None:
        self.api.message(who.telegram_id, message)
        await self.deliver()

    async def tap(self, who: Actor, label: str) -> None:
        for message in reversed(self.api.messages_to(who.telegram_id)):
            for row in (message.reply_markup or {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        self.api.press(who.telegram_id, message.message_id, button["callback_data"])
                        await self.deliver()
                        return
        raise AssertionError(f"{who.key} has no button {label!r}: {await self.seen(who)}")

    async def seen(self, who: Actor) -> list[Seen]:
        return await self.driver.seen(who)

    async def until(self, who: Actor, check: Callable[[list[Seen]], bool], within: float) -> None:
        seen: list[Seen] = []

        def holds() -> bool:
            nonlocal seen
            seen = [
                Seen(
                    m.text or "",
                    tuple(
                        b["text"] for row in (m.reply_markup or {}).get("inline_keyboard", []) for b in row
                    ),
                )
                for m in self.api.messages_to(who.telegram_id)
            ]
            return check(seen)

        try:
            await self.api.wait_until(holds, within)
        except TimeoutError:
            raise AssertionError(f"{who.key} waited {within} s in vain; they see {seen}") from None


class WebHands:
    """People on the web chat page: a send the service refuses (5xx, no connection) is sent
    again with the same client id after 1, 2 and 4 s, as the page does; the page long-polls
    for its lines and simply asks again when that fails."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        #: Sends answered 5xx or not answered (each try counts).
        self.refused = 0
        self._sent = 0
        self._lines: dict[str, dict[int, dict[str, Any]]] = {}

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.http.close()

    async def _post(self, body: dict[str, object]) -> None:
        self._sent += 1
        body = {**body, "client_id": f"c{self._sent}"}  # one id for every try, as the page's uuid
        for pause in (0.0, *PAGE_RETRIES):
            await asyncio.sleep(pause)
            try:
                async with self.http.post(f"{self.base}/chat/api/send", json=body) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            if 200 <= status < 300:
                return
            assert status == 0 or status >= 500, (status, body)
            self.refused += 1
        raise AssertionError(f"the page gave up sending {body}")

    async def say(self, who: Actor, message: str) -> None:
        await self._post({"user": who.webchat_user, "text": message})

    async def tap(self, who: Actor, label: str) -> None:
        for line in reversed(self._shown(who)):
            for row in line["buttons"]:
                for button in row:
                    if button["label"] == label:
                        await self._post(
                            {"user": who.webchat_user, "action": button["action"], "line": line["id"]}
                        )
                        return
        raise AssertionError(f"{who.key} has no button {label!r}: {await self.seen(who)}")

    async def _fetch(self, who: Actor, wait: float) -> None:
        """New lines since the last one seen (long poll); nothing new when the service fails."""
        known = self._lines.setdefault(who.webchat_user, {})
        after = max(known, default=0)
        url = f"{self.base}/chat/api/messages?user={who.webchat_user}&after={after}&wait={wait}"
        try:
            async with self.http.get(url) as response:
                if response.status != 200:
                    await asyncio.sleep(TICK)
                    return
                for line in (await response.json())["messages"]:
                    known[line["id"]] = line
        except (aiohttp.ClientError, TimeoutError):
            await asyncio.sleep(TICK)

    def _shown(self, who: Actor) -> list[dict[str, Any]]:
        """The lines as the page shows them: a changed card in its bubble's place."""
        shown: dict[int, dict[str, Any]] = {}
        for line in sorted(self._lines.get(who.webchat_user, {}).values(), key=lambda x: x["id"]):
            if line.get("replaces") is not None:
                if line["replaces"] in shown:
                    shown[line["replaces"]] = {**line, "id": line["replaces"]}
            elif line["direction"] == "out":
                shown[line["id"]] = line
        return list(shown.values())

    async def seen(self, who: Actor) -> list[Seen]:
        await self._fetch(who, 0)
        return self._view(who)

    def _view(self, who: Actor) -> list[Seen]:
        return [
            Seen(line["text"], tuple(b["label"] for row in line["buttons"] for b in row))
            for line in self._shown(who)
        ]

    async def until(self, who: Actor, check: Callable[[list[Seen]], bool], within: float) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not check(self._view(who)):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{who.key} waited {within} s in vain; they see {self._view(who)}")
            await self._fetch(who, min(left, 2.0))


async def to_summary(hands: Hands, who: Actor, description: str = "全院断网了") -> None:
    """报修 → 计算机网络 → the core switch → a description → 是, each step once the bot has
    answered the one before (as a person does), until the summary with 确认提交 is there."""
    await hands.say(who, "报修")
    await hands.until(who, _has_label(SUBSYSTEM), STEP_WITHIN)
    await hands.tap(who, SUBSYSTEM)
    await hands.until(who, _has_label(DEVICE), STEP_WITHIN)
    await hands.tap(who, DEVICE)
    await hands.until(who, _has_text("请描述故障现象"), STEP_WITHIN)
    await hands.say(who, description)
    await hands.until(who, _has_label("是"), STEP_WITHIN)
    await hands.tap(who, "是")
    await hands.until(who, _has_label("确认提交"), STEP_WITHIN)


async def walk(
    hands: Hands,
    who: Actor,
    *,
    before_confirm: asyncio.Event | None = None,
    at_summary: Callable[[], None] | None = None,
) -> None:
    """The whole wizard, 确认提交 included. With ``before_confirm`` the person waits at the
    summary until the event is set (``at_summary`` is told when they get there)."""
    await to_summary(hands, who, f"{who.name}：全院断网了")
    if at_summary is not None:
        at_summary()
    if before_confirm is not None:
        await before_confirm.wait()
    await hands.tap(who, "确认提交")
    await hands.until(who, lambda seen: _submitted(seen) > 0, STEP_WITHIN)


# -- the stage ------------------------------------------------------------------------------------


@dataclass
class OutageStage:
    """A running service whose database the test takes away, and the people on its channel."""

    service: Service
    clock: RunningClock
    hands: Hands
    cast: dict[str, Actor]
    port: int
    router: Tripwire

    def __getitem__(self, key: str) -> Actor:
        return self.cast[key]

    async def health(self) -> int:
        """The status /healthz answers now."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client,
            client.get(f"http://127.0.0.1:{self.port}/healthz") as response,
        ):
            return response.status

    async def tickets(self, db: Database) -> list[Ticket]:
        """Every ticket (read past the proxy)."""
        async with transaction(db.factory) as session:
            return list((await session.exec(select(Ticket).order_by(col(Ticket.id)))).all())

    async def check_every_report_done_once(self, db: Database, reporters: list[Actor]) -> None:
        """One ticket per reporter, one 已提交工单 each, no wizard open, every update processed,
        nothing given up and no apology."""
        stored = await self.tickets(db)
        per_reporter = {p.person_id: 0 for p in reporters}
        for ticket in stored:
            per_reporter[ticket.reporter_id] = per_reporter.get(ticket.reporter_id, 0) + 1
        assert per_reporter == {p.person_id: 1 for p in reporters}, per_reporter
        for person in reporters:
            seen = await self.hands.seen(person)
            assert _submitted(seen) == 1, (person.key, seen)
            assert not any(APOLOGY in s.text or "抱歉" in s.text for s in seen), (person.key, seen)
        async with transaction(db.factory) as session:
            open_dialogs = (
                await session.exec(select(Conversation).where(col(Conversation.dialog).is_not(None)))
            ).all()
            unprocessed = (
                await session.exec(
                    select(func.count())
                    .select_from(InboxUpdate)
                    .where(col(InboxUpdate.processed_at).is_(None))
                )
            ).one()
            failed = (
                await session.exec(select(InboxUpdate).where(col(InboxUpdate.error).is_not(None)))
            ).all()
        assert [(c.user_id, c.dialog, c.state) for c in open_dialogs] == []
        assert unprocessed == 0
        assert [(u.key, u.error) for u in failed] == []
        assert self.service.pipeline.given_up == 0


async def _tick(service: Service) -> None:
    """The clockwork's part in sending: kick the outbox now and then."""
    while True:
        await asyncio.sleep(TICK)
        service.outbox.kick()


@contextlib.asynccontextmanager
async def outage_stage(channel: str, db: Database, engine: AsyncEngine) -> AsyncIterator[OutageStage]:
    """A started service on ``channel`` (Telegram: webhook mode) whose engine is ``engine``,
    with the cast seeded (through the test's own engine)."""
    cast = await seed_cast(db, ManualClock(START))
    port = free_port()
    clock = RunningClock(START)
    async with contextlib.AsyncExitStack() as stack:
        api: FakeBotApi | None = None
        if channel == "telegram":
            api = FakeBotApi(TOKEN)
            for actor in cast.values():
                api.user(actor.telegram_id, actor.name)
            await api.start()
            stack.push_async_callback(api.stop)
        sessions = create_session_factory(engine)
        policies = PolicyBook(load_policy())
        runtime = Runtime(settings_for(channel, port, api), engine, sessions, policies, clock)
        service = Service(runtime, clockwork=False)
        router = Tripwire(sessions, policies, clock, wake=service.wake)
        service.router = service.pipeline.router = router
        await service.start()
        stack.push_async_callback(service.stop)
        ticker = asyncio.create_task(_tick(service))
        stack.push_async_callback(_cancel, ticker)
        hands: TelegramHands | WebHands
        if api is not None:
            hands = TelegramHands(api, TelegramDriver(api, service))
        else:
            hands = WebHands(f"http://127.0.0.1:{port}")
        stack.push_async_callback(hands.close)
        yield OutageStage(service, clock, hands, cast, port, router)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def proxied(db: Database) -> AsyncIterator[tuple[TcpProxy, AsyncEngine]]:
    """A proxy in front of the test's PostgreSQL and an engine on the test's schema through it."""
    url = make_url(db.url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(through, db.schema)
        try:
            yield proxy, engine
        finally:
            await engine.dispose()


@dataclass
class Figures:
    """What the test counts, printed at the end (pytest -s shows it)."""

    retries: int = 0
    refused: int = 0
    health: list[int] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


def _retries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "dutydesk.pipeline" and r.levelno == logging.WARNING and "trying again" in r.message
    ]


@contextlib.contextmanager
def _figures(caplog: pytest.LogCaptureFixture, title: str) -> Iterator[Figures]:
    caplog.set_level(logging.WARNING, logger="dutydesk")
    figures = Figures()
    started = time.monotonic()
    yield figures
    figures.seconds = time.monotonic() - started
    figures.retries = len(_retries(caplog))
    print(f"\n{title}: {figures}")


# -- a short outage: nobody notices but for the wait ---------------------------------------------


class Outage(Protocol):
    """The database going away and coming back."""

    async def begin(self) -> None: ...
    async def end(self) -> None: ...


@dataclass
class ProxyCut:
    """PostgreSQL unreachable: the proxy is cut."""

    proxy: TcpProxy

    async def begin(self) -> None:
        self.proxy.cut()

    async def end(self) -> None:
        self.proxy.restore()


@dataclass
class FileLock:
    """SQLite locked: another connection holds an exclusive transaction on the file."""

    path: str
    connection: sqlite3.Connection | None = None

    async def begin(self) -> None:
        # In a thread: taking the lock may have to wait for the service's transaction in
        # progress, which needs this event loop to finish.
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        await asyncio.to_thread(connection.execute, "BEGIN EXCLUSIVE")
        self.connection = connection

    async def end(self) -> None:
        assert self.connection is not None
        await asyncio.to_thread(self.connection.execute, "COMMIT")
        self.connection.close()


async def reports_through_an_outage(
    stage: OutageStage,
    outage: Outage,
    figures: Figures,
    *,
    reporters: int,
    waiting: int,
    trigger_at: int,
    seconds: float,
) -> list[Actor]:
    """``reporters`` people report at once: the first ``waiting`` stop at the summary and
    press 确认提交 during the outage, the last one starts during it, and the outage starts as
    the handling of the ``trigger_at``-th 是 of the others begins; it lasts ``seconds``.
    While it lasts /healthz answers 503. Returns the reporters."""
    people = [stage[f"r{n}"] for n in range(1, reporters + 1)]
    waiters, busy, late = people[:waiting], people[waiting:-1], people[-1]
    busy_users = {p.webchat_user for p in busy} | {str(p.telegram_id) for p in busy}
    at_summary = 0
    all_waiting, started, over = asyncio.Event(), asyncio.Event(), asyncio.Event()
    yes_keys: set[str] = set()

    def arrived() -> None:
        nonlocal at_summary
        at_summary += 1
        if at_summary == len(waiters):
            all_waiting.set()

    async def around(event: Inbound, key: str | None, proceed: Proceed) -> bool:
        if (
            event.action == YES
            and event.user_id in busy_users
            and key is not None
            and key not in yes_keys
            and not started.is_set()
        ):
            yes_keys.add(key)
            if len(yes_keys) == trigger_at:
                await all_waiting.wait()
                await outage.begin()
                log.warning("outage begins, as the handling of %s starts", key)
                started.set()
        return await proceed()

    stage.router.around = around

    async def control() -> None:
        await started.wait()
        figures.health.append(await stage.health())
        await asyncio.sleep(seconds)
        figures.health.append(await stage.health())
        await outage.end()
        over.set()
        figures.health.append(await stage.health())

    async def late_one() -> None:
        await started.wait()
        await walk(stage.hands, late)

    await asyncio.gather(
        control(),
        late_one(),
        *(walk(stage.hands, p, before_confirm=started, at_summary=arrived) for p in waiters),
        *(walk(stage.hands, p) for p in busy),
    )
    assert over.is_set()
    assert figures.health == [503, 503, 200], figures.health
    figures.refused = stage.hands.refused
    return people


@POSTGRES
@CHANNELS
async def test_postgres_cut_mid_report(db: Database, channel: str, caplog: pytest.LogCaptureFixture) -> None:
    """20 reporters; PostgreSQL unreachable for 5 s from the handling of the 10th 是 on."""
    with _figures(caplog, f"postgres cut, {channel}") as figures:
        async with proxied(db) as (proxy, engine), outage_stage(channel, db, engine) as stage:
            people = await reports_through_an_outage(
                stage, ProxyCut(proxy), figures, reporters=20, waiting=4, trigger_at=10, seconds=5.0
            )
            await stage.service.idle()
            await stage.check_every_report_done_once(db, people)
            figures.extra = {"refused_connections": proxy.refused, "aborted": proxy.aborted}
    assert figures.refused >= 5  # the 4 confirmations and the late 报修 at least: sent again
    assert figures.retries >= 1  # at least the update the outage began with


@SQLITE
async def test_sqlite_locked_mid_report(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """5 reporters on the web chat; another connection holds the database file locked (BEGIN
    EXCLUSIVE) for 3 s from the handling of the 2nd 是 on.

    The service's engine is built here with a busy timeout of 200 ms instead of the product's
    30 s (an extra "connect" listener, run after the product's own): with 30 s, SQLite would
    simply wait out a 3 s lock inside each statement and nothing would ever fail. With 200 ms
    the statements fail with "database is locked", which is what the pipeline's retries (and the
    web chat's 503 and the page's resend) must get over.
    """
    engine = create_engine(db.url)

    @event.listens_for(engine.sync_engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SHORT_BUSY_MS}")
        cursor.close()

    path = make_url(db.url).database
    assert path is not None
    try:
        with _figures(caplog, "sqlite locked, webchat") as figures:
            async with outage_stage("webchat", db, engine) as stage:
                people = await reports_through_an_outage(
                    stage, FileLock(path), figures, reporters=5, waiting=1, trigger_at=2, seconds=3.0
                )
                await stage.service.idle()
                await stage.check_every_report_done_once(db, people)
    finally:
        await engine.dispose()
    assert figures.refused >= 2  # the confirmation and the late 报修 at least
    assert figures.retries >= 1
    assert any("database is locked" in r.message for r in _retries(caplog))


# -- an outage longer than the retries ------------------------------------------------------------

#: Tries in the tests below (the pipeline's own 8 would take 30 s of an outage).
FEW_ATTEMPTS = 3


@pytest.fixture
def few_attempts(monkeypatch: pytest.MonkeyPatch) -> int:
    """The pipeline gives up after FEW_ATTEMPTS tries (0.25 + 0.5 s of back-off): the services
    made in the test take their default (Pipeline.attempts) from the patched module constant."""
    monkeypatch.setattr(bot.pipeline, "ATTEMPTS", FEW_ATTEMPTS)
    return FEW_ATTEMPTS


async def _inbox_row(db: Database, key: str) -> InboxUpdate:
    async with transaction(db.factory) as session:
        return (await session.exec(select(InboxUpdate).where(InboxUpdate.key == key))).one()


@POSTGRES
@CHANNELS
async def test_an_outage_past_the_last_try_ends_in_an_apology(
    db: Database, channel: str, few_attempts: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The database is away for every try of a 确认提交 and back just as the pipeline gives up:
    the update is marked given up, the person gets the apology, nothing was filed, the wizard
    still stands at the summary, and pressing again files the ticket (once)."""
    with _figures(caplog, f"past the last try, back for the give-up, {channel}") as figures:
        async with proxied(db) as (proxy, engine), outage_stage(channel, db, engine) as stage:
            r1 = stage["r1"]
            await to_summary(stage.hands, r1)
            keys: list[str] = []
            tries = 0

            async def around(event: Inbound, key: str | None, proceed: Proceed) -> bool:
                nonlocal tries
                if event.action != CONFIRM or (keys and key != keys[0]):
                    return await proceed()
                assert key is not None
                keys[:1] = [key]
                tries += 1
                if tries == 1:
                    proxy.cut()
                try:
                    return await proceed()
                finally:
                    if tries == few_attempts:
                        proxy.restore()  # back for the give-up

            stage.router.around = around
            await stage.hands.tap(r1, "确认提交")
            await stage.hands.until(r1, _has_text(APOLOGY), STEP_WITHIN)
            await stage.service.idle()
            assert tries == few_attempts
            row = await _inbox_row(db, keys[0])
            assert row.processed_at is not None and row.error is not None, row
            assert stage.service.pipeline.given_up == 1
            assert await stage.tickets(db) == []
            async with transaction(db.factory) as session:
                (talk,) = (await session.exec(select(Conversation))).all()
            assert talk.dialog == "report"

            stage.router.around = _straight
            await stage.hands.tap(r1, "确认提交")
            await stage.hands.until(r1, lambda seen: _submitted(seen) > 0, STEP_WITHIN)
            await stage.service.idle()
            (ticket,) = await stage.tickets(db)
            assert ticket.reporter_id == r1.person_id
            assert _submitted(await stage.hands.seen(r1)) == 1
    given_up = [r for r in caplog.records if "giving up after" in r.message]
    assert len(given_up) == 1 and keys[0] in given_up[0].message
    assert figures.retries == few_attempts - 1


@POSTGRES
@CHANNELS
async def test_an_outage_past_the_give_up_is_retried_later(
    db: Database, channel: str, few_attempts: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The database is still away when the pipeline gives up a 确认提交, so it cannot even mark
    it given up: no apology, the update stays stored with its retry time, and once the database
    is back and that time has come the sweep handles it: the ticket is filed once."""
    with _figures(caplog, f"past the give-up, {channel}") as figures:
        async with proxied(db) as (proxy, engine), outage_stage(channel, db, engine) as stage:
            r1 = stage["r1"]
            await to_summary(stage.hands, r1)
            keys: list[str] = []

            async def around(event: Inbound, key: str | None, proceed: Proceed) -> bool:
                if event.action == CONFIRM and not keys:
                    assert key is not None
                    keys.append(key)
                    proxy.cut()
                return await proceed()

            stage.router.around = around
            await stage.hands.tap(r1, "确认提交")
            await stage.service.pipeline.drain()  # every try failed, and the give-up too
            assert keys and proxy.is_cut
            figures.health.append(await stage.health())
            proxy.restore()
            row = await _inbox_row(db, keys[0])
            assert row.processed_at is None and row.retry_at is not None, row
            assert await stage.tickets(db) == []
            assert not _has_text(APOLOGY)(await stage.hands.seen(r1))

            stage.clock.advance(bot.pipeline.RETRY_AFTER)  # the sweep's time for it comes
            await stage.service.sweep()
            await stage.hands.until(r1, lambda seen: _submitted(seen) > 0, STEP_WITHIN)
            await stage.service.idle()
            (ticket,) = await stage.tickets(db)
            assert ticket.reporter_id == r1.person_id
            seen = await stage.hands.seen(r1)
            assert _submitted(seen) == 1 and not _has_text(APOLOGY)(seen)
            row = await _inbox_row(db, keys[0])
            assert row.processed_at is not None
    assert figures.health == [503]
    assert figures.retries == few_attempts - 1
    assert any("stays stored for a later retry" in r.message for r in caplog.records)
