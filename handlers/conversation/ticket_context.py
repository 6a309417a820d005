"""Everything a change to a ticket needs to tell its people, loaded once per transaction.

The site and its policy, the ticket's subsystem and device, every member of the site with
their roles and chat accounts, who is on duty now, and the live cards of the ticket: a handful
of queries, whatever the number of people told. The context is kept in the session for the rest
of the transaction (SQLAlchemy's identity map holds objects weakly: without this, the Site row
was fetched again for every recipient).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.messages import Address
from handlers.roster.roster import Duty, on_duty
from handlers.sla.policy import Policy, PolicyBook
from handlers.tickets.machine import Actor
from storage.enums import Channel, Role
from storage.models import Asset, ChatIdentity, Membership, Person, Site, Subsystem, Ticket
from storage.pinned import pinned_get
from storage.repositories.cards import Card, live_cards

_KEY = "dutydesk.ticket_context"


@dataclass
class Member:
    """A person of the ticket's site: their roles there and their chat accounts."""

    person: Person
    roles: set[Role] = field(default_factory=set)
    accounts: list[Address] = field(default_factory=list)

    @property
    def id(self) -> int:
        """The person's id."""
        assert self.person.id is not None
        return self.person.id


@dataclass
class TicketContext:
    """A ticket with its site, people, duty and live cards."""

    ticket: Ticket
    site: Site
    policy: Policy
    members: dict[int, Member]
    duty: Duty
    #: The live card of each chat account that has one (after ``load_cards``).
    cards: dict[Address, Card] = field(default_factory=dict)
    subsystem: Subsystem | None = None
    asset: Asset | None = None
    _cards_loaded: bool = False

    async def load_cards(self, session: AsyncSession, *, new: bool = False) -> None:
        """What rendering and changing cards needs: the live cards, the subsystem and device
        (once; a notice that shows no card does without). A ``new`` ticket has no cards yet."""
        if self._cards_loaded:
            return
        ticket = self.ticket
        assert ticket.id is not None
        if not new:
            self.cards = {Address(c.channel, c.chat_id): c for c in await live_cards(session, ticket.id)}
        if ticket.subsystem_id is not None:
            self.subsystem = await pinned_get(session, Subsystem, ticket.subsystem_id)
        if ticket.asset_id is not None:
            self.asset = await pinned_get(session, Asset, ticket.asset_id)
        self._cards_loaded = True

    def actor(self, person_id: int) -> Actor:
        """The person as the ticket machine sees them at this site."""
        member = self.members.get(person_id)
        if member is None:
            return Actor(person_id, frozenset(), "")
        return Actor(person_id, frozenset(member.roles), member.person.name)

    def with_role(self, role: Role) -> list[Member]:
        """The site's people holding ``role``, by person id."""
        return [m for _, m in sorted(self.members.items()) if role in m.roles]

    def member(self, person_id: int | None) -> Member | None:
        """A person of the site, by id."""
        return None if person_id is None else self.members.get(person_id)

    def on_call(self) -> list[Member]:
        """Who gets a ticket nobody has taken: the engineer on duty (the roster's, or the on-site
        engineer in the client's working hours), else every engineer of the site."""
        duty = self.member(self.duty.engineer_id)
        return [duty] if duty is not None else self.with_role(Role.ENGINEER)

    def backups(self) -> list[Member]:
        """Who steps in when the response is missed: the roster's backup engineer, else the
        site's other engineers."""
        backup = self.member(self.duty.backup_id)
        if backup is not None:
            return [backup]
        busy = {self.ticket.assignee_id, self.duty.engineer_id}
        return [m for m in self.with_role(Role.ENGINEER) if m.id not in busy]

    def holders(self, *, new: bool = False, offered: bool = False) -> list[Member]:
        """Who follows the ticket: its reporter, its engineer (the engineers on call while nobody
        has taken it; with ``offered`` those too) and the site's supervisors. A new ticket goes
        to the engineers on call and the supervisors."""
        people: dict[int, Member] = {}
        if not new and (reporter := self.member(self.ticket.reporter_id)) is not None:
            people[reporter.id] = reporter
        assignee = self.member(self.ticket.assignee_id)
        if assignee is not None:
            people[assignee.id] = assignee
        if assignee is None or offered:
            people.update({m.id: m for m in self.on_call()})
        people.update({m.id: m for m in self.with_role(Role.SUPERVISOR)})
        return list(people.values())

    def where(self) -> str:
        """ "计算机网络 · NET-CORE-01 核心交换机 · 三楼" (or "—")."""
        parts = []
        if self.subsystem is not None:
            parts.append(self.subsystem.name)
        if self.asset is not None:
            parts.append(f"{self.asset.code} {self.asset.name}")
        if self.ticket.place:
            parts.append(self.ticket.place)
        return " · ".join(parts) or "—"


async def ticket_context(
    session: AsyncSession, policies: PolicyBook, ticket: Ticket, now: datetime
) -> TicketContext:
    """The context of ``ticket`` in this transaction (loaded on first use)."""
    cached: dict[int, TicketContext] = session.info.setdefault(_KEY, {})
    assert ticket.id is not None
    found = cached.get(ticket.id)
    if found is not None and found.ticket is ticket:
        return found
    site = await pinned_get(session, Site, ticket.site_id)
    if site is None:
        raise LookupError(f"no site {ticket.site_id}")
    rows = await session.exec(
        select(Person, Membership.role, ChatIdentity)
        .join(Membership, col(Membership.person_id) == col(Person.id))
        .outerjoin(ChatIdentity, col(ChatIdentity.person_id) == col(Person.id))
        .where(Membership.site_id == ticket.site_id)
        .order_by(col(Person.id), col(ChatIdentity.id))
    )
    members: dict[int, Member] = {}
    for person, role, identity in rows.all():
        member = members.setdefault(person.id or 0, Member(person))
        member.roles.add(Role(role))
        if identity is not None:
            address = Address(Channel(identity.channel), identity.external_id)
            if address not in member.accounts:
                member.accounts.append(address)
    engineers = [pid for pid, m in sorted(members.items()) if Role.ENGINEER in m.roles]
    duty = await on_duty(session, ticket.site_id, now, site=site, engineers=engineers)
    context = TicketContext(ticket, site, policies.for_site(site.slug, site.policy_toml), members, duty)
    cached[ticket.id] = context
    return context
