"""What one handled inbound event works with: the transaction, the person, the reply."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.messages import Address, Button, Inbound, Reply
from handlers.sla.policy import PolicyBook
from handlers.texts import text
from handlers.tickets.service import TicketService
from storage.models import Conversation, Person
from storage.repositories.conversations import IDLE

Buttons = tuple[tuple[Button, ...], ...]


@dataclass
class Context:
    """One inbound event being handled inside one transaction."""

    session: AsyncSession
    clock: Clock
    policies: PolicyBook
    event: Inbound
    person: Person
    conversation: Conversation
    reply: Reply

    @property
    def lang(self) -> str:
        """The person's language."""
        return self.person.language

    @property
    def here(self) -> Address:
        """The chat the event came from."""
        return Address(self.event.channel, self.event.chat_id)

    @property
    def service(self) -> TicketService:
        """Ticket operations in this transaction."""
        return TicketService(self.session, self.policies, self.clock)

    def t(self, key: str, **values: object) -> str:
        """A catalogue text in the person's language."""
        return text(self.lang, key, **values)

    def say(self, message: str, buttons: Buttons = ()) -> None:
        """Answer in the chat the event came from."""
        self.reply.say(self.here, message, buttons, self.person.id)

    def set_state(self, state: str, data: dict[str, object] | None = None) -> None:
        """Move the wizard to ``state`` (data replaced when given)."""
        self.conversation.state = state
        if data is not None:
            self.conversation.data = data
        self.conversation.updated_at = self.clock.now()
        self.session.add(self.conversation)

    def reset(self) -> None:
        """Back to idle, wizard data dropped."""
        self.conversation.started_at = None
        self.set_state(IDLE, {})
