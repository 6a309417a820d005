"""The crash test's stage: the real ``dutydesk run`` as a child process that can be SIGKILLed
and started again (same database, same port), and a crowd of reporters walking the report
wizard on the fake Bot API, each step only once the bot answered the previous one.

The child reaches the test's database by URL only, as a deployment would: the SQLite file
itself, or on PostgreSQL a login role made for the test whose ``search_path`` is the test's
scratch schema (asyncpg takes no search_path from a URL, and the settings have no
connect_args), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bot.demo
from handlers.directory.assets_import import ASSET_COLUMNS, import_assets
from handlers.directory.tables import read_rows
from storage.engine import create_engine, normalise_url, transaction
from storage.enums import Channel, Role
from storage.models import Person
from storage.repositories.people import add_membership, link_identity
from storage.repositories.sites import create_site
from tests.conftest import Database
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.telegram_objects import ChatMessage, JsonDict
from tests.scenarios.stage import SECRET, TOKEN, Actor

DUTYDESK = Path(sys.executable).with_name("dutydesk")
REPORTERS = 50
FIRST_TELEGRAM_ID = 30_001
#: key → (name, role); reporters r1..r50 come first.
STAFF = {
    "e1": ("马骏", Role.ENGINEER),
    "e2": ("何亮", Role.ENGINEER),
    "s1": ("林国栋", Role.SUPERVISOR),
}
OUTAGE = "全院断网了，核心交换机红灯"
#: The line `dutydesk run` prints once it is started (channels up, stored updates taken up).
RUNNING = "dutydesk is running on"
SUBMITTED = re.compile(r"已提交工单 #(\d+)（一级）")


@dataclass(frozen=True)
class Step:
    """One step of the wizard: a text to send or a button to press, and what the bot's answer
    to it contains."""

    answer: str
    text: str | None = None
    press: str | None = None


#: 报修 → 计算机网络 → NET-CORE-01 → a description → 是 (level 1) → 确认提交.
WIZARD = (
    Step("请选择故障所属系统", text="报修"),
    Step("请选择设备", press="计算机网络"),
    Step("请描述故障现象", press="NET-CORE-01 核心交换机1"),
    Step("业务是否已中断", text=OUTAGE),
    Step("请确认报修", press="是"),
    Step("已提交工单 #", press="确认提交"),
)


async def seed_crowd(database: Database) -> dict[str, Actor]:
    """The demo site with its assets, 50 reporters, two engineers and the supervisor, each with
    a Telegram account."""
    now = datetime.now(UTC)
    people = {f"r{n}": (f"报修人{n}", Role.REPORTER) for n in range(1, REPORTERS + 1)} | STAFF
    cast: dict[str, Actor] = {}
    async with transaction(database.factory) as session:
        site = await create_site(session, "示例法院", "demo", now)
        assets = Path(bot.demo.__file__).with_name("assets.csv")
        await import_assets(session, read_rows(assets, ASSET_COLUMNS))
        for number, (key, (name, role)) in enumerate(people.items()):
            person = Person(name=name, phone=f"1390000{number:04d}", created_at=now)
            session.add(person)
            await session.flush()
            assert person.id is not None and site.id is not None
            await add_membership(session, person.id, site.id, role)
            telegram_id = FIRST_TELEGRAM_ID + number
            await link_identity(session, person.id, Channel.TELEGRAM, str(telegram_id))
            cast[key] = Actor(key, name, person.id, telegram_id, key)
    return cast


@asynccontextmanager
async def child_database_url(database: Database) -> AsyncIterator[str]:
    """The URL a child process reaches the test's database with."""
    if database.schema is None:
        yield database.url
        return
    role, schema = f"crash_{uuid.uuid4().hex[:12]}", database.schema
    admin = create_engine(database.url)
    try:
        async with admin.begin() as conn:
            for statement in (
                f'CREATE ROLE "{role}" LOGIN',
                f'ALTER ROLE "{role}" SET search_path TO "{schema}"',
                f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"',
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
                f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"',
            ):
                await conn.exec_driver_sql(statement)
        url = normalise_url(database.url).set(username=role, password=None)
        yield url.render_as_string(hide_password=False)
    finally:
        async with admin.begin() as conn:
            await conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
            )
            await conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            await conn.exec_driver_sql(f'DROP ROLE "{role}"')
        await admin.dispose()


class ServiceProcess:
    """``dutydesk run`` as a child process; its output goes to one log file across restarts."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.log = cwd / "dutydesk.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, within: float = 40.0) -> float:
        """Start it and wait until it says it is running; the seconds that took."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"---- start {self.starts}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                DUTYDESK, "run", cwd=self.cwd, env=self.env, stdout=out, stderr=out
            )
        while True:
            if RUNNING in self.log.read_bytes()[offset:].decode(errors="replace"):
                return loop.time() - began
            if self.process.returncode is not None:
                raise AssertionError(f"dutydesk run exited with {self.process.returncode}:\n{self.tail()}")
            if loop.time() - began > within:
                raise AssertionError(f"dutydesk run did not start within {within} s:\n{self.tail()}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or the OOM killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        with self.log.open("ab") as out:
            out.write(b"---- SIGKILL\n")

    async def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not stopped within 10 s."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    def tail(self, lines: int = 40) -> str:
        """The end of the log."""
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def errors(self) -> list[str]:
        """Log lines at ERROR level or tracebacks."""
        if not self.log.exists():
            return []
        text = self.log.read_text(errors="replace").splitlines()
        return [line for line in text if " ERROR " in line or line.startswith("Traceback")]


def child_env(database_url: str, port: int, api: FakeBotApi, webhook: bool) -> dict[str, str]:
    """The environment of ``dutydesk run``: only the test's settings, none from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUTYDESK_")}
    env |= {
        "DUTYDESK_DATABASE_URL": database_url,
        "DUTYDESK_TELEGRAM_TOKEN": TOKEN,
        "DUTYDESK_TELEGRAM_API_URL": api.url,
        "DUTYDESK_HTTP_PORT": str(port),
        "DUTYDESK_WEBCHAT": "off",
        "PYTHONUNBUFFERED": "1",
    }
    if webhook:
        env["DUTYDESK_TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/telegram/webhook"
        env["DUTYDESK_TELEGRAM_WEBHOOK_SECRET"] = SECRET
    return env


@dataclass
class Hang:
    """A step the bot did not answer in time by itself: the reporter sent it again."""

    reporter: str
    step: int
    waited: float


@dataclass
class Crowd:
    """The reporters and what the run went through; ``down`` while the service is dead."""

    api: FakeBotApi
    reporters: list[Actor]
    seed: str
    #: Seconds a step may stay unanswered after it was sent and the service was up again: the
    #: outbox lease (15 s) a killed process leaves on the rows it held, and a margin for load.
    grace: float = 25.0
    down: bool = False
    up_since: float = 0.0
    done_steps: int = 0
    finished: set[str] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    at_step: dict[str, int] = field(default_factory=dict)
    updates: list[JsonDict] = field(default_factory=list)
    hangs: list[Hang] = field(default_factory=list)

    @property
    def all_done(self) -> bool:
        """Whether every reporter is through the wizard."""
        return len(self.finished) == len(self.reporters)

    async def walk(self, who: Actor) -> None:
        """One reporter through the wizard, as a person: each step after the bot's answer."""
        rng = random.Random(f"{self.seed}/{who.key}")
        await asyncio.sleep(rng.uniform(0, 1.0))
        answer: ChatMessage | None = None
        for number, step in enumerate(WIZARD, start=1):
            await asyncio.sleep(rng.uniform(0, 0.2))  # reading, typing
            self.waiting.add(who.key)
            self.at_step[who.key] = number
            answer = await self._step(who, number, step, answer)
            self.waiting.discard(who.key)
            self.done_steps += 1
        self.finished.add(who.key)

    async def _step(self, who: Actor, number: int, step: Step, shown: ChatMessage | None) -> ChatMessage:
        loop = asyncio.get_running_loop()
        while True:
            after = self._send(who, step, shown)
            sent = loop.time()
            while True:
                found = self._answer(who.telegram_id, after, step.answer)
                if found is not None:
                    return found

                def answered(after: int = after) -> bool:
                    return self._answer(who.telegram_id, after, step.answer) is not None

                with contextlib.suppress(TimeoutError):
                    await self.api.wait_until(answered, 0.5)
                now = loop.time()
                if not self.down and now > max(sent, self.up_since) + self.grace:
                    self.hangs.append(Hang(who.key, number, round(now - sent, 1)))
                    break  # a person would send it again now

    def _send(self, who: Actor, step: Step, shown: ChatMessage | None) -> int:
        """Queue the step's update; the chat's last message id before the answer can come."""
        chat = who.telegram_id
        if step.text is not None:
            update = self.api.message(chat, step.text)
            self.updates.append(update)
            return int(update["message"]["message_id"])
        assert shown is not None and step.press is not None
        data = next(
            button["callback_data"]
            for row in (shown.reply_markup or {}).get("inline_keyboard", [])
            for button in row
            if button["text"] == step.press
        )
        last = self.api.history(chat)[-1].message_id
        self.updates.append(self.api.press(chat, shown.message_id, data))
        if step.press == "确认提交":
            self.confirmed.add(who.key)
        return last

    def _answer(self, chat: int, after: int, expected: str) -> ChatMessage | None:
        """The newest bot message after ``after`` that answers the step."""
        for message in reversed(self.api.messages_to(chat)):
            if message.message_id <= after:
                return None
            if expected in (message.text or ""):
                return message
        return None


class TelegramLikeApi(FakeBotApi):
    """The fake Bot API, delivering webhooks as Telegram does: up to the webhook's
    max_connections POSTs at once (40 by default), each chat's updates one after the other in
    order, an update kept queued (and sent again) until it is answered 2xx. The fake's own
    ``deliver`` posts one update at a time, which leaves the service's group commit nothing to
    group and makes the webhook cases twice as long as the polling ones."""

    async def deliver_at_once(self) -> list[int]:
        """POST every queued update; the statuses (0: no connection)."""
        async with self._deliver_lock:
            webhook = self._require_webhook()
            chats: dict[int, list[JsonDict]] = {}
            for update in list(self._updates):
                chats.setdefault(_chat_of(update), []).append(update)
            connections = asyncio.Semaphore(max(webhook.max_connections, 1))
            statuses: list[int] = []

            async def one_chat(updates: list[JsonDict]) -> None:
                for update in updates:
                    async with connections:
                        status = await self._post(webhook, update, webhook.secret_token)
                    statuses.append(status)
                    if not 200 <= status < 300:
                        return  # the chat's later updates wait for this one's redelivery
                    if update in self._updates:
                        self._updates.remove(update)

            await asyncio.gather(*(one_chat(updates) for updates in chats.values()))
            self._wake()
            return statuses


def _chat_of(update: JsonDict) -> int:
    if "message" in update:
        return int(update["message"]["chat"]["id"])
    return int(update["callback_query"]["from"]["id"])


async def pump_webhook(api: TelegramLikeApi) -> None:
    """Deliver queued updates to the webhook again and again, as Telegram does, pausing a
    moment after a failed round (a dead or starting service answers nothing or an error)."""
    while True:
        await api.wait_until(lambda: bool(api.updates), 3600)
        statuses = await api.deliver_at_once()
        if any(not 200 <= status < 300 for status in statuses):
            await asyncio.sleep(0.2)


def duplicates(api: FakeBotApi, chats: list[int]) -> dict[int, list[str]]:
    """Per chat, the bot's texts that arrived more than once (each of them is expected once)."""
    found: dict[int, list[str]] = {}
    for chat in chats:
        seen: dict[str, int] = {}
        for message in api.messages_to(chat):
            seen[message.text or ""] = seen.get(message.text or "", 0) + 1
        twice = [text for text, count in seen.items() for _ in range(count - 1)]
        if twice:
            found[chat] = twice
    return found


def unanswered_messages(api: FakeBotApi, updates: list[JsonDict]) -> list[JsonDict]:
    """Message updates after which the bot wrote nothing in that chat."""
    missing = []
    for update in updates:
        message: dict[str, Any] | None = update.get("message")
        if message is None:
            continue
        chat, mid = message["chat"]["id"], message["message_id"]
        if not any(m.message_id > mid for m in api.messages_to(chat)):
            missing.append(update)
    return missing
