"""Firing a dialog's due row (the classification window's reminder and end, ...).

The sweep claims the row; here the conversation is locked and the dialog's deadline runs
inside the sweep's transaction, writing outbox rows like any other handler. Importing this
module registers every dialog, so the sweep knows them all.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.conversation import fault_report, registration, report_wizard
from handlers.dialogs import engine
from handlers.dialogs.context import Context
from handlers.outgoing import Outbox
from handlers.sla.policy import PolicyBook
from storage.models import Timer
from storage.repositories.conversations import lock_conversation
from storage.repositories.people import person_by_identity

DIALOGS = (report_wizard.REPORT, fault_report.FAULT_REPORT, registration.REGISTRATION)


async def fire(session: AsyncSession, policies: PolicyBook, clock: Clock, out: Outbox, timer: Timer) -> None:
    """Carry out a claimed dialog timer (a stale one — its dialog ended or restarted — does nothing)."""
    if timer.conversation_id is None:
        return
    conversation = await lock_conversation(session, timer.conversation_id)
    if conversation is None:
        return
    person = await person_by_identity(session, conversation.channel, conversation.user_id)
    await engine.fire(Context(session, clock, policies, out, conversation, person), timer)
