"""The WeCom channel's own duties: URL verification, forged and broken callbacks, retries,
cards updated in place, the app menu, the token, long texts and the per-member limit."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import func, select

from bot.wecom.client import WecomError
from handlers.messages import Address
from handlers.outgoing import Outbox
from scheduler.outbox import OutboxSender
from scheduler.pacing import Limits
from storage.engine import transaction
from storage.enums import Channel
from storage.models import InboxUpdate, OutboxMessage, Ticket
from tests.fakes.wecom_callback import WecomCallbacks
from tests.scenarios.stage import AES_KEY, AGENT_ID, APP_SECRET, CALLBACK_TOKEN, CORP_ID, Stage
from tests.scenarios.wecom_stage import WecomDriver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def driver(wecom_stage: Stage) -> WecomDriver:
    assert isinstance(wecom_stage.driver, WecomDriver)
    return wecom_stage.driver


async def stored(stage: Stage) -> int:
    """How many callbacks the inbox holds."""
    async with transaction(stage.service.runtime.sessions) as session:
        return (await session.exec(select(func.count()).select_from(InboxUpdate))).one()


def texts(driver: WecomDriver, who: str) -> list[str]:
    return [m.text for m in driver.api.messages_to(who)]


async def test_url_verification_answers_the_decrypted_echostr_at_once(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    started = time.perf_counter()
    status, body = await driver.callbacks.verify("echo-4711")
    assert (status, body) == (200, "echo-4711")
    assert time.perf_counter() - started < 1.0
    forged = WecomCallbacks(
        driver.callbacks.url, "another-token", driver.callbacks.aes_key, CORP_ID, AGENT_ID
    )
    try:
        assert (await forged.verify("echo"))[0] == 403
    finally:
        await forged.close()


async def test_a_callback_delivered_three_times_is_handled_once(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    xml = driver.callbacks.text_xml("r1", "/report", "9000000000000000001")
    assert await driver.callbacks.deliver(xml, times=3) == [200, 200, 200]
    await wecom_stage.service.idle()
    assert texts(driver, "r1") == ["报修：请选择故障所属系统："] * 2  # 12 systems: two cards of six
    assert await stored(wecom_stage) == 1
    event = driver.callbacks.click_xml("r1", "my", create_time=1_800_000_000)
    assert await driver.callbacks.deliver(event, times=3) == [200, 200, 200]
    await wecom_stage.service.idle()
    assert len(texts(driver, "r1")) == 3 and await stored(wecom_stage) == 2


async def test_forged_broken_and_oversized_callbacks_are_refused_and_change_nothing(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    callbacks = driver.callbacks
    xml = callbacks.text_xml("r1", "/report", "9000000000000000002")
    assert (await callbacks.post(xml, sign_with="not-the-token"))[0] == 403
    assert (await callbacks.post(xml, corp_id="ww-someone-else"))[0] == 403
    params = {"msg_signature": "x", "timestamp": "1", "nonce": "n"}
    assert (await callbacks.post_raw(b"<xml><Encrypt>", params))[0] == 400
    assert (await callbacks.post_raw(b"not xml at all", params))[0] == 400
    assert (await callbacks.post_raw(b"<xml>" + b"A" * (1 << 20) + b"</xml>", params))[0] == 413
    assert (await callbacks.post_raw(b"<xml/>", {}))[0] == 400
    await wecom_stage.service.idle()
    assert await stored(wecom_stage) == 0 and texts(driver, "r1") == []


async def test_a_report_acknowledged_and_resolved_inside_wecom_updates_the_cards(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    """The whole path on WeCom: menu → wizard cards → engineer's card, each press shown in place."""
    r1, e1 = wecom_stage["r1"], wecom_stage["e1"]
    await driver.deliver(driver.callbacks.click_xml("r1", "report"))
    await driver.press(r1, "计算机网络")
    await driver.press(r1, "NET-CORE-01 核心交换机1")
    await driver.send(r1, "全院断网了，核心交换机红灯")
    await driver.press(r1, "是")
    await driver.press(r1, "确认提交")
    pressed = [m for m in driver.api.messages_to("r1") if m.replaced is not None]
    assert pressed and all(m.replaced == f"{r1.name} 已选择 · 09:00" for m in pressed)
    news = driver.api.messages_to("e1")[-1]
    assert news.text.startswith("新报修\n#1") and [label for label, _ in news.buttons] == ["接单", "改级别"]
    await driver.press(e1, "接单")
    # A WeCom card can be changed once (a response code is good for one update): the pressed
    # card turns into one disabled line and the ticket as it is now comes below it, live.
    assert news.replaced == "已更新 · Updated"
    card = driver.api.messages_to("e1")[-1]
    assert card.replaced is None and card.text.startswith("#1 一级·已接单")
    assert [label for label, _ in card.buttons] == ["到场", "已恢复", "已解决", "改级别", "转派"]
    await driver.press(e1, "到场")  # the new card has a code of its own: replaced again
    assert card.replaced == "已更新 · Updated"
    assert driver.api.messages_to("e1")[-1].text.startswith("#1 一级·已到场")
    live = [m for m in driver.api.messages_to("e1") if m.buttons and m.replaced is None]
    assert len(live) == 1  # one live card
    async with transaction(wecom_stage.service.runtime.sessions) as session:
        ticket = await session.get(Ticket, 1)
        assert ticket is not None and ticket.assignee_id == e1.person_id


async def test_entering_the_app_says_nothing_and_a_stranger_is_welcomed(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    await driver.deliver(driver.callbacks.enter_agent_xml("r1"))
    assert texts(driver, "r1") == [] and await stored(wecom_stage) == 1
    driver.api.user("zhangsan", "张三")
    await driver.deliver(driver.callbacks.text_xml("zhangsan", "你好", "9000000000000000003"))
    assert "您还没有注册" in texts(driver, "zhangsan")[-1]


async def test_an_expired_token_during_a_burst_is_fetched_again_once(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    await driver.send(wecom_stage["r1"], "/help")
    before = driver.api.token_fetches
    driver.api.expire_tokens()
    xmls = [driver.callbacks.text_xml(f"r{n}", "/help", f"91000000000000000{n:02d}") for n in range(1, 21)]
    statuses = await asyncio.gather(*(driver.callbacks.post(xml) for xml in xmls))
    assert [status for status, _ in statuses] == [200] * 20
    await wecom_stage.service.idle()
    assert driver.api.token_fetches == before + 1
    assert all(len(texts(driver, f"r{n}")) == (2 if n == 1 else 1) for n in range(1, 21))


async def test_a_long_text_is_split_within_2048_bytes(wecom_stage: Stage, driver: WecomDriver) -> None:
    lines = [f"第{n}行：机房巡检记录，温度湿度正常，UPS 电池组电压正常。" for n in range(80)]
    async with transaction(wecom_stage.service.runtime.sessions) as session:
        out = Outbox(session, wecom_stage.clock.now())
        out.say(Address(Channel.WECOM, "s1"), "\n".join(lines), (), wecom_stage["s1"].person_id)
        await out.flush()
    await wecom_stage.service.outbox.flush()
    parts = texts(driver, "s1")
    assert len(parts) > 1 and all(len(part.encode()) <= 2048 for part in parts)
    assert "\n".join(parts).splitlines() == lines


async def queue_pings(stage: Stage, who: str, count: int) -> list[str]:
    pings = [f"⚠️ 工单 #{n} 响应已超时" for n in range(count)]
    async with transaction(stage.service.runtime.sessions) as session:
        out = Outbox(session, stage.clock.now())
        for ping in pings:
            out.say(Address(Channel.WECOM, who), ping, (), stage[who].person_id)
        await out.flush()
    return pings


async def test_a_ping_storm_to_one_member_arrives_as_digests_and_nothing_is_dropped(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    pings = await queue_pings(wecom_stage, "s1", 200)
    await wecom_stage.service.outbox.flush()
    got = texts(driver, "s1")
    assert driver.api.dropped == [] and 1 < len(got) <= 30
    assert [line for digest in got for line in digest.split("\n\n")] == pings


async def test_the_fake_drops_what_passes_30_a_minute_so_a_loss_shows(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    """Against a sender that ignores WeCom's limit the fake loses messages silently, as WeCom does."""
    careless = OutboxSender(wecom_stage.service.runtime.sessions, wecom_stage.clock)
    assert wecom_stage.service.wecom is not None
    careless.add(Channel.WECOM, wecom_stage.service.wecom.send, Limits(digest_after=1000))
    await queue_pings(wecom_stage, "s1", 40)
    await careless.flush()
    assert len(texts(driver, "s1")) == 30 and len(driver.api.dropped) == 10
    async with transaction(wecom_stage.service.runtime.sessions) as session:
        sent = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at != None)  # noqa: E711
        assert (await session.exec(sent)).one() == 40  # the API said ok to every one of them


async def menu_command(env: dict[str, str]) -> tuple[int | None, str, str]:
    """Run ``dutydesk wecom menu`` in its own process: exit code, stdout, stderr."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli.main", "wecom", "menu", cwd=ROOT, env=env, stdout=pipe, stderr=pipe
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_the_menu_command_installs_the_three_entries(wecom_stage: Stage, driver: WecomDriver) -> None:
    env = {
        **os.environ,
        "DUTYDESK_DATABASE_URL": "sqlite+aiosqlite:///:memory:",
        "DUTYDESK_WECOM_CORP_ID": CORP_ID,
        "DUTYDESK_WECOM_AGENT_ID": str(AGENT_ID),
        "DUTYDESK_WECOM_SECRET": APP_SECRET,
        "DUTYDESK_WECOM_TOKEN": CALLBACK_TOKEN,
        "DUTYDESK_WECOM_AES_KEY": AES_KEY,
        "DUTYDESK_WECOM_API_URL": driver.api.url,
    }
    code, out, err = await menu_command(env)
    assert code == 0, err
    assert "报修 / 我的工单 / 帮助" in out
    assert [(b["name"], b["key"]) for b in driver.api.menu["button"]] == [
        ("报修", "report"),
        ("我的工单", "my"),
        ("帮助", "help"),
    ]
    code, _, err = await menu_command({**env, "DUTYDESK_WECOM_SECRET": "wrong"})
    assert code == 1 and "refused the menu" in err


async def test_the_client_fetches_a_members_photo_and_names_a_missing_one(
    wecom_stage: Stage, driver: WecomDriver
) -> None:
    assert wecom_stage.service.wecom is not None
    client = wecom_stage.service.wecom.client
    driver.api.media("MEDIA1", b"\xff\xd8jpeg-bytes", "image/jpeg")
    driver.api.expire_tokens()  # the fetch survives a token that expired meanwhile
    assert await client.media("MEDIA1") == (b"\xff\xd8jpeg-bytes", "image/jpeg")
    with pytest.raises(WecomError) as missing:
        await client.media("NOPE")
    assert missing.value.errcode == 40007
