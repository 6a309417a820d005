"""The command line as an operator uses it: set up, sites, the policy, tickets."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.clock import ManualClock
from handlers.sla.policy import DEFAULT_POLICY_PATH, PolicyBook, load_policy
from handlers.tickets.service import TicketService
from storage.engine import create_engine, create_session_factory, transaction
from storage.enums import Role
from storage.migrate import head_revision
from storage.models import Person
from storage.repositories.people import add_membership
from storage.repositories.sites import site_by_slug, subsystems
from tests.bot.conftest import Cli

DUTYDESK = Path(sys.executable).with_name("dutydesk")


def _row(output: str, *words: str) -> str:
    """The one output line containing every word."""
    lines = [line for line in output.splitlines() if all(word in line for word in words)]
    assert len(lines) == 1, (words, output)
    return lines[0]


def test_the_done_when_commands_print_the_seed_times(tmp_path: Path) -> None:
    """The issue's acceptance line, run as a user would, as separate processes."""
    env = {**os.environ, "DUTYDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dutydesk.db'}"}
    env.pop("DUTYDESK_POLICY", None)

    def dutydesk(*args: str) -> str:
        done = subprocess.run([str(DUTYDESK), *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    dutydesk("init")
    dutydesk("site", "add", "示例法院", "--slug", "demo")
    out = dutydesk("sla", "show", "--site", "demo", "--level", "1", "--at", "2026-12-01 09:00")
    assert "2026-12-01 09:10" in _row(out, "response")
    assert "2026-12-01 13:00" in _row(out, "restore")
    assert "2026-12-01 21:00" in _row(out, "resolve")
    assert "Asia/Shanghai" in out


def test_sla_show_without_a_site_lists_every_level(demo: Cli) -> None:
    out = demo.ok("sla", "show", "--at", "2026-12-01 09:00")
    assert "2026-12-01 09:30" in _row(out, "2 ", "response")
    assert "2026-12-02 09:00" in _row(out, "2 ", "resolve")
    assert "after arrival" in _row(out, "3 ", "resolve")
    assert "restore" not in _row(out, "3 ", "response")
    assert "classification within 10m (provisional level 2)" in out


def test_sla_show_refuses_a_bad_time_and_an_unknown_site(demo: Cli) -> None:
    result = demo("sla", "show", "--at", "tomorrow")
    assert result.exit_code == 1 and "YYYY-MM-DD HH:MM" in result.stderr
    result = demo("sla", "show", "--site", "nowhere")
    assert result.exit_code == 1 and "no site 'nowhere'" in result.stderr


def test_commands_before_init_say_what_to_do(cli: Cli) -> None:
    result = cli("site", "list")
    assert result.exit_code == 1
    assert "is not initialised; run: dutydesk init" in result.stderr


def test_init_is_idempotent(cli: Cli) -> None:
    head = head_revision()
    assert f"revision {head}" in cli.ok("init")
    assert f"revision {head}" in cli.ok("init")
    assert cli.query("SELECT version_num FROM alembic_version") == [(head,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["示例", "--slug", "Demo!"], "lowercase letters"),
        (["示例", "--slug", "demo2", "--tz", "Mars/Olympus"], "time zone 'Mars/Olympus' is unknown"),
        (["示例法院", "--slug", "demo"], "already exists"),
    ],
)
def test_site_add_refuses_bad_input_and_changes_nothing(demo: Cli, args: list[str], message: str) -> None:
    before = demo.query("SELECT slug FROM site")
    result = demo("site", "add", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert demo.query("SELECT slug FROM site") == before


def test_site_add_seeds_the_subsystems_and_keeps_the_time_zone(demo: Cli) -> None:
    assert "12 subsystems" in demo.ok(
        "site", "add", "乌鲁木齐中院", "--slug", "urumqi", "--tz", "Asia/Urumqi"
    )
    out = demo.ok("site", "list")
    assert "Asia/Urumqi" in _row(out, "urumqi")
    count = demo.query("SELECT count(*) FROM subsystem JOIN site ON site.id = site_id WHERE slug = 'urumqi'")
    assert count == [(12,)]


def test_a_site_policy_override_changes_that_site_only(demo: Cli) -> None:
    demo.ok("site", "add", "另一法院", "--slug", "other")
    (demo.home / "fast.toml").write_text('[levels.1]\nresponse = "5m"\n', encoding="utf-8")
    demo.ok("site", "policy", "demo", "fast.toml")
    at = ("--level", "1", "--at", "2026-12-01 09:00")
    assert "09:05" in _row(demo.ok("sla", "show", "--site", "demo", *at), "response")
    assert "09:10" in _row(demo.ok("sla", "show", "--site", "other", *at), "response")
    assert "13:00" in _row(demo.ok("sla", "show", "--site", "demo", *at), "restore")

    (demo.home / "bad.toml").write_text('[levels.1]\nrespond = "5m"\n', encoding="utf-8")
    result = demo("site", "policy", "demo", "bad.toml")
    assert result.exit_code == 2
    assert (
        "bad.toml" in result.stderr and "levels.1.respond" in result.stderr and "unknown key" in result.stderr
    )
    assert "09:05" in _row(demo.ok("sla", "show", "--site", "demo", *at), "response")

    demo.ok("site", "policy", "demo", "--clear")
    assert "09:10" in _row(demo.ok("sla", "show", "--site", "demo", *at), "response")


def test_a_malformed_policy_file_stops_every_command_at_start(
    demo: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = demo.home / "policy.toml"
    default = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    policy.write_text(default.replace('"4h"', '"4 hours"'), encoding="utf-8")
    monkeypatch.setenv("DUTYDESK_POLICY", str(policy))
    for command in (["sla", "show"], ["run"], ["tickets"]):
        result = demo(*command)
        assert result.exit_code == 2, command
        assert str(policy) in result.stderr
        assert "levels.1.restore" in result.stderr and "bad duration '4 hours'" in result.stderr


async def _seed_tickets(db_path: Path) -> None:
    """Two tickets through the real service: one open at level 1, one resolved at level 3."""
    engine = create_engine(f"sqlite+aiosqlite:///{db_path}")
    factory = create_session_factory(engine)
    clock = ManualClock(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    async with transaction(factory) as session:
        site = await site_by_slug(session, "demo")
        assert site is not None and site.id is not None
        people = {}
        for name, role in (("王晓丽", Role.REPORTER), ("刘建国", Role.ENGINEER)):
            person = Person(name=name, created_at=clock.now())
            session.add(person)
            await session.flush()
            await add_membership(session, person.id or 0, site.id, role)
            people[role] = person.id or 0
        network = (await subsystems(session, site.id))[3]
        service = TicketService(session, PolicyBook(load_policy()), clock)
        first = await service.report(
            site_id=site.id,
            reporter_id=people[Role.REPORTER],
            subsystem_id=network.id or 0,
            description="全院断网",
        )
        await service.classify(first.id or 0, people[Role.REPORTER], 1, confirmed=True)
        clock.advance(timedelta(minutes=4))
        await service.acknowledge(first.id or 0, people[Role.ENGINEER])
        second = await service.report(
            site_id=site.id,
            reporter_id=people[Role.REPORTER],
            subsystem_id=network.id or 0,
            description="打印机卡纸",
        )
        await service.classify(second.id or 0, people[Role.REPORTER], 3, confirmed=True)
        await service.acknowledge(second.id or 0, people[Role.ENGINEER])
        await service.arrive(second.id or 0, people[Role.ENGINEER])
        await service.resolve(second.id or 0, people[Role.ENGINEER], "换了定影器")
        await service.close(second.id or 0, people[Role.REPORTER])
    await engine.dispose()


def test_tickets_list_and_show_in_the_sites_local_time(demo: Cli) -> None:
    asyncio.run(_seed_tickets(demo.database))
    now = ("--now", "2026-12-01 09:05")  # the seeded clock's time, whatever today is
    listing = demo.ok(*now, "tickets")
    assert "全院断网" not in listing  # the list is one line a ticket; details are in show
    assert "acknowledged" in _row(listing, "│ 1 ") and "closed" in _row(listing, "│ 2 ")
    open_only = demo.ok(*now, "tickets", "--site", "demo", "--open")
    assert "acknowledged" in open_only and "closed" not in open_only
    assert "2026-12-01 09:00" in _row(open_only, "│ 1 ")
    assert "2026-12-01 13:00" in _row(open_only, "│ 1 ")  # next due: restore

    shown = demo.ok(*now, "tickets", "show", "1")
    assert "Asia/Shanghai" in shown and "全院断网" in shown
    assert "2026-12-01 09:10" in _row(shown, "response") and "2026-12-01 09:04" in _row(shown, "response")
    assert "met" in _row(shown, "response")
    assert "2026-12-01 13:00" in _row(shown, "restore") and "running" in _row(shown, "restore")
    assert "classified → acknowledged" in _row(shown, "acknowledge ")
    assert "2026-12-01 09:04:00" in _row(shown, "acknowledge ")

    later = demo.ok("--now", "2026-12-01T06:30:00+00:00", "tickets", "show", "1")  # 14:30 in Shanghai
    assert "breached" in _row(later, "restore") and "running" in _row(later, "resolve")

    closed = demo.ok(*now, "tickets", "show", "2")
    assert "note=换了定影器" in _row(closed, "on_site → resolved")
    assert "2026-12-03 09:04" in _row(closed, "│ resolve  │")  # 48 h from arrival
    assert "resolved → closed" in closed


def test_a_malformed_now_is_refused_clearly(demo: Cli) -> None:
    code, out, err = demo.run("--now", "yesterday", "tickets")
    assert code == 2 and "--now 'yesterday'" in err and "YYYY-MM-DD HH:MM" in err and not out


def test_tickets_show_of_a_missing_ticket(demo: Cli) -> None:
    result = demo("tickets", "show", "99")
    assert result.exit_code == 1 and "no ticket 99" in result.stderr
