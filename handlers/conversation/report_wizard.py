"""The report wizard: subsystem → asset or place → what happened → level questions → confirm.

Diagram: report_wizard.md beside this file (kept in step with the table by a test). The
classification window counts from the reporter's first message (Conversation.started_at): its
reminder and its end are due rows of the dialog; when it runs out the ticket is filed with the
provisional level, unconfirmed, and the engineer is asked to call.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from handlers.conversation.cards import level_label, local_time, promise, where
from handlers.conversation.notify import Notifier
from handlers.dialogs.buttons import ButtonData
from handlers.dialogs.common import Confirm, YesNo, grid, yes_no_question, yes_no_word
from handlers.dialogs.context import Context
from handlers.dialogs.engine import (
    END,
    STAY,
    Deadline,
    Dialog,
    Edge,
    Flow,
    Input,
    Step,
    begin,
    register,
    schedule,
)
from handlers.messages import Button, IncomingFile
from handlers.sla.rules import QUESTION_DEGRADED, QUESTION_STOPPED, classification_window, level_from_answers
from handlers.texts import text
from handlers.tickets.service import site_policy
from storage.models import Asset, Attachment, Site, Subsystem
from storage.repositories.assets import asset_by_code, assets_of
from storage.repositories.people import sites_of
from storage.repositories.sites import subsystems
from storage.repositories.tickets import past_fixes

MAX_DESCRIPTION = 1000
MAX_PLACE = 120
MAX_ASSET_BUTTONS = 12


class State(StrEnum):
    """The steps of a report."""

    SITE = "site"
    SUBSYSTEM = "subsystem"
    ASSET = "asset"
    DESCRIBE = "describe"
    STOPPED = "stopped"
    DEGRADED = "degraded"
    CONFIRM = "confirm"


class ReportData(BaseModel):
    """What the reporter has said so far."""

    site_id: int | None = None
    subsystem_id: int | None = None
    asset_id: int | None = None
    place: str = ""
    description: str | None = None
    answers: dict[str, bool] = Field(default_factory=dict)
    files: list[int] = Field(default_factory=list)
    #: When the service received the first message (the window counts from when it was sent).
    received_at: datetime | None = None


class PickSite(ButtonData, prefix="rs"):
    """A site of the reporter."""

    site: int


class PickSubsystem(ButtonData, prefix="rb"):
    """A subsystem of the site."""

    subsystem: int


class PickAsset(ButtonData, prefix="ra"):
    """A device of the subsystem."""

    asset: int


# -- starting -------------------------------------------------------------------------------


async def start(ctx: Context, asset_code: str | None = None) -> None:
    """Begin a report; the window starts at the message's time. A device's QR link pre-fills it."""
    sites = await sites_of(ctx.session, ctx.me.id or 0)
    data = ReportData(received_at=ctx.event.received_at if ctx.event else None)
    state = State.SITE
    if asset_code:
        asset = await _asset_by_code(ctx, sorted(sites), asset_code)
        if asset is not None:
            data.site_id, data.subsystem_id, data.asset_id = asset.site_id, asset.subsystem_id, asset.id
            state = State.DESCRIBE
        else:
            ctx.say(ctx.t("report.asset_unknown", code=asset_code))
    if state is State.SITE and len(sites) == 1:
        data.site_id, state = next(iter(sites)), State.SUBSYSTEM
    await begin(ctx, REPORT, state, data.model_dump(mode="json"))
    policy = await site_policy(ctx.session, ctx.policies, data.site_id) if data.site_id else ctx.policies.base
    assert ctx.conversation.started_at is not None
    window = classification_window(ctx.conversation.started_at, policy)
    schedule(ctx, REPORT, "remind", window.remind_at)
    schedule(ctx, REPORT, "expire", window.ends_at)


async def _asset_by_code(ctx: Context, site_ids: list[int], code: str) -> Asset | None:
    for site_id in site_ids:
        if (asset := await asset_by_code(ctx.session, site_id, code)) is not None:
            return asset
    return None


# -- the questions --------------------------------------------------------------------------


async def _ask_site(ctx: Context) -> None:
    sites = await sites_of(ctx.session, ctx.me.id or 0)
    choices = [
        Button(site.name, PickSite(sid).pack())
        for sid in sorted(sites)
        if (site := await ctx.session.get(Site, sid))
    ]
    ctx.say(ctx.t("report.site"), grid(choices))


async def _ask_subsystem(ctx: Context) -> None:
    options = await subsystems(ctx.session, ctx.load(ReportData).site_id or 0)
    ctx.say(
        ctx.t("report.subsystem"), grid([Button(s.name, PickSubsystem(s.id or 0).pack()) for s in options])
    )


async def _ask_asset(ctx: Context) -> None:
    data = ctx.load(ReportData)
    assets = list(await assets_of(ctx.session, data.site_id or 0, data.subsystem_id or 0))[:MAX_ASSET_BUTTONS]
    if not assets:
        ctx.say(ctx.t("report.no_assets"))
        return
    choices = [Button(f"{a.code} {a.name}"[:30], PickAsset(a.id or 0).pack()) for a in assets]
    ctx.say(ctx.t("report.asset"), grid(choices))


async def _ask_description(ctx: Context) -> None:
    data = ctx.load(ReportData)
    ctx.say(
        ctx.t(
            "report.describe", where=await where(ctx.session, (data.subsystem_id, data.asset_id, data.place))
        )
    )


async def _ask_confirm(ctx: Context) -> None:
    data = ctx.load(ReportData)
    assert data.site_id is not None
    policy = await site_policy(ctx.session, ctx.policies, data.site_id)
    level, _ = level_from_answers(data.answers, policy)
    place = await where(ctx.session, (data.subsystem_id, data.asset_id, data.place))
    lines = [
        ctx.t(
            "report.summary",
            where=place,
            description=data.description or "",
            promise=promise(ctx.lang, level, policy),
        )
    ]
    history = await past_fixes(
        ctx.session, data.site_id, asset_id=data.asset_id, subsystem_id=data.subsystem_id
    )
    if history:
        site = await ctx.session.get(Site, data.site_id)
        assert site is not None
        lines.append(ctx.t("report.history"))
        for ticket, report in history:
            date = local_time(site, ticket.reported_at, "%Y-%m-%d")
            lines.append(ctx.t("report.history_line", date=date, fix=report.fix[:60]))
    buttons = (
        (
            Button(ctx.t("btn.confirm"), Confirm(True).pack()),
            Button(ctx.t("btn.cancel"), Confirm(False).pack()),
        ),
    )
    ctx.say("\n".join(lines), buttons)


# -- the answers ----------------------------------------------------------------------------


async def _site(ctx: Context, pick: PickSite) -> State:
    if pick.site not in await sites_of(ctx.session, ctx.me.id or 0):
        return State.SITE
    ctx.update(ReportData, site_id=pick.site)
    return State.SUBSYSTEM


async def _subsystem(ctx: Context, pick: PickSubsystem) -> State:
    subsystem = await ctx.session.get(Subsystem, pick.subsystem)
    if subsystem is None or subsystem.site_id != ctx.load(ReportData).site_id:
        return State.SUBSYSTEM
    ctx.update(ReportData, subsystem_id=subsystem.id)
    return State.ASSET


async def _asset(ctx: Context, pick: PickAsset) -> State:
    asset = await ctx.session.get(Asset, pick.asset)
    if asset is None or asset.site_id != ctx.load(ReportData).site_id:
        return State.ASSET
    ctx.update(ReportData, asset_id=asset.id)
    return State.DESCRIBE


async def _place(ctx: Context, typed: str) -> State:
    ctx.update(ReportData, place=typed.strip()[:MAX_PLACE])
    return State.DESCRIBE


async def _file(ctx: Context, file: IncomingFile) -> State | Flow:
    data = ctx.load(ReportData)
    row = Attachment(
        conversation_id=ctx.conversation.id,
        kind=file.kind,
        mime_type=file.mime_type,
        size=file.size,
        filename=file.name,
        location=f"{ctx.here.channel.value}:{file.file_id}",
        created_at=ctx.clock.now(),
    )
    ctx.session.add(row)
    await ctx.session.flush()
    data.files.append(row.id or 0)
    ctx.keep(data)
    caption = (ctx.event.text or "").strip() if ctx.event else ""
    if caption:
        return await _describe(ctx, caption)
    ctx.say(ctx.t("report.file_kept"))
    return STAY


async def _describe(ctx: Context, typed: str) -> State:
    ctx.update(ReportData, description=typed.strip()[:MAX_DESCRIPTION])
    return State.STOPPED


def _answer(question: str) -> Any:
    async def answer(ctx: Context, value: YesNo | str) -> State | Flow:
        yes = value.yes if isinstance(value, YesNo) else yes_no_word(value)
        if yes is None:
            ctx.say(ctx.t("report.yes_no"))
            return STAY
        data = ctx.load(ReportData)
        data.answers[question] = yes
        ctx.keep(data)
        _, settled = level_from_answers(
            data.answers, await site_policy(ctx.session, ctx.policies, data.site_id or 0)
        )
        return State.CONFIRM if settled else State.DEGRADED

    return answer


async def _confirm(ctx: Context, choice: Confirm) -> Flow:
    if not choice.ok:
        ctx.say(ctx.t("cancelled"))
        return END
    await file_ticket(ctx, confirmed=True)
    return END


# -- the window -----------------------------------------------------------------------------


async def _remind(ctx: Context) -> Flow:
    data = ctx.load(ReportData)
    policy = await site_policy(ctx.session, ctx.policies, data.site_id) if data.site_id else ctx.policies.base
    assert ctx.conversation.started_at is not None
    window = classification_window(ctx.conversation.started_at, policy)
    level, _ = level_from_answers(data.answers, policy)
    minutes = max(math.ceil((window.ends_at - ctx.clock.now()).total_seconds() / 60), 1)
    ctx.say(ctx.t("report.window_reminder", minutes=minutes, level=level_label(ctx.lang, level)))
    return STAY


async def _expire(ctx: Context) -> Flow:
    if ctx.load(ReportData).site_id is None:  # not even a site chosen: nothing to file
        ctx.say(ctx.t("cancelled"))
    else:
        await file_ticket(ctx, confirmed=False)
    return END


async def file_ticket(ctx: Context, *, confirmed: bool) -> None:
    """File the ticket from what the reporter said and send it to the engineers and supervisors.

    ``confirmed`` False is the window's end: the provisional level, and a call to the reporter.
    """
    data = ctx.load(ReportData)
    assert data.site_id is not None
    reporter = ctx.me
    policy = await site_policy(ctx.session, ctx.policies, data.site_id)
    level, settled = level_from_answers(data.answers, policy)
    ticket = await ctx.service.report(
        site_id=data.site_id,
        reporter_id=reporter.id or 0,
        subsystem_id=data.subsystem_id,
        asset_id=data.asset_id,
        place=data.place,
        description=data.description or "—",
        reported_at=ctx.conversation.started_at,
        received_at=data.received_at,
        level=level,
        confirmed=confirmed and settled,
    )
    for file_id in data.files:
        if (attachment := await ctx.session.get(Attachment, file_id)) is not None:
            attachment.ticket_id = ticket.id
            ctx.session.add(attachment)
    label = level_label(ctx.lang, ticket.level, confirmed=ticket.level_confirmed)
    ctx.say(ctx.t("report.created" if confirmed else "report.window_expired", id=ticket.id, level=label))

    def headline(reader: str) -> str:
        first = text(reader, "ticket.new")
        return first if ticket.level_confirmed else f"{first}\n{text(reader, 'ticket.call_reporter')}"

    notifier = Notifier(ctx.session, ctx.policies, ctx.clock, ctx.out)
    await notifier.tell(ticket, headline, exclude=reporter.id, new=True)


# -- the table ------------------------------------------------------------------------------

S = State
REPORT: Dialog[State] = register(
    Dialog(
        name="report",
        states=State,
        starts=(
            (S.SITE, "报修 (reporter of several sites)"),
            (S.SUBSYSTEM, "报修 (one site)"),
            (S.DESCRIBE, "a device's QR link"),
        ),
        steps={
            S.SITE: Step(_ask_site, (Edge(PickSite, (S.SUBSYSTEM, S.SITE), "a site", _site),)),
            S.SUBSYSTEM: Step(
                _ask_subsystem, (Edge(PickSubsystem, (S.ASSET, S.SUBSYSTEM), "a subsystem", _subsystem),)
            ),
            S.ASSET: Step(
                _ask_asset,
                (
                    Edge(PickAsset, (S.DESCRIBE, S.ASSET), "a device", _asset),
                    Edge(Input.TEXT, (S.DESCRIBE,), "a place, typed", _place),
                ),
            ),
            S.DESCRIBE: Step(
                _ask_description,
                (
                    Edge(
                        Input.FILE,
                        (STAY, S.STOPPED),
                        "a photo or voice note (kept; its caption describes)",
                        _file,
                    ),
                    Edge(Input.TEXT, (S.STOPPED,), "what happened", _describe),
                ),
            ),
            S.STOPPED: Step(
                yes_no_question("report.q_stopped"),
                (
                    Edge(YesNo, (S.CONFIRM, S.DEGRADED), "是: level 1 / 否", _answer(QUESTION_STOPPED)),
                    Edge(
                        Input.TEXT, (S.CONFIRM, S.DEGRADED, STAY), "是 / 否 typed", _answer(QUESTION_STOPPED)
                    ),
                ),
            ),
            S.DEGRADED: Step(
                yes_no_question("report.q_degraded"),
                (
                    Edge(YesNo, (S.CONFIRM,), "是: level 2 / 否: level 3", _answer(QUESTION_DEGRADED)),
                    Edge(Input.TEXT, (S.CONFIRM, STAY), "是 / 否 typed", _answer(QUESTION_DEGRADED)),
                ),
            ),
            S.CONFIRM: Step(
                _ask_confirm, (Edge(Confirm, (END,), "确认提交: ticket filed / 取消", _confirm),)
            ),
        },
        deadlines=(
            Deadline("remind", "half the classification window: a reminder", (STAY,), _remind),
            Deadline("expire", "the window's end: ticket filed at the provisional level", (END,), _expire),
        ),
    ),
    __file__,
)
