"""Pushing a ticket's news to the people who hold it, each in their language with their buttons."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.conversation.cards import card
from handlers.conversation.ticket_press import buttons_for
from handlers.messages import Address
from handlers.outgoing import Outbox
from handlers.roster.roster import on_duty
from handlers.sla.policy import PolicyBook
from handlers.tickets.machine import Actor
from handlers.tickets.service import site_policy
from storage.enums import Role
from storage.models import Person, Ticket
from storage.repositories.people import identities_of, members, roles_at

#: Builds the first line of a notice in a recipient's language.
Headline = Callable[[str], str]


@dataclass
class Notifier:
    """Writes a ticket's news as outbox rows."""

    session: AsyncSession
    policies: PolicyBook
    clock: Clock
    out: Outbox

    async def on_call(self, ticket: Ticket) -> list[Person]:
        """Who gets a ticket nobody has taken: the engineer on duty (the roster's, or the
        on-site engineer in the client's working hours), else every engineer of the site."""
        duty = await on_duty(self.session, ticket.site_id, self.clock.now())
        if duty.engineer_id is not None and (engineer := await self.session.get(Person, duty.engineer_id)):
            return [engineer]
        return list(await members(self.session, ticket.site_id, Role.ENGINEER))

    async def backups(self, ticket: Ticket) -> list[Person]:
        """Who steps in when the response is missed: the roster's backup engineer, else the
        site's other engineers."""
        duty = await on_duty(self.session, ticket.site_id, self.clock.now())
        if duty.backup_id is not None and (backup := await self.session.get(Person, duty.backup_id)):
            return [backup]
        busy = {ticket.assignee_id, duty.engineer_id}
        return [p for p in await members(self.session, ticket.site_id, Role.ENGINEER) if p.id not in busy]

    async def holders(self, ticket: Ticket, *, new: bool = False, offered: bool = False) -> list[Person]:
        """Who follows a ticket: its reporter, its engineer (the engineers on call while nobody
        has taken it; with ``offered`` those too) and the site's supervisors. A new ticket goes
        to the engineers on call and the supervisors."""
        people: dict[int, Person] = {}
        if not new and (reporter := await self.session.get(Person, ticket.reporter_id)):
            people[ticket.reporter_id] = reporter
        assignee = None if ticket.assignee_id is None else await self.session.get(Person, ticket.assignee_id)
        if assignee is not None and assignee.id is not None:
            people[assignee.id] = assignee
        if assignee is None or offered:
            people.update({p.id or 0: p for p in await self.on_call(ticket)})
        people.update({p.id or 0: p for p in await members(self.session, ticket.site_id, Role.SUPERVISOR)})
        return list(people.values())

    async def tell(
        self,
        ticket: Ticket,
        headline: Headline,
        *,
        exclude: int | None = None,
        new: bool = False,
        offered: bool = False,
    ) -> None:
        """Send ``headline`` + the ticket's card (+ the reader's buttons) to every holder."""
        for person in await self.holders(ticket, new=new, offered=offered):
            if person.id != exclude:
                await self.send_card(person, ticket, headline)

    async def send_card(self, person: Person, ticket: Ticket, headline: Headline | None = None) -> None:
        """One person gets the card (with a headline) on every chat account they have."""
        assert person.id is not None
        policy = await site_policy(self.session, self.policies, ticket.site_id)
        lang = person.language
        body = await card(self.session, ticket, policy, lang, self.clock.now())
        message = f"{headline(lang)}\n{body}" if headline else body
        actor = Actor(person.id, await roles_at(self.session, person.id, ticket.site_id), person.name)
        buttons = buttons_for(ticket, actor, lang)
        for identity in await identities_of(self.session, person.id):
            self.out.say(Address(identity.channel, identity.external_id), message, buttons, person.id)

    async def send_text(self, person_id: int, message: Callable[[str], str]) -> None:
        """A plain message to a person on every chat account they have."""
        person = await self.session.get(Person, person_id)
        if person is None:
            return
        for identity in await identities_of(self.session, person_id):
            self.out.say(
                Address(identity.channel, identity.external_id), message(person.language), (), person_id
            )
