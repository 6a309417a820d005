"""Disputes, refusals, stale buttons, the classification window, restarts, strangers, crowds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import func, select

from storage.engine import transaction
from storage.enums import Role
from storage.models import Invite, Person, Ticket, TicketEvent
from storage.repositories.invites import create_invite
from tests.scenarios.stage import Actor, Stage
from tests.scenarios.test_reports import report, tickets


async def last(stage: Stage, who: str) -> str:
    """The newest bot message a person got."""
    return (await stage.driver.seen(stage[who]))[-1].text


async def count(stage: Stage, model: type[TicketEvent] | type[Ticket] | type[Person]) -> int:
    """Rows of a table."""
    async with transaction(stage.service.runtime.sessions) as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_the_classification_window_runs_out(stage: Stage) -> None:
    d, r1 = stage.driver, stage["r1"]
    await d.send(r1, "报修")
    await d.press(r1, "机房")
    stage.clock.advance_minutes(4)
    await stage.service.sweep()
    assert await tickets(stage) == []
    stage.clock.advance_minutes(1)
    await stage.service.sweep()
    assert await last(stage, "r1") == "报修还未完成，请在 5 分钟内回答，超时将按“二级”先行派单。"
    await stage.service.sweep()  # the reminder comes once
    assert len(await d.seen(r1)) == 3
    stage.clock.advance_minutes(5)
    await stage.service.sweep()
    (ticket,) = await tickets(stage)
    assert (ticket.level, ticket.level_confirmed, ticket.level_set_by, ticket.status) == (
        2,
        False,
        "system",
        "classified",
    )
    assert ticket.reported_at == stage.clock.now() - timedelta(minutes=10)  # counted from the first message
    assert await last(stage, "r1") == "报修超时，已按“二级（待确认）”提交工单 #1，工程师会电话联系您确认。"
    assert await d.seen(stage["e2"]) == []  # in working hours the on-site engineer is on call
    for who in ("e1", "s1"):
        assert (await last(stage, who)).startswith(
            "新报修\n报修人未完成定级，请电话联系确认级别。\n#1 二级（待确认）"
        )
    await d.send(r1, "全院断网")  # the wizard is over: a plain message is not a description
    assert await last(stage, "r1") == "没看懂。发送“报修”开始报修，或 /help 查看帮助。"


async def test_a_level_dispute_is_won_by_the_client(stage: Stage) -> None:
    d = stage.driver
    await report(stage, "r1", "是")
    await d.press(stage["e1"], "接单")
    await d.press(stage["e1"], "改级别")
    assert (await d.seen(stage["e1"]))[-1].labels == ("建议二级", "建议三级")
    await d.press(stage["e1"], "建议三级")
    proposal = (await d.seen(stage["r1"]))[-1]
    assert proposal.text.startswith("马骏 建议将级别改为三级，请确认。") and proposal.labels == (
        "同意",
        "不同意",
        "撤销报修",  # the reporter may still withdraw the report
    )
    await d.press(stage["r1"], "不同意")
    assert (await last(stage, "e1")).startswith("报修人1 不同意改级别，维持一级")
    (ticket,) = await tickets(stage)
    assert (ticket.level, ticket.proposed_level) == (1, None)
    # The supervisor has the last word.
    await d.press(stage["s1"], "定为二级")
    assert (await last(stage, "r1")).startswith("林国栋 将级别定为二级")
    (ticket,) = await tickets(stage)
    assert (ticket.level, ticket.level_set_by) == (2, "supervisor")


async def test_a_forbidden_press_changes_nothing(stage: Stage) -> None:
    await report(stage, "r1", "是")
    await stage.driver.send(stage["r2"], "/help")  # r2 has the bot open
    events = await count(stage, TicketEvent)
    await stage.driver.press_action(stage["r2"], "t:1:ack")  # a reporter forging an engineer's button
    assert await last(stage, "r2") == "无法办理：您在本单位的身份不能执行此操作。"
    await stage.driver.press_action(stage["r2"], "t:1:sl:3")
    (ticket,) = await tickets(stage)
    assert (ticket.status, ticket.level, ticket.assignee_id) == ("classified", 1, None)
    assert await count(stage, TicketEvent) == events


async def test_a_stale_button_shows_the_current_state(stage: Stage) -> None:
    d = stage.driver
    await report(stage, "r1", "是")
    await d.press(stage["e1"], "接单")
    await d.press_action(stage["e1"], "t:1:ack")  # a second tap that crossed the card's change
    seen = await d.seen(stage["e1"])
    live = [s for s in seen if s.labels]
    assert len(live) == 1 and live[0] == seen[-1]  # the live card came down, the old one lost its buttons
    assert seen[-1].text.startswith("工单 #1 当前状态：已接单\n#1 一级·已接单")
    assert "处理人：马骏" in seen[-1].text and "到场" in seen[-1].labels
    (ticket,) = await tickets(stage)
    assert ticket.assignee_id == stage["e1"].person_id


async def test_a_restart_mid_wizard_resumes_at_the_same_step(stage: Stage) -> None:
    d, r1 = stage.driver, stage["r1"]
    await d.send(r1, "报修")
    await d.press(r1, "计算机网络")
    await d.press(r1, "NET-CORE-01 核心交换机1")
    await stage.service.stop()
    stage.service.__init__(stage.service.runtime, clockwork=False)  # type: ignore[misc]
    await stage.service.start()
    await d.send(r1, "全院断网")
    assert await last(stage, "r1") == "业务是否已中断、系统瘫痪，或数据丢失？"
    await d.press(r1, "是")
    await d.press(r1, "确认提交")
    (ticket,) = await tickets(stage)
    assert (ticket.description, ticket.level) == ("全院断网", 1)


async def test_a_device_qr_link_starts_the_report_at_the_device(stage: Stage) -> None:
    d, r1 = stage.driver, stage["r1"]
    await d.send(r1, "/start asset_SRV-CASE-01")
    assert (await last(stage, "r1")).startswith("信息管理 · SRV-CASE-01 ")
    await d.send(r1, "审判系统打不开")
    await d.press(r1, "是")
    await d.press(r1, "确认提交")
    (ticket,) = await tickets(stage)
    assert ticket.asset_id is not None and ticket.level == 1


async def test_twenty_reporters_at_once(stage: Stage) -> None:
    reporters = [stage[f"r{n}"] for n in range(1, 21)]

    async def one(person: Actor) -> None:
        await report(stage, person.key, "否", "否", description=f"{person.name}的打印机卡纸")

    await asyncio.gather(*(one(person) for person in reporters))
    await stage.service.idle()
    stored = await tickets(stage)
    assert sorted(t.reporter_id for t in stored) == sorted(p.person_id for p in reporters)
    for person in reporters:
        ticket = next(t for t in stored if t.reporter_id == person.person_id)
        assert ticket.description == f"{person.name}的打印机卡纸"
        assert (
            await last(stage, person.key)
            == f"已提交工单 #{ticket.id}（三级）。工程师将尽快响应，进展会通知您。"
        )
    # On Telegram (one message per chat per second) the burst reaches the engineer as digests:
    # every ticket is there, each with its 接单 button.
    seen = await stage.driver.seen(stage["e1"])
    assert sum(s.text.count("新报修\n#") for s in seen) == 20
    acks = {a for s in seen for a in s.actions if a.endswith(":ack")}
    assert acks == {f"t:{t.id}:ack" for t in stored}


async def test_help_cancel_my_and_language(stage: Stage) -> None:
    d, r1 = stage.driver, stage["r1"]
    await d.send(r1, "/cancel")
    assert await last(stage, "r1") == "当前没有进行中的操作。"
    await d.send(r1, "报修")
    await d.send(r1, "/cancel")
    assert await last(stage, "r1") == "已取消。"
    await d.press_action(r1, "rb:1")  # the wizard's button after /cancel
    await d.send(r1, "/my")
    assert await last(stage, "r1") == "您没有未关闭的工单。"
    await report(stage, "r1", "是")
    await d.send(r1, "/my")
    assert (await last(stage, "r1")).startswith(
        "未关闭的工单：\n#1 一级 待接单 · 计算机网络 · NET-CORE-01 核心交换机1 · 响应剩余10分钟"
    )
    await d.send(r1, "x" * 2001)
    assert await last(stage, "r1") == "内容太长（最多 2000 字），请精简后再发。"
    await d.send(r1, "/lang en")
    assert await last(stage, "r1") == "Language set to English."
    await d.send(r1, "/help")
    assert (await last(stage, "r1")).startswith("Report a fault: /report")


async def test_a_stranger_is_told_how_to_join_and_joins_with_a_code(stage: Stage) -> None:
    stranger = Actor("x1", "新同事", 0, 20_001, "newcomer")
    await stage.driver.meet(stranger)
    await stage.driver.send(stranger, "报修")
    (welcome,) = await stage.driver.seen(stranger)
    assert "您还没有注册" in welcome.text and "/join CODE" in welcome.text
    assert await tickets(stage) == []
    async with transaction(stage.service.runtime.sessions) as session:
        invite = await create_invite(session, 1, Role.REPORTER, stage.clock.now())
    await stage.driver.send(stranger, "/join WRONG123")
    assert (await stage.driver.seen(stranger))[-1].text.startswith("邀请码无效或已过期")
    await stage.driver.send(stranger, f"/join {invite.code}")
    assert (await stage.driver.seen(stranger))[-1].text.startswith("欢迎，")
    await stage.driver.send(stranger, f"/join {invite.code}")
    assert (await stage.driver.seen(stranger))[-1].text == "您已经注册过了。"
    async with transaction(stage.service.runtime.sessions) as session:
        used = (await session.exec(select(Invite))).one()
    assert used.used_by_id is not None
    await stage.driver.send(stranger, "报修")
    assert (await stage.driver.seen(stranger))[-1].text == "报修：请选择故障所属系统："


async def test_an_engineer_hands_a_ticket_over_and_the_pings_follow(stage: Stage) -> None:
    d = stage.driver
    await report(stage, "r1", "是")
    await d.press(stage["e1"], "接单")
    await d.press(stage["e1"], "转派")
    assert (await d.seen(stage["e1"]))[-1].labels == ("何亮",)
    await d.press(stage["e1"], "何亮")
    handed = (await d.seen(stage["e2"]))[-1]
    assert handed.text.startswith("马骏 将工单转派给何亮\n#1 一级·已接单") and "到场" in handed.labels
    assert (await last(stage, "r1")).startswith("马骏 将工单转派给何亮")
    (ticket,) = await tickets(stage)
    assert ticket.assignee_id == stage["e2"].person_id
    before = len(await d.seen(stage["e1"]))
    stage.clock.advance(timedelta(hours=2))  # restore at 50 %: the reminder goes to the new engineer
    await stage.service.sweep()
    assert (await last(stage, "e2")).startswith("⏰ 工单 #1（一级）恢复还剩2小时")
    assert len(await d.seen(stage["e1"])) == before
