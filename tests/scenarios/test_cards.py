"""One live card per person and ticket: changes edit it in place and send a one-line notice;
a card whose buttons were superseded loses them; /my shows what waits for each person."""

from __future__ import annotations

from tests.scenarios.stage import Seen, Stage
from tests.scenarios.test_reports import FAULT_REPORT, report


def cards(seen: list[Seen]) -> list[Seen]:
    """The messages that show a ticket (its card, or a superseded one)."""
    return [s for s in seen if "#1 " in s.text and "\n" in s.text]


async def live(stage: Stage, who: str) -> list[Seen]:
    """The messages of a person that still have buttons of ticket #1."""
    return [s for s in await stage.driver.seen(stage[who]) if any(a.startswith("t:1:") for a in s.actions)]


async def test_a_tickets_life_leaves_one_card_per_person(stage: Stage) -> None:
    d = stage.driver
    await report(stage, "r1", "是")
    for step in ("接单", "到场", "已恢复", "已解决"):
        stage.clock.advance_minutes(10)
        await d.press(stage["e1"], step)
        for who in ("r1", "e1", "s1"):
            assert len(await live(stage, who)) <= 1, (step, who, await d.seen(stage[who]))
    for answer in FAULT_REPORT:
        await d.send(stage["e1"], answer)
    supervisor = await d.seen(stage["s1"])
    shown = cards(supervisor)
    assert all(card.labels == () for card in shown[:-1]) and shown[-1] == supervisor[-1]
    assert (
        supervisor[-1].text.startswith("马骏：故障已解决\n#1 一级·已解决")
        and "确认关闭" in supervisor[-1].labels
    )
    notices = [s.text for s in supervisor if "\n" not in s.text]
    assert notices == ["马骏 已接单 · 09:10", "马骏 已到场 · 09:20", "马骏：业务已恢复 · 09:30"]
    engineer = await d.seen(stage["e1"])
    assert all(card.labels == () for card in cards(engineer))  # resolved: nothing left to press
    if d.name != "wecom":  # (a WeCom card can be changed once: each change replaces it instead)
        # One card, edited in place, until 确认关闭 asked something new of the supervisor: then
        # one fresh card at the bottom, and the first lost its buttons.
        assert len(shown) == 2
        assert len(cards(engineer)) == 1  # the presser's card changed under their finger
        assert engineer[0].text.startswith("#1 一级·已解决")
    await d.press(stage["s1"], "确认关闭")
    assert await live(stage, "s1") == [] and await live(stage, "r1") == []


async def test_my_shows_the_supervisor_what_waits_for_them(stage: Stage) -> None:
    d = stage.driver
    await report(stage, "r1", "是")
    await d.send(stage["e1"], "/my")
    assert (await d.seen(stage["e1"]))[-1].text.startswith("未关闭的工单：\n👉 #1 一级 待接单")
    assert (await d.seen(stage["e1"]))[-1].text.endswith("待您接单")
    for step in ("接单", "已解决"):
        await d.press(stage["e1"], step)
    await d.send(stage["s1"], "/my")
    mine = (await d.seen(stage["s1"]))[-1].text
    assert mine.startswith("未关闭的工单：\n👉 #1 一级 已解决") and mine.endswith("待您确认关闭"), mine
    await d.press(stage["s1"], "确认关闭")
    await d.send(stage["s1"], "/my")
    assert (await d.seen(stage["s1"]))[-1].text == "您没有未关闭的工单。"
