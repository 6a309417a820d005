"""The outbox against the fake Bot API: 429s, 5xx, slow answers, refusals, restarts, digests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from handlers.messages import Address, Button
from handlers.outgoing import Outbox
from scheduler.outbox import MAX_ATTEMPTS, OutboxSender
from scheduler.pacing import Limits
from storage.engine import transaction
from storage.enums import Channel
from storage.models import OutboxMessage
from tests.fakes.telegram_api import FakeBotApi
from tests.scenarios.stage import Stage, TelegramDriver
from tests.scenarios.wecom_stage import WecomDriver


@pytest.fixture
def api(telegram: Stage) -> FakeBotApi:
    assert isinstance(telegram.driver, TelegramDriver)
    return telegram.driver.api


async def queue(stage: Stage, who: str, *texts: str) -> None:
    """Messages to one person, queued as the handlers queue them."""
    actor = stage[who]
    async with transaction(stage.service.runtime.sessions) as session:
        out = Outbox(session, stage.clock.now())
        for message in texts:
            out.say(Address(Channel.TELEGRAM, str(actor.telegram_id)), message, (), actor.person_id)
        await out.flush()


async def rows(stage: Stage) -> list[OutboxMessage]:
    async with transaction(stage.service.runtime.sessions) as session:
        return list((await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


def texts_to(api: FakeBotApi, stage: Stage, who: str) -> list[str]:
    return [m.text or "" for m in api.messages_to(stage[who].telegram_id)]


async def test_a_429_waits_retry_after_and_sends_once(telegram: Stage, api: FakeBotApi) -> None:
    api.fail_next("sendMessage", 429, retry_after=3)
    await queue(telegram, "r1", "第一条")
    outbox = telegram.service.outbox
    await outbox.flush()
    assert texts_to(api, telegram, "r1") == []
    (row,) = await rows(telegram)
    assert (row.sent_at, row.attempts, row.not_before) == (
        None,
        1,
        telegram.clock.now() + timedelta(seconds=3),
    )
    telegram.clock.advance(timedelta(seconds=2))
    await outbox.flush()
    assert texts_to(api, telegram, "r1") == []  # not before retry_after
    telegram.clock.advance(timedelta(seconds=1))
    await outbox.flush()
    assert texts_to(api, telegram, "r1") == ["第一条"]
    await outbox.flush()
    assert texts_to(api, telegram, "r1") == ["第一条"]


async def test_server_errors_and_slow_answers_are_retried_and_nothing_is_lost(
    telegram: Stage, api: FakeBotApi
) -> None:
    api.fail_next("sendMessage", 500, times=2)
    api.delay_next("sendMessage", 0.5, times=3)
    await queue(telegram, "r1", "甲")
    await queue(telegram, "r2", "乙")
    await queue(telegram, "r3", "丙")
    outbox = telegram.service.outbox
    for _ in range(6):
        await outbox.flush()
        telegram.clock.advance(timedelta(minutes=1))
    assert (texts_to(api, telegram, "r1"), texts_to(api, telegram, "r2"), texts_to(api, telegram, "r3")) == (
        ["甲"],
        ["乙"],
        ["丙"],
    )
    assert all(row.sent_at is not None for row in await rows(telegram))


async def test_a_blocked_person_is_reported_to_the_supervisor(telegram: Stage, api: FakeBotApi) -> None:
    api.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    await queue(telegram, "r1", "工单更新")
    await telegram.service.outbox.flush()
    await telegram.service.outbox.drain()
    failed = (await rows(telegram))[0]
    assert failed.failed_at is not None and "blocked" in (failed.error or "")
    assert texts_to(api, telegram, "s1") == [
        "❗ 无法给报修人1发送消息（Forbidden: bot was blocked by the user），请电话联系。"
    ]
    await telegram.service.outbox.flush()
    assert texts_to(api, telegram, "r1") == []  # a refused message is not tried again


async def test_a_restart_sends_what_was_pending_once(telegram: Stage, api: FakeBotApi) -> None:
    await queue(telegram, "r1", "一", "二")
    first = telegram.service.outbox
    await first.flush()
    assert texts_to(api, telegram, "r1") == ["一", "二"]
    await queue(telegram, "r2", "三")
    # A new process (after a crash) with its own sender: only the pending row goes out.
    second = OutboxSender(telegram.service.runtime.sessions, telegram.clock)
    assert telegram.service.telegram is not None
    second.add(Channel.TELEGRAM, telegram.service.telegram.send, Limits())
    await second.flush()
    assert texts_to(api, telegram, "r1") == ["一", "二"] and texts_to(api, telegram, "r2") == ["三"]


async def test_a_burst_to_one_person_becomes_a_digest(telegram: Stage, api: FakeBotApi) -> None:
    await queue(telegram, "s1", *[f"提醒 {n}" for n in range(10)])
    await telegram.service.outbox.flush()
    (digest,) = texts_to(api, telegram, "s1")
    assert [f"提醒 {n}" for n in range(10)] == digest.split("\n\n")
    assert all(row.sent_at is not None for row in await rows(telegram))


async def test_a_per_minute_budget_defers_the_rest_as_one_digest(telegram: Stage, api: FakeBotApi) -> None:
    sender = OutboxSender(telegram.service.runtime.sessions, telegram.clock)
    assert telegram.service.telegram is not None
    sender.add(Channel.TELEGRAM, telegram.service.telegram.send, Limits(chat_per_minute=2, digest_after=100))
    for n in range(5):
        await queue(telegram, "s1", f"第{n}条")
        await sender.flush()
    seen = texts_to(api, telegram, "s1")
    assert seen == ["第0条", "第1条"]  # the budget is spent; nothing dropped, nothing sent early
    pending = [r for r in await rows(telegram) if r.sent_at is None]
    assert len(pending) == 3 and all(r.not_before > telegram.clock.now() for r in pending)


async def queue_cards(
    stage: Stage, who: str, count: int, per_card: int, channel: Channel = Channel.TELEGRAM
) -> set[str]:
    """``count`` messages to one person with ``per_card`` buttons each, as new-report cards are;
    the button codes queued."""
    actor = stage[who]
    chat = str(actor.telegram_id) if channel is Channel.TELEGRAM else actor.webchat_user
    codes: set[str] = set()
    async with transaction(stage.service.runtime.sessions) as session:
        out = Outbox(session, stage.clock.now())
        for n in range(count):
            row = tuple(Button(f"按钮{n}-{k}", f"t:{n}:sl:{k}") for k in range(per_card))
            codes |= {b.action for b in row}
            out.say(Address(channel, chat), f"新报修 #{n}", (row,), actor.person_id)
        await out.flush()
    return codes


async def test_a_digest_past_telegrams_button_limit_is_split_and_every_button_arrives(
    telegram: Stage, api: FakeBotApi
) -> None:
    """40 cards of 4 buttons to one engineer: 160 buttons, more than one message may carry (100)."""
    codes = await queue_cards(telegram, "e1", 40, 4)
    await telegram.service.outbox.flush()
    messages = api.messages_to(telegram["e1"].telegram_id)
    keyboards = [
        [b for row in (m.reply_markup or {}).get("inline_keyboard", []) for b in row] for m in messages
    ]
    assert 1 < len(messages) < 40 and all(len(k) <= 100 for k in keyboards)  # digests, each within the limit
    assert {b["callback_data"] for k in keyboards for b in k} == codes  # every button kept
    assert not [c for c in api.calls_to("sendMessage") if c.status != 200]  # nothing refused
    assert all(row.sent_at is not None and row.failed_at is None for row in await rows(telegram))


async def test_a_wecom_digest_keeps_within_six_buttons_a_card(wecom_stage: Stage) -> None:
    driver = wecom_stage.driver
    assert isinstance(driver, WecomDriver)
    codes = await queue_cards(wecom_stage, "s1", 12, 2, Channel.WECOM)
    await wecom_stage.service.outbox.flush()
    delivered = driver.api.messages_to("s1")
    assert all(len(d.buttons) <= 6 for d in delivered) and len(delivered) < 12
    assert {key for d in delivered for _, key in d.buttons} == codes and driver.api.dropped == []


async def test_a_slow_chat_holds_up_no_other(telegram: Stage, api: FakeBotApi) -> None:
    """A send to r1 that hangs (then fails) does not keep r2..r6 waiting; r1 gets it later, once."""
    outbox = telegram.service.outbox
    api.fail_next("sendMessage", 500, delay=60.0)  # r1's send hangs (until released), then fails
    await queue(telegram, "r1", "给报修人1")  # queued first: its send is the first one
    others = [f"r{n}" for n in range(2, 7)]
    for who in others:
        await queue(telegram, who, f"给{who}")
    outbox.kick()
    await api.wait_until(lambda: all(texts_to(api, telegram, who) for who in others), within=10.0)
    first = (await rows(telegram))[0]
    assert first.chat_id == str(telegram["r1"].telegram_id)
    assert (first.sent_at, first.attempts) == (None, 0)  # r1's send had not even timed out yet
    api.release_delays()
    await outbox.drain()
    telegram.clock.advance(timedelta(minutes=1))  # its back-off
    await outbox.flush()
    assert texts_to(api, telegram, "r1") == ["给报修人1"]


async def test_a_message_that_keeps_failing_is_given_up_and_the_supervisor_told(
    telegram: Stage, api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.fail_next("sendMessage", 502, times=MAX_ATTEMPTS)
    await queue(telegram, "r1", "工单更新")
    outbox = telegram.service.outbox
    for _ in range(MAX_ATTEMPTS):
        await outbox.flush()
        telegram.clock.advance(timedelta(minutes=10))  # past every back-off
    failed = (await rows(telegram))[0]
    assert (failed.sent_at, failed.attempts) == (None, MAX_ATTEMPTS) and failed.failed_at is not None
    await outbox.flush()
    assert texts_to(api, telegram, "r1") == []  # given up: not tried again
    told = texts_to(api, telegram, "s1")
    assert len(told) == 1 and told[0].startswith("❗ 无法给报修人1发送消息")
    assert any("giving up rows" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
