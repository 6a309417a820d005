"""Telling a ticket's people what happened: one live card per person and chat account.

Each account that follows a ticket has one card (the ticket as it is now, with the buttons
that person may press). A change edits that card in place and sends only a one-line notice
("马骏 已到场 · 09:20"); the person who pressed gets no notice (the pressed card changes under
their finger, and Telegram shows a toast). When the change asks something new of a person (a
button they did not have: 确认关闭, 同意 / 不同意), their card moves down instead: a fresh card
with the news at the bottom of the chat, and the old one loses its buttons. The cards are rows
(storage TicketCard), written in bulk; the sender edits the platform messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.conversation.cards import card_text, local_time
from handlers.conversation.ticket_context import Member, TicketContext, ticket_context
from handlers.conversation.ticket_press import buttons_for
from handlers.messages import Address
from handlers.outgoing import Outbox, button_rows, buttons_of
from handlers.sla.policy import PolicyBook
from storage.models import Person, Ticket
from storage.repositories.cards import Card, add_cards, change_cards
from storage.repositories.people import identities_of

#: Builds a line of news in a reader's language.
Headline = Callable[[str], str]


@dataclass(frozen=True)
class Pressed:
    """The press that caused the change: who, and the platform's reference to the pressed
    message and its one-time token (WeCom), so that card is the one changed."""

    person_id: int
    message_ref: str | None = None
    card_token: str | None = None


@dataclass
class Notifier:
    """Writes a ticket's news as card rows and outbox rows."""

    session: AsyncSession
    policies: PolicyBook
    clock: Clock
    out: Outbox

    async def context(self, ticket: Ticket) -> TicketContext:
        """The ticket's context in this transaction."""
        return await ticket_context(self.session, self.policies, ticket, self.clock.now())

    async def tell(
        self,
        ticket: Ticket,
        headline: Headline,
        *,
        pressed: Pressed | None = None,
        new: bool = False,
        offered: bool = False,
        also: tuple[int, ...] = (),
        exclude: int | None = None,
    ) -> None:
        """Bring every holder's card up to date with ``headline`` as the news (the presser's
        in place and quietly); ``also`` are more people told, ``exclude`` one who is not."""
        ctx = await self.context(ticket)
        people = {m.id: m for m in ctx.holders(new=new, offered=offered)}
        if pressed is not None and (presser := ctx.member(pressed.person_id)) is not None:
            people.setdefault(presser.id, presser)
        for person_id in also:
            if (member := ctx.member(person_id)) is not None:
                people.setdefault(member.id, member)
        await ctx.load_cards(self.session, new=new)
        await self._show(ctx, [m for m in people.values() if m.id != exclude], headline, pressed, moved=())

    async def move(self, ticket: Ticket, person_id: int, headline: Headline) -> None:
        """Bring one person's card to the bottom of their chats, current, with ``headline``."""
        ctx = await self.context(ticket)
        if (member := ctx.member(person_id)) is not None:
            await self._show(ctx, [member], headline, None, moved=(person_id,))

    async def send_text(self, member: Member, message: Callable[[str], str]) -> None:
        """A plain message to one person on every chat account they have."""
        for address in member.accounts:
            self.out.say(address, message(member.person.language), (), member.id)

    async def _show(
        self,
        ctx: TicketContext,
        people: list[Member],
        headline: Headline,
        pressed: Pressed | None,
        moved: tuple[int, ...],
    ) -> None:
        await ctx.load_cards(self.session)
        now = self.clock.now()
        changes: list[dict[str, Any]] = []
        fresh: list[tuple[Address, Member, str, list[list[dict[str, str]]]]] = []
        notices: list[tuple[Address, Member, str]] = []
        edits: list[tuple[Address, Member, Card]] = []
        for member in people:
            lang = member.person.language
            body = card_text(ctx, lang, now)
            rows = button_rows(buttons_for(ctx.ticket, ctx.actor(member.id), lang))
            news = headline(lang)
            presser = pressed is not None and pressed.person_id == member.id
            for address in member.accounts:
                card = ctx.cards.get(address)
                if card is None:
                    fresh.append((address, member, f"{news}\n{body}", rows))
                    continue
                gained = _actions(rows) - _actions(card.buttons)
                if member.id in moved or (gained and not presser):
                    card.live, card.buttons = False, []  # superseded: its buttons go
                    changes.append(_change(card, now))
                    edits.append((address, member, card))
                    del ctx.cards[address]
                    fresh.append((address, member, f"{news}\n{body}", rows))
                    continue
                if (
                    presser
                    and pressed is not None
                    and pressed.card_token
                    and card.handle == pressed.message_ref
                ):
                    card.token, card.token_at = pressed.card_token, now  # the press may change this card
                if (card.text, card.buttons) != (body, rows) or presser:
                    card.text, card.buttons = body, rows
                    changes.append(_change(card, now))
                    edits.append((address, member, card))
                if not presser:
                    notices.append((address, member, f"{news} · {local_time(ctx.site, now, '%H:%M')}"))
        await change_cards(self.session, changes)
        for address, member, card in edits:
            self.out.add(address, "edit", card.text, buttons_of(card.buttons), member.id, card_id=card.id)
        await self._add(ctx, fresh, now)
        for address, member, line in notices:
            self.out.say(address, line, (), member.id)

    async def _add(
        self,
        ctx: TicketContext,
        fresh: list[tuple[Address, Member, str, list[list[dict[str, str]]]]],
        now: datetime,
    ) -> None:
        """New live cards (one INSERT), each sent as a message."""
        new = [
            {
                "ticket_id": ctx.ticket.id,
                "person_id": member.id,
                "channel": address.channel,
                "chat_id": address.chat_id,
                "text": text,
                "buttons": rows,
                "live": True,
                "created_at": now,
                "updated_at": now,
            }
            for address, member, text, rows in fresh
        ]
        ids = await add_cards(self.session, new)
        for (address, member, text, rows), card_id in zip(fresh, ids, strict=True):
            ctx.cards[address] = Card(
                card_id,
                ctx.ticket.id or 0,
                member.id,
                address.channel,
                address.chat_id,
                text,
                rows,
                True,
                None,
                None,
                None,
            )
            self.out.add(address, "card", text, buttons_of(rows), member.id, card_id=card_id)


def _actions(rows: list[list[dict[str, str]]]) -> set[str]:
    return {button["action"] for row in rows for button in row}


def _change(card: Card, now: datetime) -> dict[str, Any]:
    return {
        "card": card.id,
        "text": card.text,
        "buttons": card.buttons,
        "live": card.live,
        "token": card.token,
        "token_at": card.token_at,
        "updated_at": now,
    }


async def send_text_to(
    session: AsyncSession, out: Outbox, person_id: int, message: Callable[[str], str]
) -> None:
    """A plain message to a person (outside any ticket) on every chat account they have."""
    person = await session.get(Person, person_id)
    if person is None:
        return
    for identity in await identities_of(session, person_id):
        out.say(Address(identity.channel, identity.external_id), message(person.language), (), person_id)
