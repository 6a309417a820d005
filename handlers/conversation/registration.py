"""Registration: a chat account nobody knows joins a site with an invite code.

Diagram: registration.md beside this file. A stranger's first message opens the dialog; it
is answered, in Chinese and English, with how to join. "/join CODE", the deep link
"/start join_CODE", or the bare code typed afterwards, joins with the invite's site and role.
"""

from __future__ import annotations

import re
from enum import StrEnum

from handlers.dialogs.context import Context
from handlers.dialogs.engine import (
    END,
    STAY,
    Dialog,
    Edge,
    Flow,
    Input,
    Step,
    begin,
    handle,
    open_dialog,
    register,
)
from handlers.texts import text
from storage.models import Person, Site
from storage.repositories.invites import usable_invite
from storage.repositories.people import add_membership, link_identity

JOIN_PREFIXES = ("/join ", "/start join_")
#: What an invite code looks like when typed bare (storage.repositories.invites makes them).
BARE_CODE = re.compile(r"[2-9A-Za-z]{6,16}")
MAX_NAME = 60


class State(StrEnum):
    """Registration has one question: the invite code."""

    CODE = "code"


def join_code(message: str | None) -> str | None:
    """The invite code in "/join CODE" or the deep link "/start join_CODE"."""
    if not message:
        return None
    for prefix in JOIN_PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix) :].strip() or None
    return None


async def welcome(ctx: Context) -> None:
    """A stranger wrote: open registration (silently) and take the message as its first answer."""
    if open_dialog(ctx) is not REGISTRATION:
        await begin(ctx, REGISTRATION, State.CODE, {}, ask=False)
    await handle(ctx)


async def _ask_code(ctx: Context) -> None:
    ctx.say(ctx.t("stranger"))


async def _code(ctx: Context, typed: str) -> Flow:
    code = join_code(typed)
    if code is None and BARE_CODE.fullmatch(typed.strip()) and ctx.conversation.data.get("asked"):
        code = typed.strip()
    if code is None:
        ctx.conversation.data = {"asked": True}
        ctx.touch()
        ctx.say(ctx.t("stranger"))
        return STAY
    event, now = ctx.event, ctx.clock.now()
    assert event is not None
    invite = await usable_invite(ctx.session, code, now)
    if invite is None:
        ctx.say(ctx.t("join.bad_code"))
        return STAY
    lang = ctx.lang
    person = Person(name=(event.user_name or event.user_id)[:MAX_NAME], language=lang, created_at=now)
    ctx.session.add(person)
    await ctx.session.flush()
    assert person.id is not None
    await link_identity(ctx.session, person.id, event.channel, event.user_id)
    await add_membership(ctx.session, person.id, invite.site_id, invite.role)
    invite.used_by_id, invite.used_at = person.id, now
    ctx.session.add(invite)
    site = await ctx.session.get(Site, invite.site_id)
    assert site is not None
    ctx.person = person
    role = text(lang, f"role.{invite.role}")
    ctx.say(
        text(lang, "join.done", name=person.name, site=site.name, role=role) + "\n\n" + text(lang, "help")
    )
    return END


REGISTRATION: Dialog[State] = register(
    Dialog(
        name="registration",
        states=State,
        starts=((State.CODE, "a stranger writes"),),
        steps={
            State.CODE: Step(
                _ask_code,
                (Edge(Input.TEXT, (END, STAY), "/join CODE (or the code): joined / how to join", _code),),
            )
        },
    ),
    __file__,
)
