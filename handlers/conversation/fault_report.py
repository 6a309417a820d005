"""The fault handling report (故障处理报告) asked after 已解决: cause → fix → prevention.

```mermaid
stateDiagram-v2
    [*] --> cause: engineer presses 已解决
    cause --> fix: text
    fix --> prevention: text
    prevention --> [*]: text (report saved with the ticket)
    cause --> [*]: /cancel (the ticket stays resolved; no report)
```
"""

from __future__ import annotations

from handlers.conversation.context import Context
from handlers.conversation.report_wizard import MAX_DESCRIPTION
from storage.models import FaultReport

PREFIX = "fault."
CAUSE, FIX, PREVENTION = "fault.cause", "fault.fix", "fault.prevention"
NEXT = {CAUSE: FIX, FIX: PREVENTION}


def start(ctx: Context, ticket_id: int) -> None:
    """Ask the engineer for the report of a ticket they just resolved."""
    ctx.conversation.started_at = None
    ctx.set_state(CAUSE, {"ticket_id": ticket_id})
    ctx.say(ctx.t(CAUSE))


async def handle(ctx: Context) -> None:
    """Take the next answer."""
    answer = (ctx.event.text or "").strip()
    state = ctx.conversation.state
    if not answer:
        ctx.say(ctx.t(state))
        return
    data = {**ctx.conversation.data, state.removeprefix(PREFIX): answer[:MAX_DESCRIPTION]}
    if state in NEXT:
        ctx.set_state(NEXT[state], data)
        ctx.say(ctx.t(NEXT[state]))
        return
    ctx.session.add(
        FaultReport(
            ticket_id=data["ticket_id"],
            author_id=ctx.person.id or 0,
            cause=data["cause"],
            fix=data["fix"],
            prevention=data["prevention"],
            created_at=ctx.clock.now(),
        )
    )
    ctx.reset()
    ctx.say(ctx.t("fault.saved", id=data["ticket_id"]))
