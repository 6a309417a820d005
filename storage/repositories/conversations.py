"""Wizard state rows, keyed by (channel, chat, user)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.enums import Channel
from storage.models import Conversation

IDLE = "idle"


async def conversation_for(
    session: AsyncSession, channel: Channel, chat_id: str, user_id: str, now: datetime
) -> Conversation:
    """The row of this chat user, created idle when missing (locked for this transaction)."""
    query = select(Conversation).where(
        Conversation.channel == channel, Conversation.chat_id == chat_id, Conversation.user_id == user_id
    )
    row = (await session.exec(query.with_for_update().execution_options(populate_existing=True))).first()
    if row is None:
        row = Conversation(
            channel=channel, chat_id=chat_id, user_id=user_id, state=IDLE, data={}, updated_at=now
        )
        session.add(row)
        await session.flush()
    return row


async def lock_conversation(session: AsyncSession, conversation_id: int) -> Conversation | None:
    """A conversation by id, locked for this transaction (its dialog's deadline fires)."""
    query = select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    return (await session.exec(query.execution_options(populate_existing=True))).first()
