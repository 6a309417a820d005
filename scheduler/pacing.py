"""How fast and how much a channel may send: its limits, and the memory of what went out.

The overall rate is a reservation, not a lock: a send takes a slot and releases nothing, so a
slow answer from the platform holds up no other chat. A slot is stamped when it is taken and
stamped again when the platform has answered, so network jitter can never make the window
believe a message left earlier than the platform counted it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """How fast a channel may send, and how big one message may be."""

    per_second: float | None = None  # overall
    #: (messages, seconds): at most that many to one chat in any such window (a short burst
    #: is fine, the average is what the platform watches)
    chat_burst: tuple[int, float] | None = None
    chat_per_minute: int | None = None
    chat_per_hour: int | None = None
    digest_after: int = 3  # more pending than this for one chat: merge them
    #: A digest holds whole messages up to this many characters; the rest go in the next one.
    digest_chars: int = 3500
    #: A digest holds at most this many buttons (the platform's limit for one message).
    max_buttons: int | None = None


#: Telegram: 30 messages a second overall, about one a second per chat; 100 buttons a message.
TELEGRAM = Limits(per_second=30.0, chat_burst=(3, 3.0), digest_after=3, max_buttons=100)
#: WeCom silently drops what passes 30 per minute or 1,000 per hour to one member; a digest
#: fits one text message (2,048 bytes, up to 3 per Chinese character) or one card (6 buttons).
WECOM = Limits(chat_per_minute=30, chat_per_hour=1000, digest_after=3, digest_chars=650, max_buttons=6)
LOCAL = Limits(digest_after=50)


class Pace:
    """In-process memory of what a channel sent recently, overall and per chat."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._slots: list[list[float]] = []  # one mutable stamp per recent send
        self.by_chat: dict[str, deque[float]] = defaultdict(deque)

    def chat_wait(self, chat: str, now: float) -> float:
        """Seconds until the chat may receive another message."""
        times, limits = self.by_chat[chat], self.limits
        while times and now - times[0] > 3600:
            times.popleft()
        waits = [0.0]
        burst, burst_window = limits.chat_burst or (None, 1.0)
        for budget, window in (
            (burst, burst_window),
            (limits.chat_per_minute, 60.0),
            (limits.chat_per_hour, 3600.0),
        ):
            recent = [t for t in times if now - t < window]
            if budget is not None and len(recent) >= budget:
                waits.append(recent[len(recent) - budget] + window - now)
        return max(waits)

    async def slot(self) -> list[float]:
        """Wait for a place in the overall rate and take it; stamp it again with ``done``."""
        per_second = self.limits.per_second
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self._slots = [stamp for stamp in self._slots if now - stamp[0] < 1.0]
            if per_second is None or len(self._slots) < per_second:
                stamp = [now]
                self._slots.append(stamp)
                return stamp
            await asyncio.sleep(min(stamp[0] for stamp in self._slots) + 1.0 - now)

    def done(self, stamp: list[float], chat: str, count: int = 1) -> None:
        """The platform answered: the send counts from now, for the channel and the chat."""
        now = asyncio.get_running_loop().time()
        stamp[0] = now
        self._slots.extend([now] for _ in range(count - 1))
        self.by_chat[chat].extend([now] * count)
