"""The classification window: a reminder halfway, and at its end the ticket is filed anyway.

Called by the scheduler with the current time; the Conversation row is the truth, so any
process may run it and a restart loses nothing.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.conversation import report_wizard
from handlers.conversation.cards import level_label
from handlers.messages import Address, Reply
from handlers.sla.policy import Policy, PolicyBook
from handlers.sla.rules import classification_window, level_from_answers
from handlers.texts import text
from handlers.tickets.service import site_policy
from storage.models import Conversation, Person
from storage.repositories.conversations import IDLE, active_since
from storage.repositories.people import person_by_identity


async def tick(session: AsyncSession, policies: PolicyBook, clock: Clock) -> Reply:
    """Remind reporters halfway through the window; file the tickets whose window ran out."""
    reply = Reply()
    now = clock.now()
    for conversation in await active_since(session, report_wizard.PREFIX, now):
        person = await person_by_identity(session, conversation.channel, conversation.user_id)
        if person is None or conversation.started_at is None:
            continue
        policy = await _policy(session, policies, conversation)
        window = classification_window(conversation.started_at, policy)
        if now >= window.ends_at:
            await _expire(session, policies, clock, reply, person, conversation)
        elif now >= window.remind_at and not conversation.data.get("reminded"):
            level, _ = level_from_answers(conversation.data.get("answers", {}), policy)
            minutes = max(int((window.ends_at - now).total_seconds() // 60), 1)
            message = text(
                person.language,
                "report.window_reminder",
                minutes=minutes,
                level=level_label(person.language, level),
            )
            reply.say(Address(conversation.channel, conversation.chat_id), message, (), person.id)
            conversation.data = {**conversation.data, "reminded": True}
            session.add(conversation)
    return reply


async def _policy(session: AsyncSession, policies: PolicyBook, conversation: Conversation) -> Policy:
    site_id = conversation.data.get("site_id")
    return await site_policy(session, policies, site_id) if site_id else policies.base


async def _expire(
    session: AsyncSession,
    policies: PolicyBook,
    clock: Clock,
    reply: Reply,
    person: Person,
    conversation: Conversation,
) -> None:
    if "site_id" in conversation.data:
        await report_wizard.file_ticket(
            session, policies, clock, reply, person, conversation, confirmed=False
        )
    else:  # not even a site chosen: nothing to file
        reply.say(Address(conversation.channel, conversation.chat_id), text(person.language, "cancelled"))
    conversation.state, conversation.data, conversation.started_at = IDLE, {}, None
    conversation.updated_at = clock.now()
    session.add(conversation)
