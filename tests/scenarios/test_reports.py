"""Reporting faults of each level, start to finish, as the people involved see it."""

from __future__ import annotations

from sqlmodel import select

from storage.engine import transaction
from storage.models import Deadline, FaultReport, Ticket
from tests.scenarios.stage import Stage

OUTAGE = "全院断网了，核心交换机红灯"
FAULT_REPORT = ("核心交换机电源模块故障", "更换电源模块", "建议配置冗余电源")


async def report(stage: Stage, who: str, *answers: str, description: str = OUTAGE) -> None:
    """Walk the wizard: 报修 → 计算机网络 → the core switch → description → answers → 确认提交."""
    d, person = stage.driver, stage[who]
    await d.send(person, "报修")
    await d.press(person, "计算机网络")
    await d.press(person, "NET-CORE-01 核心交换机1")
    await d.send(person, description)
    for answer in answers:
        await d.press(person, answer)
    await d.press(person, "确认提交")


async def tickets(stage: Stage) -> list[Ticket]:
    """The stored tickets, oldest first."""
    async with transaction(stage.service.runtime.sessions) as session:
        return list((await session.exec(select(Ticket).order_by(Ticket.id))).all())  # type: ignore[arg-type]


async def test_a_level_one_report_is_worked_to_closed(stage: Stage) -> None:
    d = stage.driver
    await report(stage, "r1", "是")
    reporter_saw = await d.seen(stage["r1"])
    assert "一级 · 10分钟内响应 · 4小时内恢复 · 12小时内解决" in reporter_saw[-2].text
    assert reporter_saw[-1].text.startswith("已提交工单 #1（一级）")
    assert await d.seen(stage["e2"]) == []  # 09:00 on a working day: the on-site engineer is on call
    for who in ("e1", "s1"):
        news = (await d.seen(stage[who]))[-1]
        assert news.text.startswith("新报修\n#1 一级·待接单") and "NET-CORE-01" in news.text
    assert (await d.seen(stage["e1"]))[-1].labels == ("接单", "改级别")
    assert await d.seen(stage["m1"]) == [] and await d.seen(stage["r2"]) == []

    stage.clock.advance_minutes(4)
    await d.press(stage["e1"], "接单")
    assert (await d.seen(stage["r1"]))[-1].text.startswith("马骏 已接单")
    assert (await d.seen(stage["s1"]))[-1].text.startswith("马骏 已接单")
    for step in ("到场", "已恢复", "已解决"):
        stage.clock.advance_minutes(30)
        await d.press(stage["e1"], step)
    assert (await d.seen(stage["e1"]))[-1].text.endswith("1/3 故障原因：")
    for answer in FAULT_REPORT:
        await d.send(stage["e1"], answer)
    assert (await d.seen(stage["e1"]))[-1].text == "故障处理报告已保存（工单 #1）。"
    resolved = (await d.seen(stage["r1"]))[-1]
    assert resolved.text.startswith("马骏：故障已解决") and resolved.labels == ("确认关闭",)
    await d.press(stage["r1"], "确认关闭")

    (ticket,) = await tickets(stage)
    assert (ticket.status, ticket.level, ticket.level_confirmed, ticket.assignee_id) == (
        "closed",
        1,
        True,
        stage["e1"].person_id,
    )
    async with transaction(stage.service.runtime.sessions) as session:
        deadlines = (await session.exec(select(Deadline).where(Deadline.ticket_id == ticket.id))).all()
        fault = (await session.exec(select(FaultReport))).one()
    assert {row.clock: row.met_at is not None and row.breached_at is None for row in deadlines} == {
        "response": True,
        "restore": True,
        "resolve": True,
    }
    assert (fault.cause, fault.fix, fault.prevention) == (
        "核心交换机电源模块故障",
        "更换电源模块",
        "建议配置冗余电源",
    )


async def test_a_level_two_report(stage: Stage) -> None:
    await report(stage, "r2", "否", "是", description="案件系统很慢，每个案子要一分多钟")
    summary = (await stage.driver.seen(stage["r2"]))[-2].text
    assert "二级 · 30分钟内响应 · 8小时内恢复 · 24小时内解决" in summary
    (ticket,) = await tickets(stage)
    assert (ticket.level, ticket.level_confirmed, ticket.status) == (2, True, "classified")


async def test_a_level_three_report_and_the_fix_history(stage: Stage) -> None:
    await report(stage, "r3", "否", "否", description="一台电脑开机慢")
    summary = (await stage.driver.seen(stage["r3"]))[-2].text
    assert "三级 · 60分钟内响应 · 到场后48小时内解决" in summary
    assert "近期故障" not in summary
    d = stage.driver
    for step in ("接单", "到场", "已解决"):
        await d.press(stage["e1"], step)
    for answer in ("内存条松动", "重新插拔内存", "定期巡检"):
        await d.send(stage["e1"], answer)
    await report(stage, "r4", "否", "否", description="又开机慢了")
    summary = (await d.seen(stage["r4"]))[-2].text
    assert "该设备/系统近期故障：" in summary and "重新插拔内存" in summary
