"""The fault handling report (故障处理报告) asked after 已解决: cause → fix → prevention.

Diagram: fault_report.md beside this file. /cancel leaves the ticket resolved without a report.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from handlers.conversation.report_wizard import MAX_DESCRIPTION
from handlers.dialogs.common import question
from handlers.dialogs.context import Context
from handlers.dialogs.engine import END, Dialog, Edge, Flow, Input, Step, begin, register
from storage.models import FaultReport


class State(StrEnum):
    """The three questions of the report."""

    CAUSE = "cause"
    FIX = "fix"
    PREVENTION = "prevention"


class FaultReportData(BaseModel):
    """The answers so far."""

    ticket_id: int
    cause: str = ""
    fix: str = ""


async def start(ctx: Context, ticket_id: int) -> None:
    """Ask the engineer for the report of a ticket they just resolved."""
    await begin(ctx, FAULT_REPORT, State.CAUSE, FaultReportData(ticket_id=ticket_id).model_dump())


async def _cause(ctx: Context, typed: str) -> State:
    ctx.update(FaultReportData, cause=typed.strip()[:MAX_DESCRIPTION])
    return State.FIX


async def _fix(ctx: Context, typed: str) -> State:
    ctx.update(FaultReportData, fix=typed.strip()[:MAX_DESCRIPTION])
    return State.PREVENTION


async def _prevention(ctx: Context, typed: str) -> Flow:
    data = ctx.load(FaultReportData)
    ctx.session.add(
        FaultReport(
            ticket_id=data.ticket_id,
            author_id=ctx.me.id or 0,
            cause=data.cause,
            fix=data.fix,
            prevention=typed.strip()[:MAX_DESCRIPTION],
            created_at=ctx.clock.now(),
        )
    )
    ctx.say(ctx.t("fault.saved", id=data.ticket_id))
    return END


S = State
FAULT_REPORT: Dialog[State] = register(
    Dialog(
        name="fault_report",
        states=State,
        starts=((S.CAUSE, "the engineer presses 已解决"),),
        steps={
            S.CAUSE: Step(question("fault.cause"), (Edge(Input.TEXT, (S.FIX,), "the cause", _cause),)),
            S.FIX: Step(question("fault.fix"), (Edge(Input.TEXT, (S.PREVENTION,), "what fixed it", _fix),)),
            S.PREVENTION: Step(
                question("fault.prevention"),
                (Edge(Input.TEXT, (END,), "prevention advice: report saved", _prevention),),
            ),
        },
    ),
    __file__,
)
