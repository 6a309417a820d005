"""The storage suite: one suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import func, select

from storage.engine import transaction
from storage.enums import Channel, Role
from storage.models import DEFAULT_SUBSYSTEMS, Conversation, Person, Site
from storage.repositories.people import (
    add_membership,
    link_identity,
    members,
    person_by_identity,
    roles_at,
)
from storage.repositories.sites import create_site, site_by_slug, subsystems
from tests.conftest import START, Database

SHANGHAI = timezone(timedelta(hours=8))


async def _count(db: Database, model: type[Site] | type[Person]) -> int:
    async with transaction(db.factory) as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_times_come_back_in_utc_and_timezone_aware(db: Database) -> None:
    local = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=SHANGHAI)
    async with transaction(db.factory) as session:
        session.add(Person(name="王晓丽", created_at=local))
    async with transaction(db.factory) as session:
        person = (await session.exec(select(Person))).one()
    assert person.created_at == datetime(2026, 12, 1, 1, 0, 0, 123456, tzinfo=UTC)
    assert person.created_at.utcoffset() == timedelta(0)


async def test_a_naive_time_is_refused_and_nothing_is_stored(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with transaction(db.factory) as session:
            session.add(Person(name="x", created_at=datetime(2026, 12, 1, 9, 0)))
    assert await _count(db, Person) == 0


async def test_a_new_site_gets_the_twelve_subsystems_in_order(db: Database) -> None:
    async with transaction(db.factory) as session:
        site = await create_site(session, "示例法院", "demo", START)
    async with transaction(db.factory) as session:
        found = await site_by_slug(session, "demo")
        assert found is not None and found.id == site.id
        assert found.timezone == "Asia/Shanghai"
        names = [s.name for s in await subsystems(session, found.id or 0)]
    assert names == list(DEFAULT_SUBSYSTEMS)
    assert len(names) == 12


async def test_repositories_never_commit_the_callers_transaction(db: Database) -> None:
    async with db.factory() as session, session.begin():
        await create_site(session, "示例法院", "demo", START)
        person = Person(name="李俊", created_at=START)
        session.add(person)
        await session.flush()
        await link_identity(session, person.id or 0, Channel.TELEGRAM, "10002")
        await session.rollback()
    assert await _count(db, Site) == 0
    assert await _count(db, Person) == 0


async def test_a_slug_is_unique(db: Database) -> None:
    async with transaction(db.factory) as session:
        await create_site(session, "示例法院", "demo", START)
    with pytest.raises(IntegrityError):
        async with transaction(db.factory) as session:
            await create_site(session, "重复", "demo", START)
    assert await _count(db, Site) == 1


async def test_identities_and_roles(db: Database) -> None:
    async with transaction(db.factory) as session:
        site = await create_site(session, "示例法院", "demo", START)
        other = await create_site(session, "另一法院", "other", START)
        person = Person(name="刘工", phone="13800002001", created_at=START)
        session.add(person)
        await session.flush()
        pid, sid, oid = person.id or 0, site.id or 0, other.id or 0
        await add_membership(session, pid, sid, Role.ENGINEER)
        await add_membership(session, pid, sid, Role.ENGINEER)  # idempotent
        await add_membership(session, pid, oid, Role.SUPERVISOR)
        await link_identity(session, pid, Channel.TELEGRAM, "10015")
        await link_identity(session, pid, Channel.WECOM, "liugong")
    async with transaction(db.factory) as session:
        assert await roles_at(session, pid, sid) == {Role.ENGINEER}
        assert await roles_at(session, pid, oid) == {Role.SUPERVISOR}
        found = await person_by_identity(session, Channel.WECOM, "liugong")
        assert found is not None and found.id == pid
        assert await person_by_identity(session, Channel.TELEGRAM, "liugong") is None
        assert [p.name for p in await members(session, sid, Role.ENGINEER)] == ["刘工"]
        assert list(await members(session, sid, Role.REPORTER)) == []
        second = Person(name="别人", created_at=START)
        session.add(second)
        await session.flush()
        with pytest.raises(ValueError, match="already belongs"):
            await link_identity(session, second.id or 0, Channel.TELEGRAM, "10015")


async def test_wizard_state_round_trips_as_json(db: Database) -> None:
    data = {"step": "subsystem", "answers": {"stopped": False}, "text": "打印机卡纸"}
    async with transaction(db.factory) as session:
        session.add(
            Conversation(
                channel=Channel.WECOM, chat_id="c1", user_id="u1", state="asking", data=data, updated_at=START
            )
        )
    async with transaction(db.factory) as session:
        row = (await session.exec(select(Conversation))).one()
    assert (row.channel, row.state, row.data) == (Channel.WECOM, "asking", data)
    assert row.updated_at == START
