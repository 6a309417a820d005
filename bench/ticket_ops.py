"""Ticket operations per second on each engine, against a same-run baseline.

Baseline: one committed transaction doing one small INSERT (what any write costs on that
engine). Measured: one ticket change through TicketService (lock, check, event, deadlines),
each in its own transaction as the bot does. The ratio says how many plain writes one
ticket change costs, which stays meaningful on a noisy shared machine.

    .venv/bin/python -m bench.ticket_ops [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from handlers.clock import ManualClock
from handlers.sla.policy import PolicyBook, load_policy
from handlers.tickets.service import TicketService
from storage.engine import create_engine, create_session_factory, transaction
from storage.enums import Role
from storage.migrate import upgrade
from storage.models import Person
from storage.repositories.people import add_membership
from storage.repositories.sites import create_site, subsystems

ROUNDS = 5
PER_ROUND = 200


async def measure(url: str, schema: str | None) -> tuple[float, float]:
    """Median seconds per baseline write and per ticket change."""
    kwargs = {"connect_args": {"server_settings": {"search_path": schema}}} if schema else {}
    engine = create_engine(url, **kwargs)
    await upgrade(engine)
    factory = create_session_factory(engine)
    clock = ManualClock(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    policies = PolicyBook(load_policy())
    async with transaction(factory) as session:
        site = await create_site(session, "bench", "bench", clock.now())
        engineer = Person(name="e", created_at=clock.now())
        session.add(engineer)
        await session.flush()
        await add_membership(session, engineer.id or 0, site.id or 0, Role.ENGINEER)
        subsystem = (await subsystems(session, site.id or 0))[0]
        ticket = await TicketService(session, policies, clock).report(
            site_id=site.id or 0,
            reporter_id=engineer.id or 0,
            subsystem_id=subsystem.id or 0,
            description="x",
        )
        await (await session.connection()).execute(
            text("CREATE TABLE bench_baseline (id INTEGER PRIMARY KEY, note VARCHAR(40))")
        )
    base_times, op_times = [], []
    next_id = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(PER_ROUND):
            next_id += 1
            async with transaction(factory) as session:
                await (await session.connection()).execute(
                    text("INSERT INTO bench_baseline (id, note) VALUES (:i, 'x')"), {"i": next_id}
                )
        base_times.append((time.perf_counter() - start) / PER_ROUND)
        start = time.perf_counter()
        for n in range(PER_ROUND):
            async with transaction(factory) as session:
                await TicketService(session, policies, clock).note(ticket.id or 0, engineer.id or 0, f"n{n}")
        op_times.append((time.perf_counter() - start) / PER_ROUND)
    await engine.dispose()
    return statistics.median(base_times), statistics.median(op_times)


async def main() -> None:
    """Print the figures for SQLite and, if given, PostgreSQL."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch schema is created and dropped)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        targets: list[tuple[str, str, str | None]] = [
            ("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", None)
        ]
        if args.postgres:
            targets.append(("postgresql", args.postgres, f"bench_{uuid.uuid4().hex[:8]}"))
        for name, url, schema in targets:
            if schema:
                admin = create_engine(url)
                async with admin.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                base, op = await measure(url, schema)
            finally:
                if schema:
                    async with admin.begin() as conn:
                        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    await admin.dispose()
            print(
                f"{name:10s} baseline write {base * 1000:7.3f} ms | ticket change {op * 1000:7.3f} ms "
                f"({1 / op:7.0f}/s) | ratio {op / base:5.2f}x  (median of {ROUNDS} rounds x {PER_ROUND})"
            )


if __name__ == "__main__":
    asyncio.run(main())
