"""SLA timers at scale: firing lateness, start-up with a backlog, the cost of an idle sweep.

For SQLite (always) and PostgreSQL (--postgres URL, in a scratch schema). Every timer points
at one real ticket that is closed, so the sweep locks and loads it (one query per batch of
timers, as in production) and ``fire()`` returns at once: what is measured is the claiming
and waking machinery, not the escalation work.

(a) Firing lateness, with the real Clockwork (not a loop of our own): N pending timers
    (default 100,000) due evenly over S seconds (default 60) of the real clock, starting a
    moment after the bulk insert ends; Clockwork (the periodic sweep every 5 s, as the
    service runs it, plus the date job at the next due time) drives the real Sweeper on the
    real SystemClock until every timer has fired. Per timer:
    claim  = fired_at - due_at, exactly what is stored (the sweep batch's now, taken just
             before its claiming UPDATE);
    commit = when the claiming transaction had committed - due_at (the Sweeper's deliver
             callback runs after each commit; a SystemClock subclass remembers, per asyncio
             task, the times it told since, so each fired_at maps to its batch's commit).
    p50 / p99 / max of each; the goal is p99 <= 1 s. Also counted: next-due wake-ups that
    APScheduler skipped ("maximum number of running instances") and so never happened.
    With --mirror, the same again woken by a plain asyncio loop that does what Clockwork
    means to do (sweep; sleep until the next due time or the 5 s tick, whichever is first):
    the lateness the claiming machinery allows when no wake-up is lost.
(b) Start-up with a backlog. A subprocess (``python -m bench.timers --child``) builds the
    engine, runs Clockwork.start() and a first reschedule() and says it is ready; measured:
    time from spawning it to ready, the part spent in start() + reschedule(), and its RSS at
    ready (VmRSS from /proc/self/status), with 100,000 pending rows (due tomorrow) against a
    baseline of 0 rows (median of 3 runs each). Then once with the 100,000 rows overdue (the
    service was down while they fell due): start() sweeps them before it returns.
(c) An idle sweep: Sweeper.sweep() when nothing is due, and the next_due() query that every
    reschedule() runs, at 1k, 10k and 100k pending rows (median of 50 each); it must not grow
    with the pending rows, so the ratio 100k/1k is printed. Also once with the 100k rows that
    (b)'s overdue run fired still in the table and none pending.

Rows are created with executemany INSERTs through session.connection(). PostgreSQL gets an
ANALYZE after each bulk load (autovacuum would in production); SQLite none (as in production).
--quick: 10k timers over 10 s, sizes 1k/10k, one run each (well under a minute per engine).

    .venv/bin/python -m bench.timers [--quick] [--mirror] [--timers N] [--spread S]
                                     [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
)
from sqlalchemy import delete, func, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, col, select

from handlers.clock import SystemClock
from handlers.messages import Reply
from handlers.sla.policy import PolicyBook, load_policy
from scheduler.clockwork import NEXT_DUE, Clockwork
from scheduler.sweep import Deliver, Sweeper
from storage.engine import SessionFactory, create_engine, create_session_factory, transaction
from storage.enums import Clock as SlaClock
from storage.enums import TicketStatus
from storage.migrate import upgrade
from storage.models import Person, Ticket, Timer
from storage.repositories.sites import create_site
from storage.repositories.timers import next_due

ROOT = Path(__file__).resolve().parents[1]
TIMER_TABLE = SQLModel.metadata.tables["timer"]
CHUNK = 20_000
IDLE_SWEEPS = 50
CHILD_TIMEOUT = 300.0
GOAL_P99 = 1.0
INTERVAL = 5.0  # the periodic sweep of the service (bot.service.TICK_SECONDS)


@dataclass
class Target:
    """One database to measure."""

    name: str
    url: str
    schema: str | None = None

    def engine(self) -> AsyncEngine:
        """An engine whose connections live in the scratch schema, if any."""
        if self.schema is None:
            return create_engine(self.url)
        return create_engine(self.url, connect_args={"server_settings": {"search_path": self.schema}})


@dataclass
class Settings:
    """The sizes of one run."""

    timers: int
    spread: float
    sizes: tuple[int, ...]
    backlog: int
    repeats: int
    mirror: bool = False


class StampingClock(SystemClock):
    """The real clock, remembering per asyncio task the times it told since the last commit.

    A sweep batch asks for now() to claim (that value becomes fired_at) and maybe again
    before it commits; deliver() runs in the same task right after the commit, so every time
    told in that batch can be mapped to the moment the batch committed.
    """

    def __init__(self) -> None:
        self.told: dict[asyncio.Task[Any] | None, list[datetime]] = {}

    def now(self) -> datetime:
        """The current time in UTC."""
        moment = super().now()
        self.told.setdefault(asyncio.current_task(), []).append(moment)
        return moment

    def committed(self) -> list[datetime]:
        """The times told in the current task since the last call."""
        return self.told.pop(asyncio.current_task(), [])


class TrackedSweep:
    """Sweeper.sweep() as Clockwork calls it, counted."""

    def __init__(self, sweeper: Sweeper) -> None:
        self.sweeper = sweeper
        self.sweeps = 0

    async def __call__(self) -> int:
        self.sweeps += 1
        return await self.sweeper.sweep()


class QuietStop:
    """Counts the clockwork's jobs in flight, to stop it between them: Clockwork.stop()
    cancels a running job (a sweep or its reschedule) halfway."""

    def __init__(self, clockwork: Clockwork) -> None:
        self.clockwork = clockwork
        self.running = 0
        self.idle = asyncio.Event()
        self.idle.set()
        events = EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
        clockwork.scheduler.add_listener(self._on_event, events)

    def _on_event(self, event: Any) -> None:
        self.running += 1 if event.code == EVENT_JOB_SUBMITTED else -1
        if self.running:
            self.idle.clear()
        else:
            self.idle.set()

    async def stop(self) -> None:
        """Stop the clockwork once no job is running."""
        while not self.idle.is_set():
            await self.idle.wait()
        self.clockwork.stop()


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def spread_str(values: Sequence[float]) -> str:
    """p50 / p99 / max in milliseconds."""
    if not values:
        return "(none)"
    p50, p99, top = percentile(values, 0.5), percentile(values, 0.99), max(values)
    return f"p50 {p50 * 1000:7.1f} | p99 {p99 * 1000:7.1f} | max {top * 1000:7.1f} ms"


def size_str(n: int) -> str:
    """100000 -> 100k."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def vm_kib(key: str) -> int:
    """A VmXXX line of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


async def no_delivery(_reply: Reply) -> None:
    """Timers of a closed ticket produce nothing to send."""


def sweeper_for(
    factory: SessionFactory, clock: SystemClock | None = None, deliver: Deliver = no_delivery
) -> Sweeper:
    """The production Sweeper on the real clock."""
    return Sweeper(factory, PolicyBook(load_policy()), clock or SystemClock(), deliver)


# --- data -------------------------------------------------------------------------------------


async def seed(factory: SessionFactory) -> int:
    """A site, a person and one closed ticket; its id."""
    now = datetime.now(UTC)
    async with transaction(factory) as session:
        site = await create_site(session, "bench", "bench", now)
        person = Person(name="p", created_at=now)
        session.add(person)
        await session.flush()
        ticket = Ticket(
            site_id=site.id or 0,
            reporter_id=person.id or 0,
            level=3,
            status=TicketStatus.CLOSED,
            description="bench",
            reported_at=now,
            clocks_started_at=now,
            closed_at=now,
        )
        session.add(ticket)
        await session.flush()
        assert ticket.id is not None
        return ticket.id


async def insert_timers(
    target: Target, factory: SessionFactory, ticket_id: int, dues: Sequence[datetime]
) -> float:
    """Bulk-insert pending breach timers due at ``dues``; seconds taken (ANALYZE included)."""
    start = time.perf_counter()
    for first in range(0, len(dues), CHUNK):
        rows: list[dict[str, Any]] = [
            {
                "ticket_id": ticket_id,
                "kind": "breach",
                "clock": SlaClock.RESOLVE,
                "fraction": None,
                "due_at": due,
                "fired_at": None,
            }
            for due in dues[first : first + CHUNK]
        ]
        async with transaction(factory) as session:
            await (await session.connection()).execute(insert(TIMER_TABLE), rows)
    if target.schema is not None:
        async with transaction(factory) as session:
            await (await session.connection()).execute(text("ANALYZE timer"))
    return time.perf_counter() - start


async def clear_timers(factory: SessionFactory) -> None:
    """Delete every timer."""
    async with transaction(factory) as session:
        await (await session.connection()).execute(delete(TIMER_TABLE))


async def count_pending(factory: SessionFactory) -> int:
    """How many timers have not fired."""
    async with transaction(factory) as session:
        query = select(func.count()).select_from(Timer).where(col(Timer.fired_at).is_(None))
        return int((await session.exec(query)).one())


def future_dues(n: int, offset: int = 0) -> list[datetime]:
    """``n`` due times from tomorrow on, a millisecond apart (rows ``offset``.. of a series)."""
    tomorrow = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return [tomorrow + timedelta(milliseconds=offset + i) for i in range(n)]


# --- (c) idle sweep ---------------------------------------------------------------------------


async def idle_costs(factory: SessionFactory) -> tuple[float, float]:
    """Median seconds of an idle Sweeper.sweep() and of the next_due() query of reschedule()."""
    sweeper = sweeper_for(factory)
    while await sweeper.sweep():  # nothing should be due; fire whatever is
        pass
    for _ in range(3):
        await sweeper.sweep()
    sweeps, lookups = [], []
    for _ in range(IDLE_SWEEPS):
        start = time.perf_counter()
        await sweeper.sweep()
        sweeps.append(time.perf_counter() - start)
        start = time.perf_counter()
        async with transaction(factory) as session:
            await next_due(session)
        lookups.append(time.perf_counter() - start)
    return statistics.median(sweeps), statistics.median(lookups)


# --- (b) start-up -----------------------------------------------------------------------------


@dataclass
class Startup:
    """One child's report."""

    total: float  # spawn to ready
    clockwork: float  # Clockwork.start() + reschedule()
    rss_mib: float
    peak_mib: float
    pending: int  # timers not yet fired when it was ready


async def child(url: str, schema: str | None) -> None:
    """The measured process: engine, Clockwork.start(), a first reschedule(), then report."""
    # A long start-up makes APScheduler skip the periodic job's next runs: expected here.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    engine = Target("child", url, schema).engine()
    factory = create_session_factory(engine)
    sweep = TrackedSweep(sweeper_for(factory))
    clockwork = Clockwork(factory, sweep, interval=INTERVAL)
    quiet = QuietStop(clockwork)
    start = time.perf_counter()
    await clockwork.start()
    await clockwork.reschedule()
    spent = time.perf_counter() - start
    ready = time.time()
    rss, peak = vm_kib("VmRSS"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {"ready": ready, "clockwork": spent, "rss_kib": rss, "peak_kib": peak}
    report["pending"] = await count_pending(factory)
    print(json.dumps(report), flush=True)
    await quiet.stop()
    await engine.dispose()


async def run_child(target: Target) -> Startup | None:
    """Spawn the child on ``target``; None if it was not ready within CHILD_TIMEOUT."""
    args = ["-m", "bench.timers", "--child", target.url]
    args += ["--schema", target.schema] if target.schema else []
    spawned = time.time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), CHILD_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    await proc.wait()
    report = json.loads(line)
    return Startup(
        report["ready"] - spawned,
        report["clockwork"],
        report["rss_kib"] / 1024,
        report["peak_kib"] / 1024,
        report["pending"],
    )


async def startups(target: Target, repeats: int) -> Startup:
    """Medians over ``repeats`` children."""
    runs = [run for _ in range(repeats) if (run := await run_child(target)) is not None]
    assert runs, "child never became ready"
    return Startup(
        statistics.median(r.total for r in runs),
        statistics.median(r.clockwork for r in runs),
        statistics.median(r.rss_mib for r in runs),
        statistics.median(r.peak_mib for r in runs),
        max(r.pending for r in runs),
    )


# --- (a) lateness -----------------------------------------------------------------------------


@dataclass
class Lateness:
    """Per fired timer, seconds late at claim and at commit."""

    claim: list[float] = field(default_factory=list)
    commit: list[float] = field(default_factory=list)
    sweeps: int = 0
    overran: float = 0.0  # how late the waking started against the first due time
    unfired: int = 0
    lost: int = 0  # next-due date job runs APScheduler skipped (the job was still running)


async def mirror_loop(factory: SessionFactory, sweep: TrackedSweep, stop: asyncio.Event) -> None:
    """What Clockwork means to do, in one task: sweep, then sleep until the next due time or
    the periodic tick, whichever comes first."""
    tick = time.monotonic() + INTERVAL
    while not stop.is_set():
        await sweep()
        async with transaction(factory) as session:
            due = await next_due(session)
        if time.monotonic() >= tick:
            tick = time.monotonic() + INTERVAL
        wait = tick - time.monotonic()
        if due is not None:
            wait = min(wait, (due - datetime.now(UTC)).total_seconds())
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)


async def lateness(
    target: Target, factory: SessionFactory, ticket_id: int, settings: Settings, lead: float, *, mirror: bool
) -> Lateness:
    """Fire timers due over ``settings.spread`` s from ``lead`` s from now on, woken by the real
    Clockwork or (``mirror``) by mirror_loop()."""
    n, spread = settings.timers, settings.spread
    await clear_timers(factory)
    base = datetime.now(UTC) + timedelta(seconds=lead)
    dues = [base + timedelta(seconds=spread * i / n) for i in range(n)]
    await insert_timers(target, factory, ticket_id, dues)
    result = Lateness()
    committed: dict[datetime, float] = {}
    clock = StampingClock()

    async def deliver(_reply: Reply) -> None:
        moment = time.time()
        for stamp in clock.committed():
            committed.setdefault(stamp, moment)

    sweep = TrackedSweep(sweeper_for(factory, clock, deliver))
    clockwork = Clockwork(factory, sweep, interval=INTERVAL)
    quiet = QuietStop(clockwork)

    def on_skip(event: Any) -> None:
        if event.job_id == NEXT_DUE:
            result.lost += 1

    clockwork.scheduler.add_listener(on_skip, EVENT_JOB_MAX_INSTANCES)
    stop = asyncio.Event()
    result.overran = max(0.0, (datetime.now(UTC) - base).total_seconds())
    runner = asyncio.create_task(mirror_loop(factory, sweep, stop)) if mirror else None
    if runner is None:
        await clockwork.start()
    deadline = time.time() + lead + spread + 120
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        if datetime.now(UTC) > dues[-1] and await count_pending(factory) == 0:
            break
    stop.set()
    if runner is not None:
        await runner
    await quiet.stop()
    result.sweeps = sweep.sweeps
    async with transaction(factory) as session:
        rows = (await session.exec(select(Timer.due_at, Timer.fired_at))).all()
    for due, fired in rows:
        if fired is None:
            result.unfired += 1
            continue
        result.claim.append((fired - due).total_seconds())
        if fired in committed:
            result.commit.append(committed[fired] - due.timestamp())
    return result


# --- driver -----------------------------------------------------------------------------------


async def measure(target: Target, settings: Settings) -> None:
    """Print (c), (b) and (a) for one database."""
    engine = target.engine()
    await upgrade(engine)
    factory = create_session_factory(engine)
    ticket_id = await seed(factory)
    name = f"{target.name:10s}"

    empty = await startups(target, settings.repeats)

    idle: list[tuple[int, float, float]] = []
    inserted, insert_seconds = 0, 0.0
    for size in settings.sizes:
        dues = future_dues(size - inserted, offset=inserted)
        insert_seconds += await insert_timers(target, factory, ticket_id, dues)
        inserted = size
        idle.append((size, *await idle_costs(factory)))
    rate = inserted / insert_seconds
    (small, small_sweep, small_due), (large, large_sweep, large_due) = idle[0], idle[-1]
    cells = " | ".join(f"{size_str(s)} {sweep * 1000:5.2f} ms" for s, sweep, _ in idle)
    lookups = "/".join(f"{due * 1000:.2f}" for _, _, due in idle)
    ratio = f"{size_str(large)}/{size_str(small)}"
    print(
        f"{name} (c) idle sweep {cells} | ratio {ratio} {large_sweep / small_sweep:4.2f}x | "
        f"next_due {lookups} ms, ratio {large_due / small_due:4.2f}x  (median of {IDLE_SWEEPS})"
    )
    print(f"{name}     bulk insert {rate:6.0f} rows/s ({inserted} rows in {insert_seconds:.2f} s)")

    loaded = await startups(target, settings.repeats)
    print(
        f"{name} (b) start-up 0 rows {empty.total:4.2f} s (clockwork {empty.clockwork * 1000:5.1f} ms) "
        f"RSS {empty.rss_mib:5.1f} MiB | {size_str(inserted)} pending {loaded.total:4.2f} s "
        f"(clockwork {loaded.clockwork * 1000:5.1f} ms) RSS {loaded.rss_mib:5.1f} MiB | "
        f"ratio {loaded.total / empty.total:4.2f}x, {loaded.rss_mib - empty.rss_mib:+4.1f} MiB  "
        f"(median of {settings.repeats})"
    )

    await clear_timers(factory)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    backlog = settings.backlog
    await insert_timers(
        target, factory, ticket_id, [hour_ago + timedelta(milliseconds=i) for i in range(backlog)]
    )
    overdue = await run_child(target)
    if overdue is None:
        left = await count_pending(factory)
        print(
            f"{name}     {size_str(backlog)} overdue at start: NOT ready after {CHILD_TIMEOUT:.0f} s "
            f"({backlog - left} fired by then)"
        )
    else:
        fired = backlog - overdue.pending
        print(
            f"{name}     {size_str(backlog)} overdue at start: ready after {overdue.total:5.1f} s, "
            f"{fired} fired in start() ({fired / overdue.clockwork:4.0f}/s), {overdue.pending} left "
            f"to the periodic sweep | RSS {overdue.rss_mib:5.1f} MiB (peak {overdue.peak_mib:5.1f} MiB)"
        )
    fired_sweep, fired_due = await idle_costs(factory)
    print(
        f"{name} (c) idle sweep with {size_str(backlog)} fired rows, none pending "
        f"{fired_sweep * 1000:5.2f} ms ({fired_sweep / small_sweep:4.2f}x {size_str(small)} pending) | "
        f"next_due {fired_due * 1000:5.2f} ms ({fired_due / small_due:4.2f}x)"
    )

    lead = 2.0 + 1.5 * settings.timers / rate
    for mirror in (False, True) if settings.mirror else (False,):
        late = await lateness(target, factory, ticket_id, settings, lead, mirror=mirror)
        worst = max(
            percentile(late.claim or [float("inf")], 0.99), percentile(late.commit or [float("inf")], 0.99)
        )
        label = "mirror loop" if mirror else "Clockwork"
        print(
            f"{name} (a) {label} {size_str(settings.timers)} timers over {settings.spread:.0f} s: "
            f"claim {spread_str(late.claim)} | commit {spread_str(late.commit)}"
        )
        lost = "" if mirror else f", {late.lost} next-due wake-ups skipped by APScheduler"
        overran = f", started {late.overran:.2f} s after the first due time" if late.overran else ""
        verdict = "yes" if worst <= GOAL_P99 else "NO"
        print(
            f"{name}     {label}: {late.sweeps} sweeps{lost}, {late.unfired} unfired{overran} "
            f"| p99 <= {GOAL_P99:.0f} s: {verdict}"
        )
    await engine.dispose()


async def main() -> None:
    """Print the figures for SQLite and, if given, PostgreSQL."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch schema is created and dropped)")
    parser.add_argument("--quick", action="store_true", help="10k timers over 10 s, sizes 1k/10k, 1 run each")
    parser.add_argument("--mirror", action="store_true", help="(a) again, woken by a plain asyncio loop")
    parser.add_argument("--timers", type=int, help="timers fired in (a) (default 100000; --quick 10000)")
    parser.add_argument("--spread", type=float, help="seconds (a)'s timers are spread over (default 60)")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(args.child, args.schema)
        return
    if args.quick:
        settings = Settings(10_000, 10.0, (1_000, 10_000), 10_000, 1)
    else:
        settings = Settings(100_000, 60.0, (1_000, 10_000, 100_000), 100_000, 3)
    settings.timers = args.timers or settings.timers
    settings.spread = args.spread or settings.spread
    settings.mirror = args.mirror
    # Skipped next-due runs are counted and printed with (a); keep APScheduler's log quiet.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        targets = [Target("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")]
        if args.postgres:
            targets.append(Target("postgresql", args.postgres, f"bench_{uuid.uuid4().hex[:8]}"))
        for target in targets:
            admin = create_engine(target.url) if target.schema else None
            if admin is not None:
                async with admin.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA "{target.schema}"'))
            try:
                await measure(target, settings)
            finally:
                if admin is not None:
                    async with admin.begin() as conn:
                        await conn.execute(text(f'DROP SCHEMA "{target.schema}" CASCADE'))
                    await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
