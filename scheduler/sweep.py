"""The sweep: claim every due timer, fire it, queue its messages in the outbox.

Claiming, firing and queueing happen in one transaction per batch, so a crash before the
commit leaves the timers due (they fire after the restart) and a second process never fires
them again; ``deliver`` then wakes the outbox sender.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers.clock import Clock
from handlers.escalation import fire
from handlers.messages import Reply
from handlers.outgoing import enqueue_reply
from handlers.sla.policy import PolicyBook
from storage.engine import SessionFactory, transaction
from storage.repositories.tickets import lock_tickets
from storage.repositories.timers import claim_due

log = logging.getLogger("dutydesk.sweep")

Deliver = Callable[[Reply], Awaitable[None]]


@dataclass
class Sweeper:
    """Fires due timers; ``deliver`` sends what they produced after each commit."""

    sessions: SessionFactory
    policies: PolicyBook
    clock: Clock
    deliver: Deliver
    batch: int = 200

    async def sweep(self) -> int:
        """Fire everything due now; how many timers were claimed."""
        total = 0
        while True:
            reply = Reply()
            async with transaction(self.sessions) as session:
                timers = await claim_due(session, self.clock.now(), self.batch)
                tickets = await lock_tickets(session, (timer.ticket_id for timer in timers))
                for timer in timers:
                    if (ticket := tickets.get(timer.ticket_id)) is not None:
                        fired = await fire(session, self.policies, self.clock, timer, ticket)
                        reply.messages += fired.messages
                await enqueue_reply(session, reply, self.clock.now())
            total += len(timers)
            await self.deliver(reply)
            if len(timers) < self.batch:
                return total
