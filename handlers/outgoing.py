"""Replies become outbox rows in the transaction of the change that caused them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.messages import Reply
from storage.models import OutboxMessage
from storage.repositories.outbox import enqueue


async def enqueue_reply(session: AsyncSession, reply: Reply, now: datetime) -> None:
    """Write every message of ``reply`` to the outbox (the sender delivers after the commit)."""
    await enqueue(
        session,
        (
            OutboxMessage(
                channel=message.to.channel,
                chat_id=message.to.chat_id,
                person_id=message.person_id,
                text=message.text,
                buttons=[[{"label": b.label, "action": b.action} for b in row] for row in message.buttons],
                replaces=message.replaces,
                created_at=now,
                not_before=now,
            )
            for message in reply.messages
        ),
    )
