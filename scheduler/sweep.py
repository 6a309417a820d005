"""The sweep: claim every due timer, fire it, queue its messages in the outbox.

Claiming, firing and queueing happen in one transaction per batch, so a crash before the
commit leaves the timers due (they fire after the restart) and a second process never fires
them again. A ticket's timer escalates (handlers/escalation.py); a dialog's timer runs the
dialog's deadline (handlers/conversation/deadlines.py). After each commit ``wake`` hears what
the batch made due (its outbox rows: now).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from handlers import escalation
from handlers.clock import Clock
from handlers.conversation import deadlines
from handlers.outgoing import Outbox
from handlers.sla.policy import PolicyBook
from storage.due import Wake, wake_after, wake_nobody
from storage.engine import SessionFactory, transaction
from storage.repositories.tickets import lock_tickets
from storage.repositories.timers import claim_due

log = logging.getLogger("dutydesk.sweep")


@dataclass
class Sweeper:
    """Fires due timers; ``wake`` hears when what they queued falls due."""

    sessions: SessionFactory
    policies: PolicyBook
    clock: Clock
    wake: Wake = field(default=wake_nobody)
    batch: int = 200

    async def sweep(self) -> int:
        """Fire everything due now; how many timers were claimed."""
        total = 0
        while True:
            async with transaction(self.sessions) as session:
                now = self.clock.now()
                timers = await claim_due(session, now, self.batch)
                tickets = await lock_tickets(
                    session, (t.ticket_id for t in timers if t.ticket_id is not None)
                )
                out = Outbox(session, now)
                for timer in timers:
                    if timer.ticket_id is None:
                        await deadlines.fire(session, self.policies, self.clock, out, timer)
                    elif (ticket := tickets.get(timer.ticket_id)) is not None:
                        await escalation.fire(session, self.policies, self.clock, out, timer, ticket)
                await out.flush()
            total += len(timers)
            wake_after(session, self.wake)
            if len(timers) < self.batch:
                return total
