"""The outbox sender: delivers outbox rows within each platform's limits, with retries.

- A 429 waits the platform's retry_after; 5xx and time-outs retry with growing back-off.
- A permanent refusal (the person blocked the bot, the chat is gone) marks the row failed
  and tells the person's supervisors to phone them.
- Limits per channel: an overall rate, a minimum gap per chat, a per-chat budget per minute
  and per hour. When one chat has more pending than its limits let through promptly, the
  pending messages are merged into one digest instead of being dropped or delayed.
- Rows are leased while being sent; a sender that dies lets the lease run out and another
  takes over. A row is marked sent right after the platform accepted it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from handlers.clock import Clock
from handlers.messages import Address, Button, Outbound, Reply
from handlers.texts import text
from storage.engine import SessionFactory, transaction
from storage.enums import Channel, Role
from storage.models import OutboxMessage, Person
from storage.repositories import outbox
from storage.repositories.people import identities_of, members, sites_of

log = logging.getLogger("dutydesk.outbox")

#: Delivers one message; how many platform messages that took (None: one).
Send = Callable[[Outbound], Awaitable[int | None]]
MAX_DIGEST_ROWS = 50  # Telegram takes up to 100 buttons under one message
MAX_BACKOFF = 300.0
SHORT_WAIT = 5.0  # seconds a sender may sleep for a rate limit instead of deferring the row


class RetryLater(Exception):
    """The platform asks to try again later (429, 5xx, a time-out)."""

    def __init__(self, after: float, reason: str) -> None:
        super().__init__(reason)
        self.after = after


class Refused(Exception):
    """The platform will never deliver this (blocked, chat not found, bad request)."""


@dataclass(frozen=True)
class Limits:
    """How fast a channel may send."""

    per_second: float | None = None  # overall
    #: (messages, seconds): at most that many to one chat in any such window (a short burst
    #: is fine, the average is what the platform watches)
    chat_burst: tuple[int, float] | None = None
    chat_per_minute: int | None = None
    chat_per_hour: int | None = None
    digest_after: int = 3  # more pending than this for one chat: merge them
    #: A digest holds whole messages up to this many characters; the rest go in the next one.
    digest_chars: int = 3500


TELEGRAM = Limits(per_second=30.0, chat_burst=(3, 3.0), digest_after=3)
#: WeCom silently drops what passes 30 per minute or 1,000 per hour to one member; a digest
#: fits one text message (2,048 bytes, up to 3 per Chinese character).
WECOM = Limits(chat_per_minute=30, chat_per_hour=1000, digest_after=3, digest_chars=650)
LOCAL = Limits(digest_after=50)


class _Pace:
    """In-process memory of what was sent recently, per channel and per chat."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.turn = asyncio.Lock()
        self.sent: deque[float] = deque()
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

    def overall_wait(self, now: float) -> float:
        """Seconds until the channel may send at all."""
        per_second = self.limits.per_second
        while self.sent and now - self.sent[0] >= 1.0:
            self.sent.popleft()
        if per_second is None or len(self.sent) < per_second:
            return 0.0
        return self.sent[0] + 1.0 - now

    def record(self, chat: str, now: float, count: int = 1) -> None:
        self.sent.extend([now] * count)
        self.by_chat[chat].extend([now] * count)


class OutboxSender:
    """Sends pending outbox rows through the channels' senders."""

    def __init__(self, sessions: SessionFactory, clock: Clock, batch: int = 100) -> None:
        self.sessions, self.clock, self.batch = sessions, clock, batch
        self.lease = timedelta(seconds=60)
        self._channels: dict[Channel, tuple[Send, _Pace]] = {}
        self._running: asyncio.Task[None] | None = None
        self._again = False

    def add(self, channel: Channel, send: Send, limits: Limits) -> None:
        """Switch a channel on."""
        self._channels[channel] = (send, _Pace(limits))

    def kick(self) -> None:
        """Start a flush now (or right after the one running)."""
        if self._running is not None and not self._running.done():
            self._again = True
            return
        self._running = asyncio.create_task(self._flush_until_quiet())

    async def drain(self) -> None:
        """Wait for the flush in progress (and those it asked for)."""
        while self._running is not None and not self._running.done():
            await asyncio.shield(self._running)

    async def deliver(self, reply: Reply) -> None:
        """Compatibility with the channels: the messages are already rows; send them now."""
        self.kick()

    async def _flush_until_quiet(self) -> None:
        while True:
            self._again = False
            try:
                await self.flush()
            except Exception:
                log.exception("outbox flush failed")
            if not self._again:
                return

    async def flush(self) -> int:
        """Send what may be sent now; how many rows were settled."""
        settled = 0
        while True:
            async with transaction(self.sessions) as session:
                rows = list(await outbox.claim(session, self.clock.now(), self.batch, self.lease))
            if not rows:
                return settled
            by_chat: dict[tuple[Channel, str], list[OutboxMessage]] = defaultdict(list)
            for row in rows:
                by_chat[(Channel(row.channel), row.chat_id)].append(row)
            # One task per chat: a chat waiting out its own limit does not hold up the others.
            done = await asyncio.gather(*(self._send_group(ch, chat, g) for (ch, chat), g in by_chat.items()))
            settled += sum(done)

    async def _send_group(self, channel: Channel, chat: str, group: list[OutboxMessage]) -> int:
        if channel not in self._channels:
            await self._fail(_Unit.of(group), "channel not configured", report=False)
            return len(group)
        send, pace = self._channels[channel]
        captions = [row for row in group if row.replaces]
        for caption in (_Unit.of([row]) for row in captions):  # no message: no budget, never merged
            await self._send(send, caption.outbound(channel, chat), caption)
        group = [row for row in group if not row.replaces]
        loop = asyncio.get_running_loop()
        wait = pace.chat_wait(chat, loop.time())
        merge = len(group) > pace.limits.digest_after or (wait > 0 and len(group) > 1)
        units = _Unit.digests(group, pace.limits.digest_chars) if merge else [_Unit.of([r]) for r in group]
        for unit in units:
            wait = pace.chat_wait(chat, loop.time())
            if wait > SHORT_WAIT:  # a per-minute or per-hour budget is spent: come back later
                await self._defer(unit, wait)
                continue
            # Pacing is in real time (it is about the platform's clock), short waits are slept.
            await asyncio.sleep(wait)
            async with pace.turn:  # the overall rate is shared by every chat of the channel
                await asyncio.sleep(pace.overall_wait(loop.time()))
                used = await self._send(send, unit.outbound(channel, chat), unit)
                # Counted once the answer is back: never earlier than the platform counted it,
                # so network jitter cannot push the sender over the platform's window.
                pace.record(chat, loop.time(), used)
        return len(group) + len(captions)

    async def _send(self, send: Send, message: Outbound, unit: _Unit) -> int:
        """Send one unit and settle its rows; how many platform messages it took (for pacing)."""
        try:
            used = await send(message)
        except RetryLater as later:
            await self._defer(unit, max(later.after, 0.1), error=str(later))
        except Refused as refused:
            await self._fail(unit, str(refused), report=unit.replaces is None)
        except Exception as error:  # a time-out or a network error: try again later
            await self._defer(unit, min(2.0 ** (unit.attempts + 1), MAX_BACKOFF), error=repr(error))
        else:
            now = self.clock.now()
            await self._settle(unit, sent_at=now, claimed_until=None, attempts=unit.attempts + 1)
            return 1 if used is None else used
        return 1

    async def _settle(self, unit: _Unit, **values: object) -> None:
        async with transaction(self.sessions) as session:
            await outbox.settle(session, unit.ids, **values)

    async def _defer(self, unit: _Unit, seconds: float, error: str | None = None) -> None:
        values: dict[str, object] = {
            "not_before": self.clock.now() + timedelta(seconds=seconds),
            "claimed_until": None,
        }
        if error is not None:  # a failed attempt, not just pacing
            values["attempts"] = unit.attempts + 1
            values["error"] = error[:500]
        await self._settle(unit, **values)

    async def _fail(self, unit: _Unit, reason: str, *, report: bool) -> None:
        await self._settle(unit, failed_at=self.clock.now(), claimed_until=None, error=reason[:500])
        if report and unit.person_id is not None:
            await self._report(unit.person_id, reason)

    async def _report(self, person_id: int, reason: str) -> None:
        """Tell the supervisors of the person's sites that messages to them do not arrive."""
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            person = await session.get(Person, person_id)
            sites = await sites_of(session, person_id)
            if person is None or any(Role.SUPERVISOR in roles for roles in sites.values()):
                return
            rows = []
            for site_id in sites:
                for supervisor in await members(session, site_id, Role.SUPERVISOR):
                    note = text(supervisor.language, "delivery_failed", name=person.name, reason=reason[:80])
                    for identity in await identities_of(session, supervisor.id or 0):
                        rows.append(
                            OutboxMessage(
                                channel=identity.channel,
                                chat_id=identity.external_id,
                                person_id=supervisor.id,
                                text=note,
                                created_at=now,
                                not_before=now,
                            )
                        )
            await outbox.enqueue(session, rows)
        self.kick()


@dataclass(frozen=True)
class _Unit:
    """What one send carries: one row, or a digest of several rows of one chat."""

    ids: list[int]
    text: str
    buttons: tuple[tuple[Button, ...], ...]
    person_id: int | None
    attempts: int
    replaces: str | None = None

    @classmethod
    def of(cls, rows: Sequence[OutboxMessage]) -> _Unit:
        """The texts one after the other, every button row kept (the last MAX_DIGEST_ROWS)."""
        buttons = [
            tuple(Button(b["label"], b["action"]) for b in line) for row in rows for line in row.buttons
        ]
        first = rows[0]
        return cls(
            [r.id or 0 for r in rows],
            "\n\n".join(row.text for row in rows),
            tuple(buttons[-MAX_DIGEST_ROWS:]),
            first.person_id,
            first.attempts,
            first.replaces,
        )

    @classmethod
    def digests(cls, rows: Sequence[OutboxMessage], chars: int) -> list[_Unit]:
        """Whole rows packed in order into digests of at most ``chars`` characters (a longer
        row goes alone): nothing is cut off, the platform's sender splits what it must."""
        packs: list[list[OutboxMessage]] = []
        size = 0
        for row in rows:
            if packs and size + 2 + len(row.text) <= chars:
                packs[-1].append(row)
                size += 2 + len(row.text)
            else:
                packs.append([row])
                size = len(row.text)
        return [cls.of(pack) for pack in packs]

    def outbound(self, channel: Channel, chat: str) -> Outbound:
        """The message this unit sends."""
        return Outbound(Address(channel, chat), self.text, self.buttons, self.person_id, self.replaces)
