"""Due timers at scale: firing lateness, start-up with a backlog, the cost of a due-work run.

For SQLite (always) and PostgreSQL (--postgres URL, in a scratch schema). Every timer points
at one real ticket that is closed, so the sweep locks and loads it (one query per batch of
timers, as in production) and ``escalation.fire()`` returns at once: what is measured is the
claiming and waking machinery, not the escalation work.

Nothing polls: Clockwork holds one APScheduler date job at the earliest due row
(``storage.repositories.due.next_due``, as the service asks it), whoever commits due rows moves
it through the port (here, after the bulk insert: ``clockwork.wake_at(earliest due)``), and each
run does the due work until nothing is due now, then waits for the next due time. The due work
here is the real Sweeper; the service's also retries stored updates and kicks the outbox, which
do not depend on the timers. (There is no periodic sweep any more: what the old (a) and (c)
measured of it is replaced by the figures below.)

(a) Firing lateness, with the real Clockwork (not a loop of our own): N pending timers
    (default 100,000) due evenly over S seconds (default 60) of the real clock, starting a
    moment after the bulk insert ends. The clockwork is started beforehand on an empty table
    (its first run finds nothing), woken once by wake_at(first due time) after the insert,
    and drives the real Sweeper on the real SystemClock until every timer has fired. Per timer:
    claim  = fired_at - due_at, exactly what is stored (the sweep batch's now, taken just
             before its claiming UPDATE);
    commit = when the claiming transaction had committed - due_at (a SQLAlchemy after_commit
             hook; a SystemClock subclass remembers, per asyncio task, the times it told since
             the last commit, so each fired_at maps to its batch's commit. The Sweeper's wake
             cannot serve: it only hears batches that made something due, and the timers of a
             closed ticket make nothing due).
    p50 / p99 / max of each; the goal is p99 <= 1 s. Also counted: the due-work runs, the
    next-due runs APScheduler skipped ("maximum number of running instances": the run before
    was still going; it reads next_due() again before it stops, so nothing is lost), and the
    runs in the 5 s after the last timer fired, when nothing is due (the old clockwork swept
    once every 5 s; this one should not run at all).
    With --mirror, the same again woken by a plain asyncio loop that does what Clockwork
    means to do (sweep; sleep until the next due time or a wake_at, whichever is first): the
    lateness the claiming machinery allows without APScheduler in the way.
(b) Start-up with a backlog. A subprocess (``python -m bench.timers --child``) builds the
    engine and runs Clockwork.start(), which returns at once (the first run, what fell due
    while the service was down, goes on in the background), then waits for that first run to
    end (sweep, next_due(), the wake-up set) and reports. Measured: time from spawning it to
    start() returning ("ready"), the first run's time (from calling start() to its end), and
    its RSS after the first run (VmRSS from /proc/self/status), with 100,000 pending rows (due
    tomorrow) against a baseline of 0 rows (median of 3 runs each). Then once with the
    100,000 rows overdue (the service was down while they fell due): the first run fires them.
(c) One due-work run when nothing is due now: Sweeper.sweep() followed by the next_due() that
    ends every run (what each wake-up costs at least), and that next_due() alone, at 1k, 10k
    and 100k pending rows (median of 50 each); it must not grow with the pending rows, so the
    ratio 100k/1k is printed. Also once with the 100k rows that (b)'s overdue run fired still
    in the table and none pending.

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
from collections.abc import Awaitable, Callable, Iterator, Sequence
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
from sqlalchemy import delete, event, func, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col, select

from handlers.clock import SystemClock
from handlers.sla.policy import PolicyBook, load_policy
from scheduler.clockwork import NEXT_DUE, Clockwork
from scheduler.sweep import Sweeper
from storage.engine import SessionFactory, create_engine, create_session_factory, transaction
from storage.enums import Clock as SlaClock
from storage.enums import TicketStatus
from storage.migrate import upgrade
from storage.models import Person, Ticket, Timer
from storage.repositories.due import next_due
from storage.repositories.sites import create_site

ROOT = Path(__file__).resolve().parents[1]
TIMER_TABLE = SQLModel.metadata.tables["timer"]
CHUNK = 20_000
RUN_SAMPLES = 50
CHILD_TIMEOUT = 300.0
GOAL_P99 = 1.0
IDLE_WATCH = 5.0  # seconds watched after the last timer fired (the old periodic sweep's interval)
STARTUP = "startup"  # the id of Clockwork's first run


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

    A sweep batch asks for now() to claim (that value becomes fired_at); the after_commit hook
    of commit_times() runs in the same task when the batch commits, so every time told in that
    batch can be mapped to the moment the batch committed.
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


@contextlib.contextmanager
def commit_times(clock: StampingClock) -> Iterator[dict[datetime, float]]:
    """While open: for every time ``clock`` told, the wall time its task's next commit ended."""
    committed: dict[datetime, float] = {}

    def after_commit(_session: Session) -> None:
        moment = time.time()
        for stamp in clock.committed():
            committed.setdefault(stamp, moment)

    event.listen(Session, "after_commit", after_commit)
    try:
        yield committed
    finally:
        event.remove(Session, "after_commit", after_commit)


class TrackedSweep:
    """Sweeper.sweep() as the clockwork's due work, counted."""

    def __init__(self, sweeper: Sweeper) -> None:
        self.sweeper = sweeper
        self.runs = 0
        self.claimed = 0

    async def __call__(self) -> None:
        self.runs += 1
        self.claimed += await self.sweeper.sweep()


def due_lookup(factory: SessionFactory) -> Callable[[], Awaitable[datetime | None]]:
    """The clockwork's next_due, as the service asks it (one transaction)."""

    async def lookup() -> datetime | None:
        async with transaction(factory) as session:
            return await next_due(session)

    return lookup


def clockwork_for(factory: SessionFactory, work: TrackedSweep) -> Clockwork:
    """The production Clockwork doing ``work``, on the real clock."""
    return Clockwork(work, due_lookup(factory), SystemClock().now)


class QuietStop:
    """Counts the clockwork's jobs in flight, to stop it between them (Clockwork.stop() does
    not wait for a running job), and notes when its first run has ended."""

    def __init__(self, clockwork: Clockwork) -> None:
        self.clockwork = clockwork
        self.running = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.started = asyncio.Event()  # the first run (job "startup") has ended
        events = EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
        clockwork.scheduler.add_listener(self._on_event, events)

    def _on_event(self, event: Any) -> None:
        self.running += 1 if event.code == EVENT_JOB_SUBMITTED else -1
        if event.code != EVENT_JOB_SUBMITTED and event.job_id == STARTUP:
            self.started.set()
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


def sweeper_for(factory: SessionFactory, clock: SystemClock | None = None) -> Sweeper:
    """The production Sweeper on the real clock (timers of a closed ticket make nothing due,
    so it needs no wake)."""
    return Sweeper(factory, PolicyBook(load_policy()), clock or SystemClock())


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
    """Bulk-insert pending breach timers due at ``dues``; seconds taken (ANALYZE included).
    The caller tells the clockwork (if one runs) when the earliest falls due."""
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


# --- (c) a due-work run -----------------------------------------------------------------------


async def run_costs(factory: SessionFactory) -> tuple[float, float]:
    """Median seconds of one due-work run with nothing due now (Sweeper.sweep(), then the
    next_due() that ends every run), and of that next_due() alone."""
    sweeper = sweeper_for(factory)
    lookup = due_lookup(factory)
    while await sweeper.sweep():  # nothing should be due; fire whatever is
        pass
    for _ in range(3):
        await sweeper.sweep()
        await lookup()
    runs, lookups = [], []
    for _ in range(RUN_SAMPLES):
        start = time.perf_counter()
        await sweeper.sweep()
        middle = time.perf_counter()
        await lookup()
        end = time.perf_counter()
        runs.append(end - start)
        lookups.append(end - middle)
    return statistics.median(runs), statistics.median(lookups)


# --- (b) start-up -----------------------------------------------------------------------------


@dataclass
class Startup:
    """One child's report."""

    total: float  # spawn to ready (start() returned)
    start: float  # Clockwork.start() itself
    first_run: float  # from calling start() to the end of the first run
    rss_mib: float  # after the first run
    peak_mib: float
    fired: int  # timers the first run claimed
    pending: int  # timers not yet fired after the first run


async def child(url: str, schema: str | None) -> None:
    """The measured process: engine, Clockwork.start(), its first run, then report."""
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    engine = Target("child", url, schema).engine()
    factory = create_session_factory(engine)
    work = TrackedSweep(sweeper_for(factory))
    clockwork = clockwork_for(factory, work)
    quiet = QuietStop(clockwork)
    start = time.perf_counter()
    await clockwork.start()
    started = time.perf_counter()
    ready = time.time()
    await quiet.started.wait()
    first_run = time.perf_counter() - start
    rss, peak = vm_kib("VmRSS"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report: dict[str, Any] = {
        "ready": ready,
        "start": started - start,
        "first_run": first_run,
        "rss_kib": rss,
        "peak_kib": peak,
        "fired": work.claimed,
    }
    report["pending"] = await count_pending(factory)
    print(json.dumps(report), flush=True)
    await quiet.stop()
    await engine.dispose()


async def run_child(target: Target) -> Startup | None:
    """Spawn the child on ``target``; None if its first run did not end within CHILD_TIMEOUT."""
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
        report["start"],
        report["first_run"],
        report["rss_kib"] / 1024,
        report["peak_kib"] / 1024,
        report["fired"],
        report["pending"],
    )


async def startups(target: Target, repeats: int) -> Startup:
    """Medians over ``repeats`` children."""
    runs = [run for _ in range(repeats) if (run := await run_child(target)) is not None]
    assert runs, "child never finished its first run"
    return Startup(
        statistics.median(r.total for r in runs),
        statistics.median(r.start for r in runs),
        statistics.median(r.first_run for r in runs),
        statistics.median(r.rss_mib for r in runs),
        statistics.median(r.peak_mib for r in runs),
        max(r.fired for r in runs),
        max(r.pending for r in runs),
    )


# --- (a) lateness -----------------------------------------------------------------------------


@dataclass
class Lateness:
    """Per fired timer, seconds late at claim and at commit."""

    claim: list[float] = field(default_factory=list)
    commit: list[float] = field(default_factory=list)
    runs: int = 0
    overran: float = 0.0  # how late the waking started against the first due time
    unfired: int = 0
    skipped: int = 0  # next-due runs APScheduler skipped (the run before was still going)
    idle_runs: int = 0  # runs in the IDLE_WATCH seconds after the last timer fired


class MirrorLoop:
    """What Clockwork means to do, in one task: run the due work, then sleep until the next
    due time or a wake_at(), whichever comes first."""

    def __init__(self, factory: SessionFactory, work: TrackedSweep) -> None:
        self.work, self.lookup = work, due_lookup(factory)
        self.woken = asyncio.Event()
        self.stopping = False

    def wake_at(self, _at: datetime) -> None:
        """Something falls due at ``_at``: look again (the loop reads next_due itself)."""
        self.woken.set()

    def stop(self) -> None:
        """End the loop after its current run."""
        self.stopping = True
        self.woken.set()

    async def run(self) -> None:
        """Run until stop()."""
        while not self.stopping:
            self.woken.clear()
            await self.work()
            due = await self.lookup()
            wait = None if due is None else (due - datetime.now(UTC)).total_seconds()
            if wait is not None and wait <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), wait)


async def lateness(
    target: Target, factory: SessionFactory, ticket_id: int, settings: Settings, lead: float, *, mirror: bool
) -> Lateness:
    """Fire timers due over ``settings.spread`` s from ``lead`` s from now on, woken by the real
    Clockwork or (``mirror``) by a MirrorLoop."""
    n, spread = settings.timers, settings.spread
    await clear_timers(factory)
    result = Lateness()
    clock = StampingClock()
    work = TrackedSweep(sweeper_for(factory, clock))
    loop: MirrorLoop | None = None
    runner: asyncio.Task[None] | None = None
    clockwork = clockwork_for(factory, work)
    quiet = QuietStop(clockwork)

    def on_skip(event: Any) -> None:
        if event.job_id == NEXT_DUE:
            result.skipped += 1

    clockwork.scheduler.add_listener(on_skip, EVENT_JOB_MAX_INSTANCES)
    with commit_times(clock) as committed:
        if mirror:
            loop = MirrorLoop(factory, work)
            runner = asyncio.create_task(loop.run())
        else:
            await clockwork.start()
            await quiet.started.wait()  # it found nothing due: it waits for a wake-up now
        base = datetime.now(UTC) + timedelta(seconds=lead)
        dues = [base + timedelta(seconds=spread * i / n) for i in range(n)]
        await insert_timers(target, factory, ticket_id, dues)
        # What every writer of due rows does after its commit, through the port.
        (loop or clockwork).wake_at(dues[0])
        result.overran = max(0.0, (datetime.now(UTC) - base).total_seconds())
        deadline = time.time() + lead + spread + 120
        while time.time() < deadline:
            await asyncio.sleep(0.5)
            if datetime.now(UTC) > dues[-1] and await count_pending(factory) == 0:
                break
        before = work.runs
        await asyncio.sleep(IDLE_WATCH)
        result.idle_runs = work.runs - before
        if loop is not None and runner is not None:
            loop.stop()
            await runner
        await quiet.stop()
    result.runs = work.runs
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


def startup_str(run: Startup) -> str:
    """Ready, start(), the first run and RSS of one start-up."""
    return (
        f"ready {run.total:4.2f} s (start() {run.start * 1000:5.1f} ms, first run "
        f"{run.first_run * 1000:6.1f} ms) RSS {run.rss_mib:5.1f} MiB"
    )


async def measure(target: Target, settings: Settings) -> None:
    """Print (c), (b) and (a) for one database."""
    engine = target.engine()
    await upgrade(engine)
    factory = create_session_factory(engine)
    ticket_id = await seed(factory)
    name = f"{target.name:10s}"

    empty = await startups(target, settings.repeats)

    costs: list[tuple[int, float, float]] = []
    inserted, insert_seconds = 0, 0.0
    for size in settings.sizes:
        dues = future_dues(size - inserted, offset=inserted)
        insert_seconds += await insert_timers(target, factory, ticket_id, dues)
        inserted = size
        costs.append((size, *await run_costs(factory)))
    rate = inserted / insert_seconds
    (small, small_run, small_due), (large, large_run, large_due) = costs[0], costs[-1]
    cells = " | ".join(f"{size_str(s)} {run * 1000:5.2f} ms" for s, run, _ in costs)
    lookups = "/".join(f"{due * 1000:.2f}" for _, _, due in costs)
    ratio = f"{size_str(large)}/{size_str(small)}"
    print(
        f"{name} (c) due-work run, nothing due (sweep + next_due) {cells} | ratio {ratio} "
        f"{large_run / small_run:4.2f}x | next_due alone {lookups} ms, ratio "
        f"{large_due / small_due:4.2f}x  (median of {RUN_SAMPLES})"
    )
    print(f"{name}     bulk insert {rate:6.0f} rows/s ({inserted} rows in {insert_seconds:.2f} s)")

    loaded = await startups(target, settings.repeats)
    print(
        f"{name} (b) start-up 0 rows {startup_str(empty)} | {size_str(inserted)} pending "
        f"{startup_str(loaded)} | ratio {loaded.total / empty.total:4.2f}x, first run "
        f"{loaded.first_run / empty.first_run:4.2f}x, {loaded.rss_mib - empty.rss_mib:+4.1f} MiB  "
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
            f"{name}     {size_str(backlog)} overdue at start: first run NOT over after "
            f"{CHILD_TIMEOUT:.0f} s ({backlog - left} fired by then)"
        )
    else:
        print(
            f"{name}     {size_str(backlog)} overdue at start: ready after {overdue.total:4.2f} s "
            f"(start() {overdue.start * 1000:5.1f} ms); the first run fired {overdue.fired} in "
            f"{overdue.first_run:5.2f} s ({overdue.fired / overdue.first_run:5.0f}/s), "
            f"{overdue.pending} left | RSS {overdue.rss_mib:5.1f} MiB (peak {overdue.peak_mib:5.1f} MiB)"
        )
    fired_run, fired_due = await run_costs(factory)
    print(
        f"{name} (c) due-work run with {size_str(backlog)} fired rows, none pending "
        f"{fired_run * 1000:5.2f} ms ({fired_run / small_run:4.2f}x {size_str(small)} pending) | "
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
        skipped = "" if mirror else f", {late.skipped} next-due runs skipped by APScheduler"
        overran = f", started {late.overran:.2f} s after the first due time" if late.overran else ""
        verdict = "yes" if worst <= GOAL_P99 else "NO"
        print(
            f"{name}     {label}: {late.runs} due-work runs{skipped}, {late.unfired} unfired{overran}, "
            f"{late.idle_runs} runs in the {IDLE_WATCH:.0f} s after | p99 <= {GOAL_P99:.0f} s: {verdict}"
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
