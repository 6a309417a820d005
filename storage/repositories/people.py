"""People, their roles per site and their chat identities."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.enums import Channel, Role
from storage.models import ChatIdentity, Membership, Person


async def person_by_phone(session: AsyncSession, phone: str) -> Person | None:
    """The person with this phone number."""
    return (await session.exec(select(Person).where(Person.phone == phone))).first()


async def person_by_identity(session: AsyncSession, channel: Channel, external_id: str) -> Person | None:
    """The person behind a chat account."""
    query = (
        select(Person)
        .join(ChatIdentity, col(ChatIdentity.person_id) == col(Person.id))
        .where(ChatIdentity.channel == channel, ChatIdentity.external_id == external_id)
    )
    return (await session.exec(query)).first()


async def identity(session: AsyncSession, channel: Channel, external_id: str) -> ChatIdentity | None:
    """The identity row of a chat account."""
    query = select(ChatIdentity).where(
        ChatIdentity.channel == channel, ChatIdentity.external_id == external_id
    )
    return (await session.exec(query)).first()


async def link_identity(
    session: AsyncSession, person_id: int, channel: Channel, external_id: str
) -> ChatIdentity:
    """Bind a chat account to a person (idempotent for the same person)."""
    existing = await identity(session, channel, external_id)
    if existing is not None:
        if existing.person_id != person_id:
            raise ValueError(
                f"{channel} account {external_id} already belongs to person {existing.person_id}"
            )
        return existing
    row = ChatIdentity(channel=channel, external_id=external_id, person_id=person_id)
    session.add(row)
    await session.flush()
    return row


async def roles_at(session: AsyncSession, person_id: int, site_id: int) -> frozenset[Role]:
    """The roles a person holds at a site (empty: a stranger there)."""
    query = select(Membership.role).where(Membership.person_id == person_id, Membership.site_id == site_id)
    return frozenset(Role(r) for r in (await session.exec(query)).all())


async def add_membership(session: AsyncSession, person_id: int, site_id: int, role: Role) -> Membership:
    """Give a person a role at a site (idempotent)."""
    query = select(Membership).where(
        Membership.person_id == person_id, Membership.site_id == site_id, Membership.role == role
    )
    existing = (await session.exec(query)).first()
    if existing is not None:
        return existing
    row = Membership(person_id=person_id, site_id=site_id, role=role)
    session.add(row)
    await session.flush()
    return row


async def members(session: AsyncSession, site_id: int, role: Role | None = None) -> Sequence[Person]:
    """The people of a site, optionally only those holding ``role``."""
    query = (
        select(Person)
        .join(Membership, col(Membership.person_id) == col(Person.id))
        .where(Membership.site_id == site_id)
    )
    if role is not None:
        query = query.where(Membership.role == role)
    return (await session.exec(query.distinct().order_by(col(Person.id)))).all()


async def identities_of(session: AsyncSession, person_id: int) -> Sequence[ChatIdentity]:
    """Every chat account of a person."""
    query = select(ChatIdentity).where(ChatIdentity.person_id == person_id).order_by(col(ChatIdentity.id))
    return (await session.exec(query)).all()


async def sites_of(session: AsyncSession, person_id: int) -> dict[int, frozenset[Role]]:
    """The sites a person belongs to, with their roles there."""
    rows = (await session.exec(select(Membership).where(Membership.person_id == person_id))).all()
    found: dict[int, set[Role]] = {}
    for row in rows:
        found.setdefault(row.site_id, set()).add(Role(row.role))
    return {site: frozenset(roles) for site, roles in found.items()}
