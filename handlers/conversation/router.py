"""The router: one inbound event → one transaction → outbox rows.

Commands work at every step (/report 报修, /cancel 取消, /help 帮助, /my 我的工单, /lang);
ticket buttons work whatever dialog is open; everything else goes to the open dialog. A
stranger can only register. Every pressed button is answered (a toast on Telegram, the
pressed card's caption on WeCom, a line on the web chat), a tampered one with "expired".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from handlers.clock import Clock
from handlers.conversation import my_tickets, registration, report_wizard, ticket_buttons
from handlers.conversation.registration import join_code
from handlers.conversation.ticket_press import TicketPress
from handlers.dialogs import engine
from handlers.dialogs.buttons import decode
from handlers.dialogs.context import Context
from handlers.messages import Inbound
from handlers.outgoing import Outbox
from handlers.sla.policy import PolicyBook
from handlers.texts import EN, ZH
from storage.due import Wake, wake_after, wake_nobody
from storage.engine import SessionFactory, transaction
from storage.models import DEFAULT_TIMEZONE, Site
from storage.repositories import inbox
from storage.repositories.conversations import conversation_for
from storage.repositories.people import person_by_identity, sites_of

MAX_TEXT = 2000
MAX_TOAST = 200  # Telegram shows at most 200 characters in a callback answer
REPORT = {"/report", "报修"}
CANCEL = {"/cancel", "取消"}
HELP = {"/help", "帮助", "/start"}
MY = {"/my", "我的工单"}


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
    #: Told, after each commit, the earliest time something the transaction wrote falls due.
    wake: Wake = field(default=wake_nobody)

    async def handle(self, event: Inbound, inbox_key: str | None = None) -> bool:
        """Everything one event causes, committed together with the messages it sends.

        With ``inbox_key`` the stored update is claimed and marked processed in the same
        transaction, so a redelivered or re-read update is handled exactly once (False: it
        was handled before).
        """
        async with transaction(self.sessions) as session:
            now = self.clock.now()
            if inbox_key is not None and not await inbox.claim(session, event.channel, inbox_key, now):
                return False
            conversation = await conversation_for(session, event.channel, event.chat_id, event.user_id, now)
            person = await person_by_identity(session, event.channel, event.user_id)
            out = Outbox(session, now)
            ctx = Context(
                session, self.clock, self.policies, out, conversation, person, event, decode(event.action)
            )
            await self._dispatch(ctx)
            if event.action is not None:
                await _answer_press(ctx)
            await out.flush()
        wake_after(session, self.wake)
        return True

    async def _dispatch(self, ctx: Context) -> None:
        event = ctx.event
        assert event is not None
        if event.text and len(event.text) > MAX_TEXT:
            ctx.say(ctx.t("too_long", limit=MAX_TEXT))
            return
        if event.action is not None and ctx.button is None:  # tampered, truncated, or an old format
            ctx.notice = ctx.t("stale_button")
            return
        if ctx.person is None:
            await registration.welcome(ctx)
            return
        if isinstance(ctx.button, TicketPress):
            await ticket_buttons.press(ctx, ctx.button)
            return
        command, argument = _command(event.text or "")
        if command in REPORT or (command == "/start" and argument.startswith("asset_")):
            code = argument.removeprefix("asset_") if command == "/start" else ""
            await report_wizard.start(ctx, code or None)
        elif command in CANCEL:
            had = ctx.conversation.dialog is not None
            await engine.end(ctx)
            ctx.say(ctx.t("cancelled" if had else "nothing_to_cancel"))
        elif command in HELP and not join_code(event.text):
            ctx.say(ctx.t("help"))
        elif command == "/join" or join_code(event.text):
            ctx.say(ctx.t("join.already"))
        elif command in MY:
            await my_tickets.show(ctx)
        elif command == "/lang":
            me = ctx.me
            if argument:
                me.language = EN if argument.lower().startswith("en") else ZH
            else:
                me.language = EN if ctx.lang == ZH else ZH
            ctx.session.add(me)
            ctx.say(ctx.t("lang.set"))
        elif await engine.handle(ctx):
            pass
        elif event.action is not None:
            ctx.notice = ctx.t("stale_button")
        else:
            ctx.say(ctx.t("unknown"))


async def _answer_press(ctx: Context) -> None:
    """Answer a pressed button as the channel can: Telegram's toast (always, so the spinner
    stops), WeCom's pressed card turned into one line, or a line on the web chat when the
    press brought no other message."""
    event = ctx.event
    assert event is not None
    notice = ctx.notice
    if ctx.card_pressed:  # the pressed card itself changed: that is the answer (with a toast)
        if event.answer_token:
            ctx.out.answer(ctx.here, (notice or "")[:MAX_TOAST], event.answer_token)
        return
    if event.card_token:
        who = ctx.person.name if ctx.person else event.user_name
        what = (notice or ctx.t("card.pressed", name=who)).rstrip("。.")
        when = ctx.clock.now().astimezone(ZoneInfo(await _zone(ctx))).strftime("%H:%M")
        ctx.out.answer(ctx.here, ctx.t("card.caption", what=what, time=when)[:64], event.card_token)
    elif event.answer_token:
        ctx.out.answer(ctx.here, (notice or "")[:MAX_TOAST], event.answer_token)
    elif notice and not ctx.out.to(ctx.here):
        ctx.out.answer(ctx.here, notice, None)


async def _zone(ctx: Context) -> str:
    """The time zone of what was pressed: the ticket's site, else the person's (first) site."""
    site_id = ctx.site_id
    if site_id is None and ctx.person is not None:
        sites = await sites_of(ctx.session, ctx.person.id or 0)
        site_id = min(sites) if sites else None
    site = await ctx.session.get(Site, site_id) if site_id is not None else None
    return site.timezone if site else DEFAULT_TIMEZONE
