"""The web chat's HTTP API: bad input is refused, a resent message is handled once."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import func, select

from storage.engine import transaction
from storage.models import InboxUpdate, WebchatMessage
from tests.scenarios.stage import Stage, WebchatDriver


@pytest.fixture
def stage(webchat: Stage) -> Stage:
    """These tests are about the web chat's own API."""
    return webchat


@pytest.fixture
def web(webchat: Stage) -> WebchatDriver:
    """The web chat driver."""
    assert isinstance(webchat.driver, WebchatDriver)
    return webchat.driver


async def rows(stage: Stage, model: type[InboxUpdate] | type[WebchatMessage]) -> int:
    """How many rows a table holds."""
    async with transaction(stage.service.runtime.sessions) as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


@pytest.mark.parametrize(
    "body",
    [
        {"user": "r1"},
        {"user": "r1", "text": "报修", "action": "w:ok"},
        {"user": "r1 x", "text": "报修"},
        {"user": "", "text": "报修"},
        {"user": "r1", "text": 5},
        ["r1", "报修"],
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    stage: Stage, web: WebchatDriver, body: object
) -> None:
    async with web.http.post(f"{web.base}/chat/api/send", json=body) as response:
        assert response.status == 400
        assert (await response.json())["ok"] is False
    async with web.http.post(f"{web.base}/chat/api/send", data=b"{oops") as response:
        assert response.status == 400
    assert await rows(stage, InboxUpdate) == 0 and await rows(stage, WebchatMessage) == 0


async def test_a_resent_message_is_handled_once(stage: Stage, web: WebchatDriver) -> None:
    body = {"user": "r1", "text": "/help", "client_id": "same-id"}
    assert await web.post(body) == 202
    assert await web.post(body) == 202  # the page retries after a network error with the same id
    await stage.service.idle()
    assert len(await web.seen(stage["r1"])) == 1
    assert await rows(stage, InboxUpdate) == 1


async def test_the_long_poll_answers_as_soon_as_the_bot_speaks(stage: Stage, web: WebchatDriver) -> None:
    url = f"{web.base}/chat/api/messages?user=r1&after=0&wait=10"
    started = time.monotonic()
    poll = asyncio.create_task(web.http.get(url))
    await asyncio.sleep(0.2)
    assert await web.post({"user": "r1", "text": "/help", "client_id": "x"}) == 202
    response = await asyncio.wait_for(poll, 5)
    lines = (await response.json())["messages"]
    response.release()
    assert time.monotonic() - started < 3
    assert [line["direction"] for line in lines][:1] == ["in"] and lines[0]["text"] == "/help"
