"""Presses nobody was offered, tried as an attacker would, on every channel and database."""

from __future__ import annotations

import re

from sqlmodel import col, select

from storage.engine import transaction
from storage.enums import Channel, Role
from storage.models import Conversation, Person, Ticket, TicketEvent
from storage.repositories.people import add_membership, link_identity
from storage.repositories.sites import create_site
from tests.scenarios.stage import Actor, Stage
from tests.scenarios.test_reports import report

FORGED = [
    "t:²:ack",  # a digit Python's isdigit() accepts but int() does not
    "t:99999999999999999999:ack",  # an int no ticket id can be
    "t:" + "1" * 200,  # a 200-byte code
    "w:sub:abc",  # the wizard's old codes, mangled
    "w:sub:",
    "rb:abc",
    "t:1:ack:x",
]


async def snapshot(stage: Stage) -> tuple[object, ...]:
    """Everything a press could change."""
    async with transaction(stage.service.runtime.sessions) as session:
        tickets = [
            (t.status, t.level, t.assignee_id, t.revision)
            for t in (await session.exec(select(Ticket).order_by(col(Ticket.id)))).all()
        ]
        events = len((await session.exec(select(TicketEvent))).all())
        dialogs = [
            (c.user_id, c.dialog, c.state, c.serial)
            for c in (await session.exec(select(Conversation).order_by(col(Conversation.id)))).all()
        ]
    return tickets, events, dialogs


async def test_a_forged_press_gets_the_expired_answer_and_changes_nothing(stage: Stage) -> None:
    d = stage.driver
    await report(stage, "r1", "是")
    for code in FORGED:
        await d.send(stage["r2"], "报修")  # a card with buttons to forge a press on (WeCom needs one)
        before = await snapshot(stage)
        await d.press_action(stage["r2"], code)
        answer = await d.answer(stage["r2"])
        assert answer is not None and answer.startswith("这个按钮已过期"), (code, answer)
        assert await snapshot(stage) == before, code


async def outsider(stage: Stage) -> Actor:
    """A supervisor of another site, with an account on every channel."""
    async with transaction(stage.service.runtime.sessions) as session:
        site = await create_site(session, "另一法院", "other", stage.clock.now())
        person = Person(name="外单位主管", phone="13900000001", created_at=stage.clock.now())
        session.add(person)
        await session.flush()
        assert person.id is not None and site.id is not None
        await add_membership(session, person.id, site.id, Role.SUPERVISOR)
        for channel, account in ((Channel.TELEGRAM, "30001"), (Channel.WEBCHAT, "x1"), (Channel.WECOM, "x1")):
            await link_identity(session, person.id, channel, account)
    actor = Actor("x1", person.name, person.id, 30001, "x1")
    await stage.driver.meet(actor)
    return actor


async def test_a_person_of_another_site_learns_nothing_about_its_tickets(stage: Stage) -> None:
    d = stage.driver
    await report(stage, "r1", "是")
    x = await outsider(stage)
    answers = []
    for code in ("t:1:sl", "t:1:sl:2", "t:1:ack", "t:1:cls", "t:999:ack", "t:999:sl:2", "t:999:sl"):
        await d.send(x, "报修")  # a card of the outsider's own to forge the press on
        before = await snapshot(stage)
        await d.press_action(x, code)
        answers.append(await d.answer(x))
        assert await snapshot(stage) == before, code
    assert set(answers) == {answers[0]}, answers  # an existing ticket and a missing one alike
    assert answers[0] is not None and answers[0].startswith("无法办理：没有这个工单，或您无权办理")
    assert "已报修" not in answers[0] and "待接单" not in answers[0]  # no status leaks


async def test_a_refusal_is_in_the_persons_language(stage: Stage) -> None:
    d, r2 = stage.driver, stage["r2"]
    await report(stage, "r1", "是")
    await d.send(r2, "/lang en")
    await d.send(r2, "/report")
    await d.press_action(r2, "t:1:ack")  # a reporter forging an engineer's button
    answer = await d.answer(r2)
    assert answer is not None and answer.startswith(
        "Not possible: Your role at this site does not allow this"
    )
    assert not re.search(r"[\u4e00-\u9fff]", answer), answer
