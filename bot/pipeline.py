"""The inbound pipeline, one for every channel: store → handle (retrying) → give up.

1. ``receive``: a channel hands over an update before it confirms it to the platform (the
   webhook's 200, the getUpdates offset). It is cleaned, stored once (dedup on its key, many
   per commit) and its handling is started; a database that is down makes ``receive`` raise,
   so the platform keeps the update and sends it again.
2. Handling decodes the stored update (nothing to answer: it is marked handled) and runs the
   router. A passing error (the database busy or away, a time-out) is retried with a capped
   back-off; a real error, or the last attempt, is logged with the update's key, the update
   is marked given up and the person gets a short apology.
3. A stored update whose handling did not finish (the process died, the database stayed away
   past the last attempt and giving up failed too) has a retry time: the scheduler's sweep
   takes it up again then (``retry_due``), and ``recover`` takes every one at start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.background import Background
from bot.clean import clean, clean_text
from bot.inbox_writer import InboxWriter
from handlers.conversation.router import Router
from handlers.messages import Inbound
from handlers.outgoing import Outbox
from handlers.texts import language_of, text
from storage.due import Became, Wake, wake_after, wake_nobody
from storage.engine import SessionFactory, transaction
from storage.enums import Channel as ChannelKind
from storage.errors import is_transient
from storage.repositories import inbox

if TYPE_CHECKING:
    from bot.channel import Channel
    from handlers.clock import Clock

log = logging.getLogger("dutydesk.pipeline")

ATTEMPTS = 8  # tries in a row before giving up: 0.25 + 0.5 + ... + 8 s ≈ 30 s of a database away
FIRST_BACKOFF, MAX_BACKOFF = 0.25, 8.0
#: A stored update still unprocessed this long after it came in is taken up by the sweep.
RETRY_AFTER = timedelta(seconds=30)


class Pipeline:
    """Stores and handles the updates of every channel."""

    def __init__(
        self, sessions: SessionFactory, clock: Clock, router: Router, wake: Wake = wake_nobody
    ) -> None:
        self.sessions, self.clock, self.router, self.wake = sessions, clock, router, wake
        self.inbox = InboxWriter(sessions)
        self._channels: dict[ChannelKind, Channel] = {}
        self._work: dict[ChannelKind, Background] = {}
        self._busy: set[tuple[ChannelKind, str]] = set()
        #: Given up after the last attempt (for tests and the log's summary).
        self.given_up = 0
        #: Tries in a row before an update is given up.
        self.attempts = ATTEMPTS

    def add(self, channel: Channel) -> None:
        """Take the updates of ``channel``."""
        self._channels[channel.kind] = channel
        self._work[channel.kind] = Background(limit=channel.handling_at_once)

    @property
    def channels(self) -> Mapping[ChannelKind, Channel]:
        """The channels, by kind."""
        return self._channels

    async def receive(self, kind: ChannelKind, key: str, payload: dict[str, Any]) -> bool:
        """Store an update and start handling it; False when it was stored before (a repeat).

        Raises ``bot.clean.Unfit`` for a payload no platform sends, and whatever the database
        raises when it cannot store: the caller must then not confirm the update.
        """
        payload = clean(payload)
        now = self.clock.now()
        fresh = await self.inbox.store(kind, key, payload, now, now + RETRY_AFTER)
        if fresh:
            self.wake(Became(at=now + RETRY_AFTER))
        # A repeat too: the first delivery may have been stored while its answer was lost (the
        # platform then sends it again); handling claims it, so it is handled once either way.
        self.take(kind, key, payload, now)
        return fresh

    def take(self, kind: ChannelKind, key: str, payload: dict[str, Any], received_at: datetime) -> None:
        """Start handling an update that is stored already."""
        if (kind, key) in self._busy:
            return
        self._busy.add((kind, key))
        self._work[kind].spawn(self._handle(kind, key, payload, received_at))

    async def recover(self) -> None:
        """Take up every update a previous run stored but did not finish."""
        async with transaction(self.sessions) as session:
            pending = {kind: list(await inbox.unprocessed(session, kind)) for kind in self._channels}
        for kind, rows in pending.items():
            for row in rows:
                self.take(kind, row.key, row.payload, row.received_at)
            if rows:
                log.info("%s: %d stored updates to finish", kind.value, len(rows))

    async def retry_due(self) -> None:
        """Take up the stored updates whose retry time has come (called by the due work)."""
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            rows = list(await inbox.due_for_retry(session, now, now + RETRY_AFTER))
        for row in rows:
            kind = ChannelKind(row.channel)
            if kind in self._channels:
                self.take(kind, row.key, row.payload, row.received_at)
        if rows:
            self.wake(Became(at=now + RETRY_AFTER))

    @property
    def busy(self) -> bool:
        """Whether any update is being handled or waits for its turn."""
        return any(work.busy for work in self._work.values())

    async def drain(self) -> None:
        """Wait until every update taken so far has been handled."""
        while any(work.busy for work in self._work.values()):
            await asyncio.gather(*(work.drain() for work in self._work.values()))

    # -- handling -------------------------------------------------------------------------------

    async def _handle(
        self, kind: ChannelKind, key: str, payload: dict[str, Any], received_at: datetime
    ) -> None:
        try:
            event = self._decode(kind, key, payload, received_at)
            delay = FIRST_BACKOFF
            for attempt in range(1, self.attempts + 1):
                try:
                    if event is None:
                        await self._mark_handled(kind, key)
                    else:
                        await self.router.handle(event, inbox_key=key)
                    return
                except Exception as error:
                    if not is_transient(error):
                        log.exception("%s update %s failed", kind.value, key)
                        await self._give_up(kind, key, event, repr(error))
                        return
                    if attempt == self.attempts:
                        log.error(
                            "%s update %s: giving up after %d attempts: %s", kind.value, key, attempt, error
                        )
                        await self._give_up(kind, key, event, repr(error))
                        return
                    log.warning("%s update %s: %s; trying again in %.2g s", kind.value, key, error, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
        finally:
            self._busy.discard((kind, key))

    def _decode(
        self, kind: ChannelKind, key: str, payload: dict[str, Any], received_at: datetime
    ) -> Inbound | None:
        try:
            event = self._channels[kind].decode(payload, received_at)
            return None if event is None else _cleaned(event, self.clock.now())
        except Exception as error:  # a payload the platform's library cannot read: nothing to answer
            log.warning(
                "%s update %s cannot be read (%s): marked handled", kind.value, key, type(error).__name__
            )
            return None

    async def _mark_handled(self, kind: ChannelKind, key: str) -> None:
        async with transaction(self.sessions) as session:
            await inbox.claim(session, kind, key, self.clock.now())

    async def _give_up(self, kind: ChannelKind, key: str, event: Inbound | None, error: str) -> None:
        """Mark the update given up and apologise to the person; if even that fails, the
        update keeps its retry time and the sweep takes it up again."""
        now = self.clock.now()
        try:
            async with transaction(self.sessions) as session:
                await inbox.give_up(session, kind, key, now, error)
                if event is not None:
                    out = Outbox(session, now)
                    apology = text(language_of(event.language), "apology")
                    out.say(event.address, apology)
                    if event.answer_token:
                        out.answer(event.address, apology[:200], event.answer_token)
                    await out.flush()
            wake_after(session, self.wake)
            self.given_up += 1
        except Exception as failure:
            if not is_transient(failure) and event is not None:  # the apology itself cannot be sent
                log.warning("%s update %s: no apology possible (%s)", kind.value, key, failure)
                await self._give_up(kind, key, None, error)
                return
            log.warning("%s update %s stays stored for a later retry: %s", kind.value, key, failure)
            try:
                async with transaction(self.sessions) as session:
                    await inbox.retry_later(session, kind, key, now + RETRY_AFTER, error)
            except Exception:  # the row keeps the retry time it was stored with
                pass
            self.wake(Became(at=now + RETRY_AFTER))


def _cleaned(event: Inbound, now: datetime) -> Inbound:
    """The event with its text cleaned and its time never later than now."""
    received = event.received_at or now
    return replace(
        event,
        text=None if event.text is None else clean_text(event.text),
        at=min(event.at, received, now),
        received_at=received,
    )
