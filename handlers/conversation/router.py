"""The router: one inbound event → one transaction → the reply to deliver.

Commands work at every step (/report 报修, /cancel 取消, /help 帮助, /my 我的工单, /lang);
ticket buttons work whatever wizard is open; everything else goes to the open wizard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from handlers.clock import Clock
from handlers.conversation import fault_report, my_tickets, report_wizard, ticket_buttons, window
from handlers.conversation.context import Context
from handlers.conversation.registration import identify, join_code, welcome_stranger
from handlers.messages import Inbound, Reply
from handlers.outgoing import enqueue_reply
from handlers.sla.policy import PolicyBook
from handlers.texts import EN, ZH
from storage.engine import SessionFactory, transaction
from storage.models import DEFAULT_TIMEZONE, Site
from storage.repositories import inbox
from storage.repositories.conversations import conversation_for
from storage.repositories.people import sites_of

MAX_TEXT = 2000
REPORT = {"/report", "报修"}
CANCEL = {"/cancel", "取消"}
HELP = {"/help", "帮助", "/start"}
MY = {"/my", "我的工单"}


async def _caption_pressed_card(ctx: Context, card: str) -> None:
    """Turn the pressed card's buttons into one line: what was done, by whom, when."""
    sites = await sites_of(ctx.session, ctx.person.id or 0)
    site = await ctx.session.get(Site, min(sites)) if sites else None
    zone = ZoneInfo(site.timezone if site else DEFAULT_TIMEZONE)
    what = (ctx.reply.notice or ctx.t("card.pressed", name=ctx.person.name)).rstrip("。.")
    caption = ctx.t("card.caption", what=what, time=ctx.clock.now().astimezone(zone).strftime("%H:%M"))
    ctx.reply.say(ctx.here, caption, replaces=card)


def _command(message: str) -> tuple[str, str]:
    """("/my", "") from "/my@dutydesk_bot"; ("/start", "asset_X") from "/start asset_X"."""
    head, _, rest = message.strip().partition(" ")
    return head.split("@", 1)[0].lower() if head.startswith("/") else head, rest.strip()


@dataclass
class Router:
    """Handles inbound events for every channel."""

    sessions: SessionFactory
    policies: PolicyBook
    clock: Clock
    #: Called after each committed change (the scheduler moves its wake-up to new timers).
    after_commit: Callable[[], Awaitable[None]] | None = None

    async def handle(self, event: Inbound, inbox_key: str | None = None) -> Reply:
        """Everything one event causes, committed together with the messages it sends.

        With ``inbox_key`` the stored update is claimed and marked processed in the same
        transaction, so a redelivered or re-read update is handled exactly once. The reply's
        messages are outbox rows by the time this returns; its notice (the short answer to
        a pressed button) is for the channel to show.
        """
        async with transaction(self.sessions) as session:
            now = self.clock.now()
            if inbox_key is not None and not await inbox.claim(session, event.channel, inbox_key, now):
                return Reply()
            person = await identify(session, event)
            if person is None:
                reply = await welcome_stranger(session, event, self.clock)
            else:
                conversation = await conversation_for(
                    session, event.channel, event.chat_id, event.user_id, now
                )
                ctx = Context(session, self.clock, self.policies, event, person, conversation, Reply())
                await self._dispatch(ctx)
                if event.action and event.card:
                    await _caption_pressed_card(ctx, event.card)
                reply = ctx.reply
            await enqueue_reply(session, reply, now)
        await self._committed()
        return reply

    async def tick(self) -> Reply:
        """Time-driven work of conversations (the classification window)."""
        async with transaction(self.sessions) as session:
            reply = await window.tick(session, self.policies, self.clock)
            await enqueue_reply(session, reply, self.clock.now())
        if reply.messages:
            await self._committed()
        return reply

    async def _committed(self) -> None:
        if self.after_commit is not None:
            await self.after_commit()

    async def _dispatch(self, ctx: Context) -> None:
        event, state = ctx.event, ctx.conversation.state
        if event.text and len(event.text) > MAX_TEXT:
            ctx.say(ctx.t("too_long", limit=MAX_TEXT))
            return
        if event.action and event.action.startswith("t:"):
            await ticket_buttons.press(ctx, event.action)
            return
        command, argument = _command(event.text or "")
        if command in REPORT or (command == "/start" and argument.startswith("asset_")):
            await report_wizard.start(
                ctx, argument.removeprefix("asset_") or None if command == "/start" else None
            )
        elif command in CANCEL:
            had = state != "idle"
            ctx.reset()
            ctx.say(ctx.t("cancelled" if had else "nothing_to_cancel"))
        elif command in HELP and not join_code(event.text):
            ctx.say(ctx.t("help"))
        elif command == "/join" or join_code(event.text):
            ctx.say(ctx.t("join.already"))
        elif command in MY:
            await my_tickets.show(ctx)
        elif command == "/lang":
            if argument:
                ctx.person.language = EN if argument.lower().startswith("en") else ZH
            else:
                ctx.person.language = EN if ctx.lang == ZH else ZH
            ctx.session.add(ctx.person)
            ctx.say(ctx.t("lang.set"))
        elif state.startswith(report_wizard.PREFIX):
            await report_wizard.handle(ctx)
        elif state.startswith(fault_report.PREFIX):
            await fault_report.handle(ctx)
        elif event.action:
            ctx.reply.notice = ctx.t("stale_button")
        else:
            ctx.say(ctx.t("unknown"))
