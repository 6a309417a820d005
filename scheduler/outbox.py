"""The outbox sender: delivers outbox rows within each platform's limits, with bounded retries.

- Rows are claimed with a short lease that is renewed while they wait in memory, so a crashed
  process's rows are taken over within seconds; a row is marked sent in its own commit right
  after the platform accepted it (the only window in which a crash can send a message twice).
- Each chat has its own worker; claiming goes on while workers send, so a chat that is slow,
  failing or waiting out its own limit holds up no other chat.
- A 429 waits the platform's retry_after; 5xx, time-outs and network errors retry with growing
  back-off; any other error is logged and retried the same way. After MAX_ATTEMPTS the row is
  given up: logged, marked failed, and the person's supervisors are told (as for a person who
  blocked the bot, whose refusal fails the row at once).
- When one chat has more pending than its limits let through promptly, the pending rows are
  merged into digests within the platform's limits instead of being dropped or delayed.
- A row deferred to later tells ``wake`` when it falls due: no polling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.messages import Address, Outbound
from handlers.outgoing import Outbox, buttons_of
from handlers.texts import text
from scheduler.digest import SEPARATOR, Unit, pack, single
from scheduler.pacing import Limits, Pace
from storage.due import Became, Wake, wake_nobody
from storage.engine import SessionFactory, transaction
from storage.enums import Channel, Role
from storage.errors import is_transient
from storage.models import OutboxMessage, Person
from storage.repositories import cards, outbox
from storage.repositories.people import identities_of, members, sites_of

log = logging.getLogger("dutydesk.outbox")

MAX_BACKOFF = 300.0
MAX_ATTEMPTS = 10  # back-off 2, 4, ... 300 s: about 20 minutes of trying
SHORT_WAIT = 5.0  # seconds a chat's worker may sleep for its limit instead of deferring the row
LEASE = timedelta(seconds=15)
#: Sends that may be accepted by the platform but not yet marked sent, at once: what a crash at
#: the worst moment can send twice. Higher lets more go out while commits are slow.
IN_FLIGHT = 8
SETTLE_ATTEMPTS = 10  # 0.25 s doubling to 8 s: about a minute of a database away
MAX_HELD = 2000  # rows in memory at once; the rest stay in the table until there is room
#: Rows that carry no message of their own (no budget, never merged, sent first).
UNPACED = frozenset({"answer", "edit"})
#: How long a card's one-time token stays usable (WeCom: 72 hours), with a margin.
TOKEN_LIFE = timedelta(hours=71)


@dataclass(frozen=True)
class Delivered:
    """What a send took: how many platform messages, the handle of the message that carries
    the buttons, and a one-time right to change it later (WeCom's response code)."""

    messages: int = 1
    handle: str | None = None
    token: str | None = None


#: Delivers one message (None: one platform message, no handle).
Send = Callable[[Outbound], Awaitable[Delivered | None]]


class RetryLater(Exception):
    """The platform asks to try again later (429, 5xx, a time-out, the network)."""

    def __init__(self, after: float, reason: str) -> None:
        super().__init__(reason)
        self.after = after


class Refused(Exception):
    """The platform will never deliver this (blocked, chat not found, bad request)."""


class OutboxSender:
    """Sends pending outbox rows through the channels' senders."""

    def __init__(
        self, sessions: SessionFactory, clock: Clock, batch: int = 100, wake: Wake = wake_nobody
    ) -> None:
        self.sessions, self.clock, self.batch, self.wake = sessions, clock, batch, wake
        self.lease = LEASE
        self._channels: dict[Channel, tuple[Send, Pace]] = {}
        self._held: dict[int, OutboxMessage] = {}
        self._queues: dict[tuple[Channel, str], list[OutboxMessage]] = {}
        self._workers: dict[tuple[Channel, str], asyncio.Task[None]] = {}
        self._claiming: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._again = False
        self._unsettled = asyncio.Semaphore(IN_FLIGHT)
        self.settled = 0

    def add(self, channel: Channel, send: Send, limits: Limits) -> None:
        """Switch a channel on."""
        self._channels[channel] = (send, Pace(limits))

    def kick(self) -> None:
        """Claim what may be sent now (or right after the claiming in progress)."""
        if self._claiming is not None and not self._claiming.done():
            self._again = True
            return
        self._claiming = asyncio.create_task(self._claim_until_quiet())

    async def flush(self) -> int:
        """Send what may be sent now and wait until it is settled; how many rows were."""
        before = self.settled
        self.kick()
        await self.drain()
        return self.settled - before

    async def drain(self) -> None:
        """Wait until the claiming and every chat's worker are done."""
        while True:
            tasks = [t for t in (self._claiming, *self._workers.values()) if t is not None and not t.done()]
            if not tasks:
                return
            await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)

    # -- claiming -------------------------------------------------------------------------------

    async def _claim_until_quiet(self) -> None:
        while True:
            self._again = False
            try:
                await self._claim()
            except Exception as error:
                if not is_transient(error):
                    log.exception("outbox: claiming rows failed")
                else:
                    log.warning("outbox: the database is unavailable (%s); trying again shortly", error)
                self.wake(Became(at=self.clock.now() + timedelta(seconds=2)))
            if not self._again:
                return

    async def _claim(self) -> None:
        while len(self._held) < MAX_HELD:
            async with transaction(self.sessions) as session:
                rows = list(await outbox.claim(session, self.clock.now(), self.batch, self.lease))
            for row in rows:
                if row.id is None or row.id in self._held:
                    continue
                self._held[row.id] = row
                key = (Channel(row.channel), row.chat_id)
                self._queues.setdefault(key, []).append(row)
                if key not in self._workers:
                    self._workers[key] = asyncio.create_task(self._work(key))
            if rows and self._renewing is None:
                self._renewing = asyncio.create_task(self._renew())
            if len(rows) < self.batch:
                return

    async def _renew(self) -> None:
        """Keep the lease of every row waiting in memory, until none is left."""
        try:
            while self._held:
                await asyncio.sleep(self.lease.total_seconds() / 3)
                ids = list(self._held)
                if ids:
                    try:
                        await self._settle(ids, claimed_until=self.clock.now() + self.lease)
                    except Exception as error:  # the next renewal, or the rows' own settling, follows
                        log.warning("outbox: could not renew leases: %s", error)
        finally:
            self._renewing = None

    # -- one chat -------------------------------------------------------------------------------

    async def _work(self, key: tuple[Channel, str]) -> None:
        try:
            while rows := self._queues.pop(key, None):
                try:
                    await self._send_group(key[0], key[1], rows)
                except Exception:  # the rows stay leased; the lease runs out and they are retried
                    log.exception("outbox: sending to %s %s failed", key[0].value, key[1])
                finally:
                    for row in rows:
                        self._held.pop(row.id or 0, None)
        finally:
            self._workers.pop(key, None)
            if key in self._queues:  # rows came in as this worker stopped
                self._workers[key] = asyncio.create_task(self._work(key))

    async def _send_group(self, channel: Channel, chat: str, group: list[OutboxMessage]) -> None:
        if channel not in self._channels:
            await self._fail(pack(group, Limits()), "channel not configured", report=False)
            return
        send, pace = self._channels[channel]
        for row in group:
            if row.kind == "answer":
                await self._send(send, single(row))
        await self._edit(send, pace, [row for row in group if row.kind == "edit"])
        group = [row for row in group if row.kind not in UNPACED]
        await self._current_cards(group)
        loop = asyncio.get_running_loop()
        limits = pace.limits
        merge = len(group) > limits.digest_after or (pace.chat_wait(chat, loop.time()) > 0 and len(group) > 1)
        for unit in pack(group, limits) if merge else [single(row) for row in group]:
            wait = pace.chat_wait(chat, loop.time())
            if wait > SHORT_WAIT:  # a per-minute or per-hour budget is spent: come back later
                await self._defer(unit, wait)
                continue
            await asyncio.sleep(wait)  # pacing is in real time: it is about the platform's clock
            await self._send(send, unit, paced=(pace, chat))

    async def _current_cards(self, group: list[OutboxMessage]) -> None:
        """A card goes out as it is now, not as it was when it was queued."""
        ids = [row.card_id for row in group if row.card_id is not None]
        if not ids:
            return
        async with transaction(self.sessions) as session:
            now = await cards.cards(session, ids)
        for row in group:
            if row.card_id in now:
                row.text, row.buttons = now[row.card_id].text, now[row.card_id].buttons

    async def _edit(self, send: Send, pace: Pace, rows: list[OutboxMessage]) -> None:
        """Bring sent cards up to date: each message once, with every card it carries as it is now."""
        latest = {row.card_id: row for row in rows}  # several changes of one card: one edit
        extra = [row for row in rows if latest.get(row.card_id) is not row]
        if extra:
            await self._settle([row.id or 0 for row in extra], sent_at=self.clock.now(), claimed_until=None)
        async with transaction(self.sessions) as session:
            found = await cards.cards(session, [i for i in latest if i is not None])
        done: set[str] = set()
        for card_id, row in latest.items():
            card = found.get(card_id or 0)
            if (
                card is None or card.handle is None or card.handle in done
            ):  # not sent yet: it goes out current
                await self._settle([row.id or 0], sent_at=self.clock.now(), claimed_until=None)
                continue
            done.add(card.handle)
            async with transaction(self.sessions) as session:
                carried = await cards.sharing(session, card.channel, card.chat_id, card.handle)
            fresh = card.token_at is not None and self.clock.now() - card.token_at < TOKEN_LIFE
            edit = Outbound(
                Address(card.channel, card.chat_id),
                SEPARATOR.join(c.text for c in carried),
                tuple(line for c in carried for line in buttons_of(c.buttons)),
                row.person_id,
                "edit",
                handle=card.handle,
                token=card.token if fresh else None,
            )
            await self._send(send, single(row), edit, [c.id for c in carried], paced=(pace, card.chat_id))

    async def _send(
        self,
        send: Send,
        unit: Unit,
        message: Outbound | None = None,
        carried: list[int] | None = None,
        *,
        paced: tuple[Pace, str] | None = None,
    ) -> None:
        """Send one unit and settle its rows. The cards it carries (for an edit: those of the
        edited message) learn the sent message's handle. ``paced``: the send takes a place in
        the channel's rate, counted from the platform's answer (before the settling commit)."""
        async with self._unsettled:  # a crash can send again only what is in here
            stamp = await paced[0].slot() if paced is not None else None
            try:
                delivered = await send(message or unit.outbound())
            except Exception as error:
                if paced is not None and stamp is not None:
                    paced[0].done(stamp, paced[1])  # a refused or failed call counts all the same
                await self._not_sent(unit, error)
                return
            if paced is not None and stamp is not None:
                paced[0].done(stamp, paced[1], 1 if delivered is None else max(delivered.messages, 1))
            now = self.clock.now()
            ids = carried if carried is not None else [r.card_id for r in unit.rows if r.card_id is not None]

            async def sent(session: AsyncSession) -> None:
                await outbox.settle(
                    session, unit.ids, sent_at=now, claimed_until=None, attempts=unit.attempts + 1
                )
                if ids and delivered is not None and delivered.handle is not None:
                    token_at = now if delivered.token else None
                    await cards.set_handle(session, ids, delivered.handle, delivered.token, token_at)

            await self._commit(sent)
            self.settled += len(unit.rows)

    async def _not_sent(self, unit: Unit, error: Exception) -> None:
        """A send that did not go out: later, never, or (unexpected) later with a log line."""
        if isinstance(error, RetryLater):
            await self._retry(unit, max(error.after, 0.1), str(error))
        elif isinstance(error, Refused):
            await self._fail([unit], str(error), report=unit.first.kind == "text")
        else:
            log.error("outbox: unexpected error sending rows %s", unit.ids, exc_info=error)
            await self._retry(unit, self._backoff(unit), repr(error))

    # -- settling -------------------------------------------------------------------------------

    def _backoff(self, unit: Unit) -> float:
        return min(2.0 ** (unit.attempts + 1), MAX_BACKOFF)

    async def _retry(self, unit: Unit, seconds: float, error: str) -> None:
        if unit.attempts + 1 >= MAX_ATTEMPTS:
            log.error("outbox: giving up rows %s after %d attempts: %s", unit.ids, unit.attempts + 1, error)
            await self._fail([unit], error, report=unit.first.kind == "text", attempts=unit.attempts + 1)
            return
        await self._defer(unit, seconds, error=error)

    async def _settle(self, ids: list[int], **values: object) -> None:
        async def write(session: AsyncSession) -> None:
            await outbox.settle(session, ids, **values)

        await self._commit(write)

    async def _commit(self, work: Callable[[AsyncSession], Awaitable[None]]) -> None:
        """Write what a send settled, trying again while the database is busy or away: giving
        up here would send the message again once its lease ran out."""
        delay = 0.25
        for attempt in range(1, SETTLE_ATTEMPTS + 1):
            try:
                async with transaction(self.sessions) as session:
                    await work(session)
                return
            except Exception as error:
                if not is_transient(error) or attempt == SETTLE_ATTEMPTS:
                    raise
                log.warning("outbox: could not record a send (%s); trying again in %.2g s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)

    async def _defer(self, unit: Unit, seconds: float, error: str | None = None) -> None:
        due = self.clock.now() + timedelta(seconds=seconds)
        values: dict[str, object] = {"not_before": due, "claimed_until": None}
        if error is not None:  # a failed attempt, not just pacing
            values["attempts"] = unit.attempts + 1
            values["error"] = error[:500]
        await self._settle(unit.ids, **values)
        self.settled += len(unit.rows)
        self.wake(Became(at=due))

    async def _fail(
        self, units: list[Unit], reason: str, *, report: bool, attempts: int | None = None
    ) -> None:
        values: dict[str, object] = {
            "failed_at": self.clock.now(),
            "claimed_until": None,
            "error": reason[:500],
        }
        if attempts is not None:
            values["attempts"] = attempts
        await self._settle([i for unit in units for i in unit.ids], **values)
        self.settled += sum(len(unit.rows) for unit in units)
        for person_id in {unit.first.person_id for unit in units if report}:
            if person_id is not None:
                await self._report(person_id, reason)

    async def _report(self, person_id: int, reason: str) -> None:
        """Tell the supervisors of the person's sites that messages to them do not arrive."""
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            person = await session.get(Person, person_id)
            sites = await sites_of(session, person_id)
            if person is None or any(Role.SUPERVISOR in roles for roles in sites.values()):
                return
            out = Outbox(session, now)
            for site_id in sites:
                for supervisor in await members(session, site_id, Role.SUPERVISOR):
                    note = text(supervisor.language, "delivery_failed", name=person.name, reason=reason[:80])
                    for identity in await identities_of(session, supervisor.id or 0):
                        out.say(Address(identity.channel, identity.external_id), note, (), supervisor.id)
            await out.flush()
        self.kick()
