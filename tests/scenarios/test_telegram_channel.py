"""The Telegram channel's own duties: the webhook's secret, dedup, polling, commands, recovery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from sqlmodel import col, func, select

from bot.runtime import Runtime
from bot.service import Service
from bot.settings import Settings
from handlers.clock import ManualClock
from handlers.sla.policy import PolicyBook, load_policy
from storage.engine import transaction
from storage.enums import Channel
from storage.models import Attachment, Conversation, InboxUpdate, Ticket, TicketEvent
from storage.repositories import inbox
from tests.conftest import Database
from tests.fakes.telegram_api import FakeBotApi
from tests.scenarios.conftest import seed_cast
from tests.scenarios.stage import SECRET, TOKEN, Actor, free_port, settings_for

HOOK = "/telegram/webhook"


@dataclass
class Bench:
    """A service on Telegram with the fake Bot API and the cast."""

    api: FakeBotApi
    service: Service
    port: int
    cast: dict[str, Actor]

    async def post(self, body: bytes | dict[str, object], secret: str | None = SECRET) -> int:
        """POST to our webhook as anyone could."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        url = f"http://127.0.0.1:{self.port}{HOOK}"
        async with aiohttp.ClientSession() as client:
            kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
            async with client.post(url, headers=headers, **kwargs) as response:
                return response.status

    async def stored(self) -> int:
        """How many updates the inbox holds."""
        async with transaction(self.service.runtime.sessions) as session:
            return (await session.exec(select(func.count()).select_from(InboxUpdate))).one()


async def start_bench(db: Database, clock: ManualClock, settings: Settings) -> Service:
    """A started service (no ticker) on the test's database."""
    runtime = Runtime(settings, db.engine, db.factory, PolicyBook(load_policy()), clock)
    service = Service(runtime, clockwork=False)
    await service.start()
    return service


@pytest.fixture
async def bench(db: Database, clock: ManualClock) -> AsyncIterator[Bench]:
    cast = await seed_cast(db, clock)
    port = free_port()
    async with FakeBotApi(TOKEN) as api:
        for actor in cast.values():
            api.user(actor.telegram_id, actor.name)
        service = await start_bench(db, clock, settings_for("telegram", port, api))
        try:
            yield Bench(api, service, port, cast)
        finally:
            await service.stop()


async def test_start_registers_commands_in_both_languages_and_the_webhook(bench: Bench) -> None:
    commands = bench.api.commands
    assert commands[""][0] == ("report", "报修") and commands["zh"] == commands[""]
    assert commands["en"][0] == ("report", "Report a fault")
    assert bench.api.webhook is not None
    assert (bench.api.webhook.url, bench.api.webhook.secret_token) == (
        f"http://127.0.0.1:{bench.port}{HOOK}",
        SECRET,
    )


@pytest.mark.parametrize("secret", [None, "wrong", SECRET + "x", ""])
async def test_a_forged_webhook_is_refused_and_nothing_is_stored(bench: Bench, secret: str | None) -> None:
    update = bench.api.message(bench.cast["r1"].telegram_id, "报修")
    assert await bench.post(update, secret) == 403
    assert await bench.stored() == 0
    await bench.service.idle()
    assert bench.api.messages_to(bench.cast["r1"].telegram_id) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"message": {}}', b'{"update_id": "7"}'])
async def test_a_malformed_update_is_refused(bench: Bench, body: bytes) -> None:
    assert await bench.post(body) == 400
    assert await bench.stored() == 0


async def test_the_same_update_twice_is_handled_once(bench: Bench) -> None:
    r1 = bench.cast["r1"].telegram_id
    update = bench.api.message(r1, "/help")
    assert await bench.post(update) == 200
    await bench.service.idle()
    assert await bench.post(update) == 200  # Telegram redelivers when it missed our answer
    await bench.service.idle()
    assert len(bench.api.messages_to(r1)) == 1
    assert await bench.stored() == 1


async def test_a_button_press_is_answered(bench: Bench) -> None:
    r1 = bench.cast["r1"].telegram_id
    bench.api.message(r1, "报修")
    await bench.api.deliver()
    await bench.service.idle()
    menu = bench.api.messages_to(r1)[-1]
    bench.api.press(r1, menu.message_id, "rb:4")
    await bench.api.deliver()
    await bench.service.idle()
    assert len(bench.api.answered_callbacks) == 1
    assert bench.api.messages_to(r1)[-1].text == "请选择设备，或直接输入设备名称/位置："


async def test_an_update_stored_before_a_crash_is_handled_at_start(db: Database, clock: ManualClock) -> None:
    cast = await seed_cast(db, clock)
    r1 = cast["r1"].telegram_id
    async with FakeBotApi(TOKEN) as api:
        api.user(r1, "报修人1")
        update = api.message(r1, "/my")
        async with transaction(db.factory) as session:  # stored, then the process died
            await inbox.store(session, Channel.TELEGRAM, str(update["update_id"]), update, clock.now())
        port = free_port()
        service = await start_bench(db, clock, settings_for("telegram", port, api))
        try:
            await service.idle()
            assert [m.text for m in api.messages_to(r1)] == ["您没有未关闭的工单。"]
        finally:
            await service.stop()


async def test_polling_mode(db: Database, clock: ManualClock) -> None:
    cast = await seed_cast(db, clock)
    r1 = cast["r1"].telegram_id
    async with FakeBotApi(TOKEN) as api:
        api.user(r1, "报修人1")
        settings = Settings(http_port=free_port(), telegram_token=TOKEN, telegram_api_url=api.url)
        service = await start_bench(db, clock, settings)
        try:
            assert api.webhook is None
            api.message(r1, "/help")
            await api.wait_until(lambda: len(api.messages_to(r1)) == 1, 10.0)
            assert (api.messages_to(r1)[0].text or "").startswith("报修：")
        finally:
            await service.stop()


async def test_photos_and_voice_notes_are_kept_with_the_ticket(bench: Bench) -> None:
    r1 = bench.cast["r1"].telegram_id

    async def say(
        text: str | None = None, photo_file_id: str | None = None, voice_file_id: str | None = None
    ) -> None:
        bench.api.message(r1, text, photo_file_id, voice_file_id)
        await bench.api.deliver()
        await bench.service.idle()

    async def tap(data: str) -> None:
        bench.api.press(r1, bench.api.messages_to(r1)[-1].message_id, data)
        await bench.api.deliver()
        await bench.service.idle()

    await say(text="/start asset_SRV-CASE-01")
    await say(photo_file_id="photo-of-the-screen")
    assert bench.api.messages_to(r1)[-1].text == "已收到附件，请再用文字描述一下故障。"
    await say(voice_file_id="voice-note")
    await say(text="蓝屏了")
    await tap("yn:1")
    await tap("ok:1")
    async with transaction(bench.service.runtime.sessions) as session:
        files = (await session.exec(select(Attachment).order_by(col(Attachment.id)))).all()
    assert [(f.kind, f.location, f.ticket_id) for f in files] == [
        ("photo", "telegram:photo-of-the-screen", 1),
        ("voice", "telegram:voice-note", 1),
    ]


async def test_the_clocks_count_from_when_the_reporter_wrote_not_when_it_was_handled(bench: Bench) -> None:
    """A report whose first message waited three minutes in a backlog: its clocks start when it
    was sent (Telegram's date), and the timeline keeps when it came in too."""
    r1 = bench.cast["r1"].telegram_id
    clock = bench.service.runtime.clock
    sent = clock.now() - timedelta(minutes=3)
    update = bench.api.message(r1, "报修")
    update["message"]["date"] = int(sent.timestamp())
    assert await bench.post(update) == 200
    await bench.service.idle()
    for data in ("rb:4",):
        bench.api.press(r1, bench.api.messages_to(r1)[-1].message_id, data)
        await bench.api.deliver()
        await bench.service.idle()
    bench.api.message(r1, "三楼机房")
    bench.api.message(r1, "全院断网")
    await bench.api.deliver()
    await bench.service.idle()
    for data in ("yn:1", "ok:1"):
        bench.api.press(r1, bench.api.messages_to(r1)[-1].message_id, data)
        await bench.api.deliver()
        await bench.service.idle()
    async with transaction(bench.service.runtime.sessions) as session:
        ticket = (await session.exec(select(Ticket))).one()
        reported = (await session.exec(select(TicketEvent).where(TicketEvent.kind == "report"))).one()
    assert ticket.reported_at == sent.replace(microsecond=0)
    assert reported.detail == {"received_at": clock.now().isoformat()}
    # A date from the future (a wrong phone clock) is taken as the moment it arrived.
    update = bench.api.message(bench.cast["r2"].telegram_id, "报修")
    update["message"]["date"] = int((clock.now() + timedelta(hours=1)).timestamp())
    assert await bench.post(update) == 200
    await bench.service.idle()
    async with transaction(bench.service.runtime.sessions) as session:
        conversation = (await session.exec(select(Conversation).where(Conversation.dialog == "report"))).one()
    assert conversation.started_at == clock.now()
