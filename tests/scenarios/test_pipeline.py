"""The inbound pipeline's own promises: a real error is logged with the update's key and the
person gets an apology; an update whose handling never finished is taken up again by the due
work while the service runs, not only at the next start."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlmodel import select

from handlers.messages import Inbound
from storage.engine import transaction
from storage.enums import Channel
from storage.models import InboxUpdate
from storage.repositories import inbox
from tests.scenarios.stage import Stage


async def test_a_real_error_is_logged_given_up_and_apologised_for(
    webchat: Stage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    router = webchat.service.router
    handle = router.handle

    async def broken(event: Inbound, inbox_key: str | None = None) -> bool:
        if event.text == "坏消息":
            raise ValueError("a bug in a handler")
        return await handle(event, inbox_key)

    monkeypatch.setattr(router, "handle", broken)
    await webchat.driver.send(webchat["r1"], "坏消息")
    assert (await webchat.driver.seen(webchat["r1"]))[
        -1
    ].text == "抱歉，处理您的消息时出错了，请稍后再发一次。"
    async with transaction(webchat.service.runtime.sessions) as session:
        (row,) = (await session.exec(select(InboxUpdate))).all()
    assert row.processed_at is not None and "a bug in a handler" in (row.error or "")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and row.key in errors[0].getMessage()
    await webchat.driver.send(webchat["r1"], "/help")  # the next message is handled as ever
    assert (await webchat.driver.seen(webchat["r1"]))[-1].text.startswith("报修：")


async def test_an_update_left_unfinished_is_taken_up_by_the_due_work(webchat: Stage) -> None:
    now = webchat.clock.now()
    async with transaction(webchat.service.runtime.sessions) as session:  # another process died on it
        payload = {"user": "r1", "text": "/help", "client_id": "lost"}
        await inbox.store(session, Channel.WEBCHAT, "r1:lost", payload, now, now + timedelta(seconds=30))
    await webchat.service.sweep()
    assert await webchat.driver.seen(webchat["r1"]) == []  # not due yet: its handler may be alive
    webchat.clock.advance(timedelta(seconds=31))
    await webchat.service.sweep()
    assert (await webchat.driver.seen(webchat["r1"]))[-1].text.startswith("报修：")
    async with transaction(webchat.service.runtime.sessions) as session:
        assert (await session.exec(select(InboxUpdate))).one().processed_at is not None
