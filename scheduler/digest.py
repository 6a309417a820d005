"""What one send carries: one outbox row, or several rows of one chat merged into a digest.

A digest keeps every row whole, in order, with every button, and stays within the channel's
limits (characters, buttons): a burst that would not fit one message becomes several digests,
never a refused one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from handlers.messages import Address, Buttons, Outbound
from handlers.outgoing import buttons_of
from scheduler.pacing import Limits
from storage.enums import Channel
from storage.models import OutboxMessage

SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Unit:
    """One platform message's worth of outbox rows of one chat."""

    rows: tuple[OutboxMessage, ...]

    @property
    def ids(self) -> list[int]:
        """The rows' ids."""
        return [row.id or 0 for row in self.rows]

    @property
    def first(self) -> OutboxMessage:
        """The first row (who it is for, its kind)."""
        return self.rows[0]

    @property
    def attempts(self) -> int:
        """Attempts so far (the most of any row)."""
        return max(row.attempts for row in self.rows)

    @property
    def buttons(self) -> Buttons:
        """Every button row of every row, in order."""
        return tuple(line for row in self.rows for line in buttons_of(row.buttons))

    def outbound(self) -> Outbound:
        """The message this unit sends."""
        first = self.first
        return Outbound(
            Address(Channel(first.channel), first.chat_id),
            SEPARATOR.join(row.text for row in self.rows),
            self.buttons,
            first.person_id,
            first.kind,
            token=first.replaces,
        )


def _buttons(row: OutboxMessage) -> int:
    return sum(len(line) for line in row.buttons)


def pack(rows: Sequence[OutboxMessage], limits: Limits) -> list[Unit]:
    """Whole rows packed in order into digests within ``limits`` (a row too big for any
    digest goes alone: the channel splits what one message cannot carry)."""
    packs: list[list[OutboxMessage]] = []
    chars = buttons = 0
    max_buttons = limits.max_buttons
    for row in rows:
        size, count = len(row.text), _buttons(row)
        fits = (
            packs
            and chars + len(SEPARATOR) + size <= limits.digest_chars
            and (max_buttons is None or buttons + count <= max_buttons)
        )
        if fits:
            packs[-1].append(row)
            chars, buttons = chars + len(SEPARATOR) + size, buttons + count
        else:
            packs.append([row])
            chars, buttons = size, count
    return [Unit(tuple(pack)) for pack in packs]


def single(row: OutboxMessage) -> Unit:
    """A row sent on its own."""
    return Unit((row,))
