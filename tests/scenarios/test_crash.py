"""A crash at any moment loses no report: the real `dutydesk run`, SIGKILLed twice at random
moments while 50 reporters walk the level-1 report wizard at once on Telegram, and started again
on the same database and port each time, in polling and in webhook mode, on both engines.

What it proves: every update Telegram holds is stored before it is confirmed (the getUpdates
offset, the webhook's 200), so none is lost; every stored update is handled after the restart by
the service itself (no reporter had to send a step again); every reporter who pressed 确认提交
has exactly one ticket and was told its number; nothing is left in inbox_update; and the only
messages sent twice are the few whose send was in flight at a kill (counted and printed).

The kill moments come from a seeded random (printed, and in every assertion message): run again
with DUTYDESK_CRASH_SEED=<seed> to replay the same plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from scheduler.outbox import IN_FLIGHT
from storage.engine import transaction
from storage.models import InboxUpdate, OutboxMessage, Ticket
from storage.repositories.outbox import pending_count
from tests.conftest import Database
from tests.fakes.telegram_api import FakeBotApi
from tests.scenarios.crash_stage import (
    REPORTERS,
    SUBMITTED,
    WIZARD,
    Crowd,
    ServiceProcess,
    TelegramLikeApi,
    child_database_url,
    child_env,
    duplicates,
    pump_webhook,
    seed_crowd,
    unanswered_messages,
)
from tests.scenarios.stage import TOKEN, free_port

SEED = os.environ.get("DUTYDESK_CRASH_SEED") or str(random.SystemRandom().randrange(1_000_000))
KILLS = 2
#: At most this many messages may go out twice per kill: those sent but not yet marked sent.
DUPLICATES_PER_KILL = IN_FLIGHT
#: A safety net only: a lost update shows as a hang (see Crowd.grace) well before this.
RUN_LIMIT = 90.0
#: Seconds the service has after the reporters finished to settle (answers, outbox, inbox).
SETTLE_LIMIT = 25.0


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: when (seconds into the run), after how many answered steps, how many
    reporters were waiting for an answer, and how long the restart took."""

    at: float
    progress: int
    waiting: int
    restart: float

    def __str__(self) -> str:
        return f"{self.at:.1f}s/step {self.progress}/{self.waiting} waiting/restart {self.restart:.1f}s"


async def crash_at_random(crowd: Crowd, service: ServiceProcess, rng: random.Random) -> list[Kill]:
    """Kill the service at random moments and start it again each time: first once a random
    share (10-35 %) of all steps has been answered, then a random 1-4 s after it is back up
    (reporters whose answers the dead process held are still waiting then, so the run is in its
    middle, and the two lease expiries overlap: the case stays short). No kill once all are done."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    total = REPORTERS * len(WIZARD)
    target = rng.randint(total // 10, total * 35 // 100)
    kills: list[Kill] = []
    for number in range(KILLS):
        if number == 0:
            with contextlib.suppress(TimeoutError):  # a stalled run is killed all the same
                await crowd.api.wait_until(lambda: crowd.done_steps >= target or crowd.all_done, 15.0)
            await asyncio.sleep(rng.uniform(0, 0.25))
        else:
            await asyncio.sleep(rng.uniform(1.0, 4.0))
        if crowd.all_done:
            break
        crowd.down = True
        at, progress, waiting = loop.time() - began, crowd.done_steps, len(crowd.waiting)
        await service.kill()
        await asyncio.sleep(rng.uniform(0, 0.5))
        restart = await service.start()
        crowd.up_since, crowd.down = loop.time(), False
        kills.append(Kill(at, progress, waiting, restart))
    return kills


async def settled(db: Database, api: FakeBotApi, crowd: Crowd) -> dict[str, int]:
    """What is left to do: unprocessed updates, unsent messages, unanswered presses, updates the
    fake still holds."""
    async with transaction(db.factory) as session:
        unprocessed = (
            await session.exec(
                select(func.count()).select_from(InboxUpdate).where(col(InboxUpdate.processed_at).is_(None))
            )
        ).one()
        unsent = await pending_count(session)
    answered = {a.query_id for a in api.answered_callbacks}
    presses = [u["callback_query"]["id"] for u in crowd.updates if "callback_query" in u]
    return {
        "unprocessed updates": unprocessed,
        "unsent messages": unsent,
        "unanswered presses": sum(1 for query in presses if query not in answered),
        "updates the fake holds": len(api.updates),
    }


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_sigkill_at_random_moments_loses_no_report(mode: str, db: Database, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(f"{SEED}/{mode}/{db.name}")
    replay = f"[seed {SEED}, {mode}, {db.name}: replay with DUTYDESK_CRASH_SEED={SEED}]"
    cast = await seed_crowd(db)
    reporters = [actor for key, actor in cast.items() if key.startswith("r")]
    async with AsyncExitStack() as stack:
        api = TelegramLikeApi(TOKEN)
        for actor in cast.values():
            api.user(actor.telegram_id, actor.name)
        await api.start()
        stack.push_async_callback(api.stop)
        url = await stack.enter_async_context(child_database_url(db))
        service = ServiceProcess(child_env(url, free_port(), api, webhook=mode == "webhook"), tmp_path)
        stack.push_async_callback(service.stop)
        await service.start()

        crowd = Crowd(api, reporters, f"{SEED}/{mode}/{db.name}", up_since=loop.time())
        background: list[asyncio.Task[Any]] = []
        if mode == "webhook":
            background.append(asyncio.create_task(pump_webhook(api)))

        async def cancel_background() -> None:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)

        stack.push_async_callback(cancel_background)
        began = loop.time()
        crashes = asyncio.create_task(crash_at_random(crowd, service, rng))
        background.append(crashes)
        walkers = asyncio.gather(*(crowd.walk(who) for who in reporters))
        try:
            await asyncio.wait_for(walkers, RUN_LIMIT)
        except TimeoutError:
            stuck = {who: crowd.at_step.get(who) for who in crowd.waiting}
            pytest.fail(
                f"{replay} the reporters did not finish within {RUN_LIMIT} s: "
                f"{len(crowd.finished)} done, waiting at steps {stuck}, hangs {crowd.hangs}\n{service.tail()}"
            )
        run = loop.time() - began
        kills = await crashes

        left = await settled(db, api, crowd)
        deadline = loop.time() + SETTLE_LIMIT
        while any(left.values()) and loop.time() < deadline:
            await asyncio.sleep(0.2)
            left = await settled(db, api, crowd)

        async with transaction(db.factory) as session:
            stored = (await session.exec(select(Ticket))).all()
            tickets = Counter(ticket.reporter_id for ticket in stored)
            ticket_of = {ticket.reporter_id: ticket for ticket in stored}
            given_up = (
                await session.exec(
                    select(func.count()).select_from(InboxUpdate).where(col(InboxUpdate.error).is_not(None))
                )
            ).one()
            failed = (
                await session.exec(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(col(OutboxMessage.failed_at).is_not(None))
                )
            ).one()
        twice = duplicates(api, [actor.telegram_id for actor in cast.values()])
        doubled = sum(len(texts) for texts in twice.values())
        which = Counter(text.splitlines()[-1][:12] for texts in twice.values() for text in texts)
        figures = (
            f"{replay} run {run:.1f} s, kills: {', '.join(map(str, kills)) or 'none'}; "
            f"sent twice: {doubled} {dict(which)} in {len(twice)} chats; hangs: {len(crowd.hangs)}; "
            f"failed outbox rows: {failed}; updates: {len(crowd.updates)}"
        )
        print(figures)

        assert kills, f"{figures}: the run ended before the first kill"
        assert not crowd.hangs, f"{figures}: the bot left these steps unanswered: {crowd.hangs}"
        assert crowd.finished == {who.key for who in reporters}, figures
        for who in reporters:
            assert who.key in crowd.confirmed, f"{figures}: {who.key} never pressed 确认提交"
            count = tickets.get(who.person_id, 0)
            assert count == 1, f"{figures}: {who.key} has {count} tickets"
            ticket = ticket_of[who.person_id]
            assert ticket.level == 1 and ticket.level_confirmed, f"{figures}: {who.key}: {ticket}"
            told = {int(m[1]) for text in texts_to(api, who.telegram_id) if (m := SUBMITTED.search(text))}
            assert told == {ticket.id}, f"{figures}: {who.key} has ticket #{ticket.id}, was told {told}"
        assert sum(tickets.values()) == REPORTERS, f"{figures}: tickets {tickets}"
        assert not any(left.values()), f"{figures}: not settled after {SETTLE_LIMIT} s: {left}"
        silent = unanswered_messages(api, crowd.updates)
        assert not silent, f"{figures}: no answer to {silent}"
        assert given_up == 0, f"{figures}: {given_up} updates were given up\n{service.tail()}"
        assert doubled <= DUPLICATES_PER_KILL * len(kills), figures


def texts_to(api: FakeBotApi, chat: int) -> list[str]:
    """The texts of the bot's messages in a chat."""
    return [message.text or "" for message in api.messages_to(chat)]
