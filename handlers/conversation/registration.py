"""Who is writing: known chat accounts, strangers, and joining with an invite code."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.messages import Address, Inbound, Reply
from handlers.texts import language_of, text
from storage.models import Person, Site
from storage.repositories.invites import usable_invite
from storage.repositories.people import add_membership, link_identity, person_by_identity

JOIN_PREFIXES = ("/join ", "/start join_")


def join_code(message: str | None) -> str | None:
    """The invite code in "/join CODE" or the deep link "/start join_CODE"."""
    if not message:
        return None
    for prefix in JOIN_PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix) :].strip() or None
    return None


async def identify(session: AsyncSession, event: Inbound) -> Person | None:
    """The registered person behind the chat account, if any."""
    return await person_by_identity(session, event.channel, event.user_id)


async def welcome_stranger(session: AsyncSession, event: Inbound, clock: Clock) -> Reply:
    """Let a stranger join with a valid code; otherwise say, in both languages, how to."""
    reply = Reply()
    here = Address(event.channel, event.chat_id)
    lang = language_of(event.language)
    code = join_code(event.text)
    if code is None:
        reply.say(here, text(lang, "stranger"))
        return reply
    now = clock.now()
    invite = await usable_invite(session, code, now)
    if invite is None:
        reply.say(here, text(lang, "join.bad_code"))
        return reply
    person = Person(name=(event.user_name or event.user_id)[:60], language=lang, created_at=now)
    session.add(person)
    await session.flush()
    assert person.id is not None
    await link_identity(session, person.id, event.channel, event.user_id)
    await add_membership(session, person.id, invite.site_id, invite.role)
    invite.used_by_id, invite.used_at = person.id, now
    session.add(invite)
    site = await session.get(Site, invite.site_id)
    assert site is not None
    role = text(lang, f"role.{invite.role}")
    reply.say(
        here,
        text(lang, "join.done", name=person.name, site=site.name, role=role) + "\n\n" + text(lang, "help"),
    )
    return reply
