"""Reporters completing the wizard at once through the Telegram webhook, against the fake Bot API.

For each database (SQLite; PostgreSQL with --postgres) N simulated reporters each send the six
updates of a report (报修, subsystem, device, description, yes, confirm), one after the other,
all reporters at once. Measured: updates/s over the whole run, and per update the time from the
POST to our webhook until the bot's answer reaches the fake Bot API (p50/p99). In the same run a
bare python-telegram-bot echo bot, fed the same way by the same fake, is the ceiling.

    .venv/bin/python -m bench.chat_webhook [--reporters 50] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from sqlalchemy import text
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.runtime import Runtime
from bot.service import Service
from handlers.clock import SystemClock
from handlers.directory.assets_import import ASSET_COLUMNS, import_assets
from handlers.directory.tables import read_rows
from handlers.sla.policy import PolicyBook, load_policy
from storage.engine import create_engine, create_session_factory, transaction
from storage.enums import Channel, Role
from storage.migrate import upgrade
from storage.models import Person
from storage.repositories.people import add_membership, link_identity
from storage.repositories.sites import create_site
from tests.fakes.telegram_api import FakeBotApi
from tests.scenarios.stage import SECRET, TOKEN, free_port, settings_for

FIRST_USER = 50_000
DEMO_ASSETS = Path(__file__).resolve().parents[1] / "bot" / "demo" / "assets.csv"


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run_reporters(
    api: FakeBotApi, reporters: int, steps: list[Callable[[int], dict[str, object]]]
) -> tuple[float, list[float]]:
    """All reporters at once, each through its steps; (seconds, latency per update)."""
    latencies: list[float] = []

    async def one(user: int) -> None:
        for step in steps:
            before = len(api.messages_to(user))
            update = step(user)
            started = time.perf_counter()
            status = await api.post_update(update, SECRET)
            assert status == 200, status

            def answered(seen: int = before) -> bool:
                return len(api.messages_to(user)) > seen

            await api.wait_until(answered, 30.0)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(FIRST_USER + n) for n in range(reporters)))
    return time.perf_counter() - started, latencies


def wizard_steps(api: FakeBotApi) -> list[Callable[[int], dict[str, object]]]:
    """The six updates of a report, each built from what the bot last showed the reporter."""

    def press(label: str) -> Callable[[int], dict[str, object]]:
        def build(user: int) -> dict[str, object]:
            message = api.messages_to(user)[-1]
            for row in (message.reply_markup or {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        return api.press(user, message.message_id, button["callback_data"])
            raise AssertionError(f"no button {label!r} in {message.text!r}")

        return build

    return [
        lambda user: api.message(user, "报修"),
        press("计算机网络"),
        press("NET-CORE-01 核心交换机1"),
        lambda user: api.message(user, "全院断网"),
        press("是"),
        press("确认提交"),
    ]


async def seed(runtime: Runtime, reporters: int) -> None:
    """A site, its assets, the reporters and one engineer, all with Telegram accounts."""
    now = runtime.clock.now()
    async with transaction(runtime.sessions) as session:
        site = await create_site(session, "示例法院", "demo", now)
        await import_assets(session, read_rows(DEMO_ASSETS, ASSET_COLUMNS))
        for n in range(reporters + 1):
            person = Person(name=f"人员{n}", created_at=now)
            session.add(person)
            await session.flush()
            role = Role.REPORTER if n < reporters else Role.ENGINEER
            await add_membership(session, person.id or 0, site.id or 0, role)
            await link_identity(session, person.id or 0, Channel.TELEGRAM, str(FIRST_USER + n))


async def dutydesk_run(url: str, schema: str | None, reporters: int) -> tuple[float, list[float]]:
    """The real service on one database."""
    kwargs = {"connect_args": {"server_settings": {"search_path": schema}}} if schema else {}
    engine = create_engine(url, **kwargs)
    await upgrade(engine)
    async with FakeBotApi(TOKEN) as api:
        for n in range(reporters + 1):
            api.user(FIRST_USER + n, f"人员{n}")
        port = free_port()
        settings = settings_for("telegram", port, api)
        runtime = Runtime(
            settings, engine, create_session_factory(engine), PolicyBook(load_policy()), SystemClock()
        )
        await seed(runtime, reporters)
        service = Service(runtime, clockwork=False)
        await service.start()
        try:
            return await run_reporters(api, reporters, wizard_steps(api))
        finally:
            await service.stop()
            await engine.dispose()


async def echo_run(reporters: int) -> tuple[float, list[float]]:
    """The ceiling: a bare PTB echo bot behind a webhook, same fake, same load."""
    async with FakeBotApi(TOKEN) as api:
        for n in range(reporters):
            api.user(FIRST_USER + n, f"人员{n}")
        app: Application = ApplicationBuilder().token(TOKEN).base_url(api.base_url).updater(None).build()  # type: ignore[type-arg]

        async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.effective_chat is not None and update.effective_message is not None
            await update.get_bot().send_message(
                update.effective_chat.id, update.effective_message.text or "ok"
            )

        app.add_handler(MessageHandler(filters.ALL, echo))
        await app.initialize()
        tasks: set[asyncio.Task[None]] = set()

        async def hook(request: web.Request) -> web.Response:
            task = asyncio.create_task(app.process_update(Update.de_json(await request.json(), app.bot)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            return web.Response()

        server = web.Application()
        server.router.add_post("/hook", hook)
        runner = web.AppRunner(server, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await app.bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token=SECRET)
        steps = [lambda user, n=n: api.message(user, f"echo {n}") for n in range(6)]
        try:
            return await run_reporters(api, reporters, steps)  # type: ignore[arg-type]
        finally:
            await runner.cleanup()
            await app.shutdown()


def line(name: str, seconds: float, latencies: list[float], ceiling: float | None) -> str:
    """One result line: rate, latency percentiles and, with a ceiling, the share of it."""
    rate = len(latencies) / seconds
    ratio = f" | {rate / ceiling:5.1%} of echo" if ceiling else ""
    return (
        f"{name:12s} {len(latencies):5d} updates in {seconds:6.2f} s = {rate:7.1f} updates/s | "
        f"p50 {percentile(latencies, 0.5) * 1000:6.1f} ms  "
        f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms{ratio}"
    )


async def main() -> None:
    """Run the echo ceiling, then dutydesk on each database, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reporters", type=int, default=50)
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch schema is created and dropped)")
    args = parser.parse_args()
    seconds, latencies = await echo_run(args.reporters)
    ceiling = len(latencies) / seconds
    print(f"{args.reporters} concurrent reporters, 6 updates each")
    print(line("echo bot", seconds, latencies, None))
    with tempfile.TemporaryDirectory() as tmp:
        print(
            line(
                "sqlite",
                *await dutydesk_run(f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}", None, args.reporters),
                ceiling,
            )
        )
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            print(line("postgresql", *await dutydesk_run(args.postgres, schema, args.reporters), ceiling))
        finally:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
