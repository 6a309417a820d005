"""How much SQL the two hottest paths cost, counted with SQLAlchemy's events on both engines.

A 确认提交 that notifies five people (the engineer on call and four supervisors, three chat
accounts each) is one transaction of at most 20 statements; a missed response firing is at most
12. Transaction control (BEGIN, COMMIT) is not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from handlers.dialogs.common import Confirm
from handlers.messages import Inbound
from storage.engine import transaction
from storage.enums import Channel, Role
from storage.models import Person
from storage.repositories import inbox
from storage.repositories.people import add_membership, link_identity
from tests.scenarios.stage import Stage

CONFIRM_BUDGET = 20
MISSED_RESPONSE_BUDGET = 12
NOT_COUNTED = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def counted(stage: Stage) -> Iterator[list[str]]:
    """The statements run on the service's engine inside the block."""
    engine = stage.service.runtime.engine.sync_engine
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if not statement.lstrip().upper().startswith(NOT_COUNTED):
            seen.append(" ".join(statement.split())[:160])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def more_supervisors(stage: Stage, count: int) -> None:
    """Supervisors beyond the cast's one, each with three chat accounts."""
    async with transaction(stage.service.runtime.sessions) as session:
        for n in range(count):
            person = Person(name=f"主管{n}", created_at=stage.clock.now())
            session.add(person)
            await session.flush()
            assert person.id is not None
            await add_membership(session, person.id, 1, Role.SUPERVISOR)
            for channel in Channel:
                await link_identity(session, person.id, channel, f"sup{n}")


async def to_confirm(stage: Stage) -> None:
    """Walk r1's report up to its summary (确认提交 not pressed yet)."""
    d, r1 = stage.driver, stage["r1"]
    await d.send(r1, "报修")
    await d.press(r1, "计算机网络")
    await d.press(r1, "NET-CORE-01 核心交换机1")
    await d.send(r1, "全院断网")
    await d.press(r1, "是")


async def test_a_confirmed_report_to_five_people_costs_at_most_20_statements(webchat: Stage) -> None:
    stage, d = webchat, webchat.driver
    await more_supervisors(stage, 3)
    await to_confirm(stage)
    press = Inbound(Channel.WEBCHAT, "r1", "r1", stage.clock.now(), action=Confirm(True).pack())
    async with transaction(stage.service.runtime.sessions) as session:  # stored, as the pipeline does
        await inbox.store(session, Channel.WEBCHAT, "r1:confirm", {"user": "r1"}, stage.clock.now())
    with counted(stage) as statements:
        assert await stage.service.router.handle(press, inbox_key="r1:confirm")
    await stage.service.idle()
    listing = "\n".join(statements)
    print(f"确认提交: {len(statements)} statements")
    assert len(statements) <= CONFIRM_BUDGET, f"{len(statements)} statements:\n{listing}"
    assert len(await d.seen(stage["s1"])) == 1  # the five were told
    assert "INSERT INTO outbox_message" in listing


async def test_a_missed_response_costs_at_most_12_statements(webchat: Stage) -> None:
    stage, d, r1 = webchat, webchat.driver, webchat["r1"]
    await more_supervisors(stage, 3)
    await to_confirm(stage)
    await d.press(r1, "确认提交")
    stage.clock.advance(timedelta(minutes=9))
    await stage.service.sweep()  # the reminders and the window's rows fired already
    stage.clock.advance(timedelta(minutes=1))
    with counted(stage) as statements:
        assert await stage.service.sweeper.sweep() == 1
    listing = "\n".join(statements)
    print(f"missed response: {len(statements)} statements")
    assert len(statements) <= MISSED_RESPONSE_BUDGET, f"{len(statements)} statements:\n{listing}"
    await stage.service.idle()
    assert (await d.seen(stage["s1"]))[-1].text.startswith("⚠️ 工单 #1（一级）响应已超时")
