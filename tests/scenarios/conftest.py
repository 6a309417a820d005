"""Fixtures of the scenario suite: every scenario runs on each channel (web chat, Telegram,
WeCom) and each database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

import bot.demo
from bot.runtime import Runtime
from handlers.clock import ManualClock
from handlers.directory.assets_import import ASSET_COLUMNS, import_assets
from handlers.directory.tables import read_rows
from handlers.sla.policy import PolicyBook, load_policy
from storage.engine import transaction
from storage.enums import Channel, Role
from storage.models import Person
from storage.repositories.people import add_membership, link_identity
from storage.repositories.sites import create_site
from tests.conftest import Database
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import FakeWecomApi
from tests.fakes.wecom_callback import WecomCallbacks
from tests.scenarios import stage as app
from tests.scenarios.stage import (
    TOKEN,
    Actor,
    Driver,
    Stage,
    TelegramDriver,
    WebchatDriver,
    free_port,
    open_service,
    settings_for,
)
from tests.scenarios.wecom_stage import WecomDriver

CHANNELS = ["webchat", "telegram", "wecom"]
REPORTERS = 20
#: key → (name, role); reporters r1..r20 come on top.
STAFF = {
    "e1": ("马骏", Role.ENGINEER),
    "e2": ("何亮", Role.ENGINEER),
    "s1": ("林国栋", Role.SUPERVISOR),
    "m1": ("郭建华", Role.MANAGER),
}


async def seed_cast(database: Database, clock: ManualClock) -> dict[str, Actor]:
    """The demo site with its assets, 20 reporters and the staff, each with two chat accounts."""
    people = {f"r{n}": (f"报修人{n}", Role.REPORTER) for n in range(1, REPORTERS + 1)} | STAFF
    cast: dict[str, Actor] = {}
    async with transaction(database.factory) as session:
        site = await create_site(session, "示例法院", "demo", clock.now())
        await import_assets(
            session, read_rows(Path(bot.demo.__file__).with_name("assets.csv"), ASSET_COLUMNS)
        )
        for number, (key, (name, role)) in enumerate(people.items(), start=1):
            person = Person(name=name, phone=f"1380000{number:04d}", created_at=clock.now())
            session.add(person)
            await session.flush()
            assert person.id is not None and site.id is not None
            await add_membership(session, person.id, site.id, role)
            await link_identity(session, person.id, Channel.TELEGRAM, str(10_000 + number))
            await link_identity(session, person.id, Channel.WEBCHAT, key)
            await link_identity(session, person.id, Channel.WECOM, key)
            cast[key] = Actor(key, name, person.id, 10_000 + number, key)
    return cast


async def open_stage(channel: str, db: Database, clock: ManualClock) -> AsyncIterator[Stage]:
    """A running service on ``channel`` and the test's database, with the cast seeded."""
    cast = await seed_cast(db, clock)
    port = free_port()
    async with AsyncExitStack() as stack:
        api: FakeBotApi | FakeWecomApi | None = None
        if channel == "telegram":
            api = FakeBotApi(TOKEN)
            for actor in cast.values():
                api.user(actor.telegram_id, actor.name)
        elif channel == "wecom":
            api = FakeWecomApi(app.CORP_ID, app.APP_SECRET, app.AGENT_ID)
            for actor in cast.values():
                api.user(actor.webchat_user, actor.name)
        if api is not None:
            await api.start()
            stack.push_async_callback(api.stop)
        runtime = Runtime(
            settings_for(channel, port, api), db.engine, db.factory, PolicyBook(load_policy()), clock
        )
        async for service in open_service(runtime):
            driver: Driver
            if isinstance(api, FakeBotApi):
                driver = TelegramDriver(api, service)
            elif isinstance(api, FakeWecomApi):
                callbacks = WecomCallbacks(
                    f"http://127.0.0.1:{port}/wecom/callback",
                    app.CALLBACK_TOKEN,
                    app.AES_KEY,
                    app.CORP_ID,
                    app.AGENT_ID,
                )
                stack.push_async_callback(callbacks.close)
                driver = WecomDriver(api, callbacks, service)
            else:
                webchat = WebchatDriver(f"http://127.0.0.1:{port}", service)
                stack.push_async_callback(webchat.close)
                driver = webchat
            yield Stage(service, clock, driver, cast)


@pytest.fixture(params=CHANNELS)
async def stage(request: pytest.FixtureRequest, db: Database, clock: ManualClock) -> AsyncIterator[Stage]:
    """A running service on each channel and each database."""
    async for opened in open_stage(request.param, db, clock):
        yield opened


@pytest.fixture
async def webchat(db: Database, clock: ManualClock) -> AsyncIterator[Stage]:
    """A running service on the web chat only (each database)."""
    async for opened in open_stage("webchat", db, clock):
        yield opened


@pytest.fixture
async def telegram(db: Database, clock: ManualClock) -> AsyncIterator[Stage]:
    """A running service on Telegram only (each database)."""
    async for opened in open_stage("telegram", db, clock):
        yield opened


@pytest.fixture
async def wecom_stage(db: Database, clock: ManualClock) -> AsyncIterator[Stage]:
    """A running service on WeCom only (each database)."""
    async for opened in open_stage("wecom", db, clock):
        yield opened
