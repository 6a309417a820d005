"""The report wizard: subsystem → asset or place → what happened → level questions → confirm.

State diagram: report_wizard.md beside this file. State lives in the Conversation row, so a
restart resumes at the same step and any process can take the next message. The
classification window counts from the first message (Conversation.started_at); when it
runs out, window.py files the ticket with the provisional level.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.conversation.cards import level_label, promise, where
from handlers.conversation.context import Buttons, Context
from handlers.conversation.notify import Notifier
from handlers.messages import Address, Button, Reply
from handlers.sla.policy import PolicyBook
from handlers.sla.rules import QUESTION_DEGRADED, QUESTION_STOPPED, level_from_answers
from handlers.texts import text
from handlers.tickets.service import TicketService, site_policy
from storage.models import Asset, Attachment, Conversation, Person, Site, Subsystem, Ticket
from storage.repositories.assets import asset_by_code, assets_of
from storage.repositories.people import sites_of
from storage.repositories.sites import subsystems
from storage.repositories.tickets import past_fixes

PREFIX = "report."
SITE, SUBSYSTEM, ASSET, DESCRIBE = "report.site", "report.subsystem", "report.asset", "report.describe"
STOPPED, DEGRADED, CONFIRM = "report.stopped", "report.degraded", "report.confirm"
MAX_DESCRIPTION = 1000
MAX_ASSET_BUTTONS = 12
YES_WORDS = {"是", "是的", "y", "yes", "对", "有"}
NO_WORDS = {"否", "不是", "n", "no", "没有", "无"}


def _grid(buttons: list[Button], width: int = 2) -> Buttons:
    return tuple(tuple(buttons[i : i + width]) for i in range(0, len(buttons), width))


async def start(ctx: Context, asset_code: str | None = None) -> None:
    """Begin a report; the window starts now. A device's QR link pre-fills the asset."""
    sites = await sites_of(ctx.session, ctx.person.id or 0)
    data: dict[str, Any] = {"answers": {}, "files": []}
    ctx.conversation.started_at = ctx.clock.now()
    if asset_code:
        for site_id in sorted(sites):
            asset = await asset_by_code(ctx.session, site_id, asset_code)
            if asset is not None:
                data.update(site_id=site_id, subsystem_id=asset.subsystem_id, asset_id=asset.id)
                ctx.set_state(DESCRIBE, data)
                await _ask(ctx)
                return
        ctx.say(ctx.t("report.asset_unknown", code=asset_code))
    if len(sites) == 1:
        data["site_id"] = next(iter(sites))
        ctx.set_state(SUBSYSTEM, data)
    else:
        ctx.set_state(SITE, data)
    await _ask(ctx)


async def _ask(ctx: Context) -> None:
    """Prompt for the current step."""
    state, data = ctx.conversation.state, ctx.conversation.data
    if state == SITE:
        sites = await sites_of(ctx.session, ctx.person.id or 0)
        choices = [
            Button(site.name, f"w:site:{site.id}")
            for sid in sorted(sites)
            if (site := await ctx.session.get(Site, sid))
        ]
        ctx.say(ctx.t("report.site"), _grid(choices))
    elif state == SUBSYSTEM:
        options = await subsystems(ctx.session, data["site_id"])
        ctx.say(ctx.t("report.subsystem"), _grid([Button(s.name, f"w:sub:{s.id}") for s in options]))
    elif state == ASSET:
        assets = list(await assets_of(ctx.session, data["site_id"], data["subsystem_id"]))[:MAX_ASSET_BUTTONS]
        if assets:
            ctx.say(
                ctx.t("report.asset"),
                _grid([Button(f"{a.code} {a.name}"[:30], f"w:as:{a.id}") for a in assets]),
            )
        else:
            ctx.say(ctx.t("report.no_assets"))
    elif state == DESCRIBE:
        place = await where(
            ctx.session, (data.get("subsystem_id"), data.get("asset_id"), data.get("place", ""))
        )
        ctx.say(ctx.t("report.describe", where=place))
    elif state in (STOPPED, DEGRADED):
        key = "report.q_stopped" if state == STOPPED else "report.q_degraded"
        ctx.say(ctx.t(key), ((Button(ctx.t("btn.yes"), "w:y"), Button(ctx.t("btn.no"), "w:n")),))
    elif state == CONFIRM:
        await _summary(ctx)


async def handle(ctx: Context) -> None:
    """Take the next message or button press of a report in progress."""
    event, state, data = ctx.event, ctx.conversation.state, dict(ctx.conversation.data)
    action = event.action or ""
    if action.startswith("w:") and not _fits(state, action):
        ctx.reply.notice = ctx.t("stale_button")
        await _ask(ctx)
        return
    if state == SITE and action.startswith("w:site:"):
        site_id = int(action.split(":")[2])
        if site_id in await sites_of(ctx.session, ctx.person.id or 0):
            data["site_id"] = site_id
            ctx.set_state(SUBSYSTEM, data)
    elif state == SUBSYSTEM and action.startswith("w:sub:"):
        subsystem = await ctx.session.get(Subsystem, int(action.split(":")[2]))
        if subsystem is not None and subsystem.site_id == data["site_id"]:
            data["subsystem_id"] = subsystem.id
            ctx.set_state(ASSET, data)
    elif state == ASSET and (action.startswith("w:as:") or event.text):
        if action:
            asset = await ctx.session.get(Asset, int(action.split(":")[2]))
            if asset is None or asset.site_id != data["site_id"]:
                await _ask(ctx)
                return
            data["asset_id"] = asset.id
        else:
            data["place"] = (event.text or "").strip()[:120]
        ctx.set_state(DESCRIBE, data)
    elif state == DESCRIBE and (event.text or event.file):
        if event.file is not None:
            await _keep_file(ctx, data)
        if not event.text:
            ctx.set_state(DESCRIBE, data)
            ctx.say(ctx.t("report.file_kept"))
            return
        data["description"] = event.text.strip()
        ctx.set_state(STOPPED, data)
    elif state in (STOPPED, DEGRADED):
        answer = _yes_no(action, event.text)
        if answer is None:
            ctx.say(ctx.t("report.yes_no"))
        else:
            data["answers"] = {
                **data.get("answers", {}),
                (QUESTION_STOPPED if state == STOPPED else QUESTION_DEGRADED): answer,
            }
            _, settled = level_from_answers(
                data["answers"], await site_policy(ctx.session, ctx.policies, data["site_id"])
            )
            ctx.set_state(CONFIRM if settled else DEGRADED, data)
    elif state == CONFIRM and action in ("w:ok", "w:x"):
        if action == "w:x":
            ctx.reset()
            ctx.say(ctx.t("cancelled"))
            return
        await file_ticket(
            ctx.session, ctx.policies, ctx.clock, ctx.reply, ctx.person, ctx.conversation, confirmed=True
        )
        ctx.reset()
        return
    await _ask(ctx)


def _fits(state: str, action: str) -> bool:
    expected = {
        SITE: "w:site:",
        SUBSYSTEM: "w:sub:",
        ASSET: "w:as:",
        STOPPED: "w:",
        DEGRADED: "w:",
        CONFIRM: "w:",
    }
    prefix = expected.get(state)
    if prefix is None:
        return False
    if state in (STOPPED, DEGRADED):
        return action in ("w:y", "w:n")
    if state == CONFIRM:
        return action in ("w:ok", "w:x")
    return action.startswith(prefix)


def _yes_no(action: str, typed: str | None) -> bool | None:
    if action in ("w:y", "w:n"):
        return action == "w:y"
    word = (typed or "").strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


async def _keep_file(ctx: Context, data: dict[str, Any]) -> None:
    file = ctx.event.file
    assert file is not None
    row = Attachment(
        conversation_id=ctx.conversation.id,
        kind=file.kind,
        mime_type=file.mime_type,
        size=file.size,
        filename=file.name,
        location=f"{ctx.event.channel.value}:{file.file_id}",
        created_at=ctx.clock.now(),
    )
    ctx.session.add(row)
    await ctx.session.flush()
    data["files"] = [*data.get("files", []), row.id]


async def _summary(ctx: Context) -> None:
    data = ctx.conversation.data
    policy = await site_policy(ctx.session, ctx.policies, data["site_id"])
    level, _ = level_from_answers(data.get("answers", {}), policy)
    place = await where(ctx.session, (data.get("subsystem_id"), data.get("asset_id"), data.get("place", "")))
    lines = [
        ctx.t(
            "report.summary",
            where=place,
            description=data.get("description", ""),
            promise=promise(ctx.lang, level, policy),
        )
    ]
    history = await past_fixes(
        ctx.session, data["site_id"], asset_id=data.get("asset_id"), subsystem_id=data.get("subsystem_id")
    )
    if history:
        lines.append(ctx.t("report.history"))
        for ticket, report in history:
            lines.append(
                ctx.t(
                    "report.history_line", date=ticket.reported_at.strftime("%Y-%m-%d"), fix=report.fix[:60]
                )
            )
    ctx.say("\n".join(lines), ((Button(ctx.t("btn.confirm"), "w:ok"), Button(ctx.t("btn.cancel"), "w:x")),))


async def file_ticket(
    session: AsyncSession,
    policies: PolicyBook,
    clock: Clock,
    reply: Reply,
    person: Person,
    conversation: Conversation,
    *,
    confirmed: bool,
) -> Ticket:
    """Create the ticket from the wizard's data and send it to the engineers and supervisors.

    ``confirmed`` False is the window's end: the provisional level, and a call to the reporter.
    """
    data = conversation.data
    service = TicketService(session, policies, clock)
    assert person.id is not None
    policy = await site_policy(session, policies, data["site_id"])
    level, settled = level_from_answers(data.get("answers", {}), policy)
    ticket = await service.report(
        site_id=data["site_id"],
        reporter_id=person.id,
        subsystem_id=data.get("subsystem_id"),
        asset_id=data.get("asset_id"),
        place=data.get("place", ""),
        description=data.get("description") or "—",
        reported_at=conversation.started_at,
    )
    assert ticket.id is not None
    await service.classify(
        ticket.id, person.id if confirmed else None, level, confirmed=confirmed and settled
    )
    for file_id in data.get("files", []):
        attachment = await session.get(Attachment, file_id)
        if attachment is not None:
            attachment.ticket_id = ticket.id
            session.add(attachment)
    notifier = Notifier(session, policies, clock, reply)
    lang = person.language
    key = "report.created" if confirmed else "report.window_expired"
    label = level_label(lang, ticket.level, confirmed=ticket.level_confirmed)
    to = Address(conversation.channel, conversation.chat_id)
    reply.say(to, text(lang, key, id=ticket.id, level=label), (), person.id)

    def headline(reader: str) -> str:
        first = text(reader, "ticket.new")
        return first if ticket.level_confirmed else f"{first}\n{text(reader, 'ticket.call_reporter')}"

    await notifier.tell(ticket, headline, exclude=person.id, new=True)
    return ticket
