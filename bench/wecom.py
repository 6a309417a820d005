"""WeCom: how fast the callback answers under load, and a ping storm against the per-member limit.

(a) Callback answer latency: 200 members each send one encrypted, signed text callback (built
    with wechatpy before the clock starts), all at once, to the real service's /wecom/callback
    (SQLite; PostgreSQL with --postgres). Measured per callback: POST to the HTTP answer
    (check, decrypt, store, answer; the handling runs after). Baseline in the same run: a bare
    aiohttp endpoint that only checks and decrypts with wechatpy. Goal p99 < 50 ms (WeCom
    waits 5 s). Also the time until every member had the bot's answer in the fake API.
(b) Ping storm: 200 (--pings) escalation pings to one supervisor, queued one by one over
    --storm seconds (default 60) as the sweep would (each an outbox row written through
    handlers.outgoing.Outbox in its own transaction, then handed to the service's port,
    Service.wake, after the commit), delivered by the service's outbox through the fake WeCom
    API, which silently drops what passes 30 per minute per member. Rows held back for the
    per-member limit are due rows: the service's clockwork wakes at their time (nothing polls;
    the due-work runs it took are printed). Goal: 0 dropped, every ping delivered (in digests).

    .venv/bin/python -m bench.wecom [--members 200] [--storm 60] [--pings 200]
                                    [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bench.chat_webhook import DEMO_ASSETS, percentile
from bot.runtime import Runtime
from bot.service import BACKLOG, Service
from bot.wecom.callback import CallbackCrypto, Rejected
from handlers.clock import SystemClock
from handlers.directory.assets_import import ASSET_COLUMNS, import_assets
from handlers.directory.tables import read_rows
from handlers.messages import Address
from handlers.outgoing import Outbox
from handlers.sla.policy import PolicyBook, load_policy
from storage.due import wake_after
from storage.engine import create_engine, create_session_factory, transaction
from storage.enums import Channel, Role
from storage.migrate import upgrade
from storage.models import Person
from storage.repositories.people import add_membership, link_identity
from storage.repositories.sites import create_site
from tests.fakes.wecom_api import FakeWecomApi
from tests.fakes.wecom_callback import WecomCallbacks
from tests.scenarios.stage import (
    AES_KEY,
    AGENT_ID,
    APP_SECRET,
    CALLBACK_TOKEN,
    CORP_ID,
    free_port,
    settings_for,
)

SUPERVISOR = "boss"


def ms(values: list[float]) -> str:
    """p50 / p99 / max in milliseconds."""
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return f"p50 {p50 * 1000:6.1f} | p99 {p99 * 1000:6.1f} | max {max(values) * 1000:6.1f} ms"


async def fire(url: str, bodies: list[tuple[bytes, dict[str, str]]]) -> list[float]:
    """POST every prepared callback at once from another process (so the load does not share
    the service's event loop); the answer time of each (all must be 200)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump([[base64.b64encode(body).decode(), params] for body, params in bodies], out)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.wecom", "--fire", url, out.name, stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await proc.communicate()
    finally:
        os.unlink(out.name)
    assert proc.returncode == 0, stdout
    return [float(value) for value in json.loads(stdout)]


async def fire_here(url: str, path: str) -> None:
    """The child: read the prepared callbacks, POST them all at once, print the times (JSON)."""
    raw = await asyncio.to_thread(Path(path).read_text)
    prepared_bodies = [(base64.b64decode(body), params) for body, params in json.loads(raw)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(body: bytes, params: dict[str, str]) -> float:
            start = time.perf_counter()
            async with http.post(url, data=body, params=params) as response:
                await response.read()
                assert response.status == 200, response.status
            return time.perf_counter() - start

        print(json.dumps(await asyncio.gather(*(one(body, params) for body, params in prepared_bodies))))


def prepared(callbacks: WecomCallbacks, members: int) -> list[tuple[bytes, dict[str, str]]]:
    """One encrypted text callback per member, ready to send."""
    return [
        callbacks.encrypt(callbacks.text_xml(f"m{n}", "/help", 8_000_000_000_000_000_000 + n))
        for n in range(members)
    ]


async def baseline(members: int) -> list[float]:
    """A bare endpoint that checks and decrypts with wechatpy, then answers."""
    crypto = CallbackCrypto(CALLBACK_TOKEN, AES_KEY, CORP_ID)

    async def handle(request: web.Request) -> web.Response:
        try:
            crypto.open(dict(request.query), await request.read())
        except Rejected as rejected:
            return web.Response(status=rejected.status)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/cb", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=BACKLOG).start()
    url = f"http://127.0.0.1:{port}/cb"
    callbacks = WecomCallbacks(url, CALLBACK_TOKEN, AES_KEY, CORP_ID, AGENT_ID)
    try:
        return await fire(url, prepared(callbacks, members))
    finally:
        await callbacks.close()
        await runner.cleanup()


async def seed(runtime: Runtime, members: int) -> None:
    """A site with its assets, the members as reporters and one supervisor, all on WeCom."""
    now = runtime.clock.now()
    async with transaction(runtime.sessions) as session:
        site = await create_site(session, "示例法院", "demo", now)
        await import_assets(session, read_rows(DEMO_ASSETS, ASSET_COLUMNS))
        people = [(f"m{n}", Role.REPORTER) for n in range(members)] + [(SUPERVISOR, Role.SUPERVISOR)]
        for userid, role in people:
            person = Person(name=userid, created_at=now)
            session.add(person)
            await session.flush()
            await add_membership(session, person.id or 0, site.id or 0, role)
            await link_identity(session, person.id or 0, Channel.WECOM, userid)


async def storm(service: Service, api: FakeWecomApi, seconds: float, count: int) -> str:
    """``count`` pings to the supervisor over ``seconds``; what the fake delivered and dropped."""
    runtime = service.runtime
    async with transaction(runtime.sessions) as session:
        boss = (await session.exec(select(Person.id).where(Person.name == SUPERVISOR))).one()
    runs_before = service.clockwork.runs
    started = time.perf_counter()
    pings = [f"⚠️ 工单 #{n} 响应已超时，截止时间 12-01 09:10" for n in range(count)]
    for ping in pings:
        async with transaction(runtime.sessions) as session:
            out = Outbox(session, runtime.clock.now())
            out.say(Address(Channel.WECOM, SUPERVISOR), ping, (), boss)
            await out.flush()
        wake_after(session, service.wake)  # what the sweep does after its commit
        await asyncio.sleep(seconds / count)

    def lines() -> list[str]:
        return [line for m in api.messages_to(SUPERVISOR) for line in m.text.split("\n\n")]

    with contextlib.suppress(TimeoutError):  # what never came shows in the figures
        await api.wait_until(lambda: len(lines()) >= count, seconds + 120)
    took = time.perf_counter() - started
    got = lines()
    return (
        f"storm: {count} pings over {seconds:.0f} s → {len(api.messages_to(SUPERVISOR))} messages, "
        f"{len(api.dropped)} dropped by the fake, {len(set(got) & set(pings))}/{count} pings delivered, "
        f"{len(got) - len(set(got))} twice, last after {took:.1f} s, "
        f"{service.clockwork.runs - runs_before} clockwork runs"
    )


async def dutydesk_run(
    name: str, engine: AsyncEngine, members: int, storm_seconds: float | None, pings: int = 200
) -> None:
    """The real service on one database: callback latencies, then (optionally) the storm."""
    await upgrade(engine)
    async with FakeWecomApi(CORP_ID, APP_SECRET, AGENT_ID) as api:
        for n in range(members):
            api.user(f"m{n}", f"m{n}")
        api.user(SUPERVISOR, SUPERVISOR)
        port = free_port()
        runtime = Runtime(
            settings_for("wecom", port, api),
            engine,
            create_session_factory(engine),
            PolicyBook(load_policy()),
            SystemClock(),
        )
        await seed(runtime, members)
        service = Service(runtime)
        await service.start()
        url = f"http://127.0.0.1:{port}/wecom/callback"
        callbacks = WecomCallbacks(url, CALLBACK_TOKEN, AES_KEY, CORP_ID, AGENT_ID)
        try:
            bodies = prepared(callbacks, members)
            start = time.perf_counter()
            latencies = await fire(url, bodies)
            await api.wait_until(lambda: all(api.messages_to(f"m{n}") for n in range(members)), 120)
            answered = time.perf_counter() - start
            print(f"{name:10} callbacks: {ms(latencies)} | every member answered after {answered:.2f} s")
            if storm_seconds is not None:
                print(f"{name:10} {await storm(service, api, storm_seconds, pings)}")
        finally:
            await callbacks.close()
            await service.stop()
            await engine.dispose()


async def main() -> None:
    """Baseline, then the service on SQLite (with the storm) and on PostgreSQL."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--storm", type=float, default=60.0, help="seconds over which the pings come")
    parser.add_argument("--pings", type=int, default=200, help="pings in the storm (default 200)")
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch schema is created and dropped)")
    parser.add_argument("--fire", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fire:
        await fire_here(*args.fire)
        return
    print(f"{args.members} concurrent encrypted callbacks")
    print(f"{'baseline':10} callbacks: {ms(await baseline(args.members))} (check + decrypt only)")
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}")
        await dutydesk_run("sqlite", engine, args.members, args.storm, args.pings)
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            engine = create_engine(args.postgres, connect_args={"server_settings": {"search_path": schema}})
            await dutydesk_run("postgresql", engine, args.members, None)
        finally:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
