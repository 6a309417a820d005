"""What one piece of handling works with: the transaction, the person, their dialog, the outbox.

A Context is made for each inbound event (``event`` set) and for each due row of a dialog
that fires (``event`` None); either way its only output is outbox rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.dialogs.buttons import ButtonData
from handlers.messages import Address, Buttons, Inbound
from handlers.outgoing import Outbox
from handlers.sla.policy import PolicyBook
from handlers.texts import language_of, text
from handlers.tickets.service import TicketService
from storage.models import Conversation, Person

M = TypeVar("M", bound=BaseModel)


@dataclass
class Context:
    """One event (or one due dialog deadline) being handled inside one transaction."""

    session: AsyncSession
    clock: Clock
    policies: PolicyBook
    out: Outbox
    conversation: Conversation
    #: The registered person (None: a stranger, who can only register).
    person: Person | None
    event: Inbound | None = None
    #: The pressed button, decoded (None: no button, or one that did not decode).
    button: ButtonData | None = None
    #: The short answer to a pressed button (a toast, or the pressed card's new caption).
    notice: str | None = None
    #: The site of what the event is about (a pressed ticket's), for the times shown.
    site_id: int | None = None
    #: The pressed message was the person's live card of a ticket, changed in place already.
    card_pressed: bool = False

    @property
    def me(self) -> Person:
        """The registered person (dialogs other than registration only run for one)."""
        if self.person is None:
            raise LookupError("this dialog needs a registered person")
        return self.person

    @property
    def lang(self) -> str:
        """The person's language (for a stranger, the platform's hint)."""
        if self.person is not None:
            return self.person.language
        return language_of(self.event.language if self.event else None)

    @property
    def here(self) -> Address:
        """The chat of the conversation."""
        return Address(self.conversation.channel, self.conversation.chat_id)

    @property
    def service(self) -> TicketService:
        """Ticket operations in this transaction."""
        return TicketService(self.session, self.policies, self.clock)

    def t(self, key: str, **values: object) -> str:
        """A catalogue text in the person's language."""
        return text(self.lang, key, **values)

    def say(self, message: str, buttons: Buttons = ()) -> None:
        """Answer in the chat of the conversation."""
        self.out.say(self.here, message, buttons, self.person.id if self.person else None)

    def load(self, model: type[M]) -> M:
        """The open dialog's data, typed."""
        return model.model_validate(self.conversation.data)

    def update(self, model: type[M], **values: object) -> M:
        """Set fields of the open dialog's data and store it; the data as it is now."""
        data = self.load(model)
        for name, value in values.items():
            setattr(data, name, value)
        self.keep(data)
        return data

    def keep(self, data: BaseModel) -> None:
        """Store the open dialog's data."""
        self.conversation.data = data.model_dump(mode="json")
        self.touch()

    def touch(self) -> None:
        """The conversation row changed."""
        self.conversation.updated_at = self.clock.now()
        self.session.add(self.conversation)
