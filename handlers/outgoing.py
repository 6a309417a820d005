"""The one way out: every message a handler, a sweep or a cron job sends is an outbox row.

An ``Outbox`` collects the rows of one transaction and writes them in one INSERT when the
transaction is about to commit (``flush``), so they are committed with the change that caused
them or not at all. Nothing else leaves a handler: the sender delivers the rows afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.messages import Address, Button, Buttons
from storage.due import note_messages
from storage.models import OutboxMessage


def button_rows(buttons: Buttons) -> list[list[dict[str, str]]]:
    """Buttons as stored in a row: [[{"label", "action"}, ...], ...]."""
    return [[{"label": b.label, "action": b.action} for b in row] for row in buttons]


def buttons_of(rows: Iterable[Iterable[dict[str, str]]]) -> Buttons:
    """Stored buttons back as Buttons."""
    return tuple(tuple(Button(b["label"], b["action"]) for b in row) for row in rows)


class Outbox:
    """The outbox rows of one transaction."""

    def __init__(self, session: AsyncSession, now: datetime) -> None:
        self.session, self.now = session, now
        self._rows: list[dict[str, Any]] = []

    def say(self, to: Address, text: str, buttons: Buttons = (), person_id: int | None = None) -> None:
        """A new message to one chat."""
        self.add(to, "text", text, buttons, person_id)

    def answer(self, to: Address, text: str, token: str | None, person_id: int | None = None) -> None:
        """The answer to a pressed button: a toast (Telegram), the pressed card's caption (WeCom),
        a line (web chat). ``token`` is the platform's handle on the press."""
        self.add(to, "answer", text, (), person_id, replaces=token)

    def add(
        self,
        to: Address,
        kind: str,
        text: str,
        buttons: Buttons = (),
        person_id: int | None = None,
        *,
        card_id: int | None = None,
        replaces: str | None = None,
    ) -> None:
        """Any row (``kind`` text, card, edit or answer), sendable now."""
        self._rows.append(
            {
                "channel": to.channel,
                "chat_id": to.chat_id,
                "person_id": person_id,
                "kind": kind,
                "card_id": card_id,
                "text": text,
                "buttons": button_rows(buttons),
                "replaces": replaces,
                "created_at": self.now,
                "not_before": self.now,
                "attempts": 0,
                "merged": 1,
            }
        )

    def to(self, address: Address) -> Sequence[dict[str, Any]]:
        """The rows queued so far for one chat."""
        return [r for r in self._rows if (r["channel"], r["chat_id"]) == (address.channel, address.chat_id)]

    @property
    def count(self) -> int:
        """Rows queued so far."""
        return len(self._rows)

    async def flush(self) -> None:
        """Write the queued rows (one statement) and note that they are due now."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        await (await self.session.connection()).execute(insert(OutboxMessage), rows)
        note_messages(self.session)
