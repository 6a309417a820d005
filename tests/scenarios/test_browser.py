"""The web chat in a real browser: three people side by side work a fault from report to resolved."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from storage.engine import transaction
from storage.models import Ticket
from tests.browser import Browser, require_chromium
from tests.scenarios.stage import Stage, WebchatDriver

REPORTER, ENGINEER, SUPERVISOR = 0, 1, 2


@pytest.fixture(autouse=True)
def needs_chromium() -> None:
    """This test drives a real browser."""
    require_chromium()


async def test_report_acknowledge_and_resolve_on_screen(webchat: Stage, tmp_path: Path) -> None:
    assert isinstance(webchat.driver, WebchatDriver)
    async with Browser() as browser:
        await browser.open(f"{webchat.driver.base}/chat")
        await browser.pick(REPORTER, "报修人1")
        await browser.pick(ENGINEER, "马骏")
        await browser.pick(SUPERVISOR, "林国栋")

        await browser.press(REPORTER, "报修")
        await browser.press(REPORTER, "计算机网络")
        await browser.press(REPORTER, "NET-CORE-01 核心交换机1")
        await browser.type(REPORTER, "全院断网了")
        await browser.press(REPORTER, "是")
        await browser.wait_text(REPORTER, "一级 · 10分钟内响应 · 4小时内恢复 · 12小时内解决")
        await browser.press(REPORTER, "确认提交")
        await browser.wait_text(REPORTER, "已提交工单 #1（一级）")

        await browser.wait_text(ENGINEER, "新报修")
        await browser.wait_text(SUPERVISOR, "新报修")
        await browser.press(ENGINEER, "接单")
        await browser.wait_text(REPORTER, "马骏 已接单")
        await browser.wait_text(SUPERVISOR, "马骏 已接单")
        await browser.press(ENGINEER, "到场")
        await browser.wait_text(REPORTER, "马骏 已到场")
        await browser.press(ENGINEER, "已恢复")
        await browser.wait_text(REPORTER, "马骏：业务已恢复")
        await browser.press(ENGINEER, "已解决")
        await browser.wait_text(REPORTER, "马骏：故障已解决")
        await browser.wait_text(ENGINEER, "1/3 故障原因：")
        await browser.screenshot(tmp_path / "resolved.png")

    async with transaction(webchat.service.runtime.sessions) as session:
        ticket = (await session.exec(select(Ticket))).one()
    assert (ticket.status, ticket.level, ticket.assignee_id) == ("resolved", 1, webchat["e1"].person_id)
    assert ticket.arrived_at is not None and ticket.restored_at is not None
