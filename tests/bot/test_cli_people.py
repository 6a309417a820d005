"""dutydesk invite, qr and demo."""

from __future__ import annotations

import re

import png
import pytest

from tests.bot.conftest import Cli


def test_invite_prints_a_single_use_code_and_its_links(demo: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUTYDESK_TELEGRAM_BOT_USERNAME", "@dutydesk_bot")
    out = demo.ok("invite", "--site", "demo", "--role", "engineer")
    code = re.search(r"invite code: ([A-Z0-9]{8})", out)
    assert code is not None
    assert f"/join {code[1]}" in out
    assert f"Telegram: https://t.me/dutydesk_bot?start=join_{code[1]}" in out
    assert f"web chat: http://127.0.0.1:8080/chat?start=join_{code[1]}" in out
    assert demo.query("SELECT code, role, used_at FROM invite") == [(code[1], "engineer", None)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site", "demo", "--role", "boss"], "role 'boss'"),
        (["--site", "nowhere", "--role", "reporter"], "no site"),
    ],
)
def test_invite_refuses_bad_input(demo: Cli, args: list[str], message: str) -> None:
    code, _, err = demo.run("invite", *args)
    assert code == 1 and message in err
    assert demo.query("SELECT count(*) FROM invite") == [(0,)]


def test_qr_writes_a_png_of_the_devices_link(demo: Cli) -> None:
    assets = demo.home / "assets.csv"
    assets.write_text("site,subsystem,code,name,location,model,serial\ndemo,机房,UPS-01,机房UPS,1楼,,\n")
    demo.ok("import", "assets", assets)
    out = demo.ok("qr", "UPS-01")
    assert "web chat: http://127.0.0.1:8080/chat?start=asset_UPS-01" in out
    width, height, _, _ = png.Reader(filename=str(demo.home / "UPS-01.png")).read()
    assert width == height and width > 100
    code, _, err = demo.run("qr", "NOPE-1")
    assert code == 1 and "no asset 'NOPE-1'" in err


def test_demo_seeds_an_empty_database_once(cli: Cli) -> None:
    cli.ok("init")
    assert cli.ok("demo").startswith("demo site seeded")
    assert cli.query("SELECT slug FROM site") == [("demo",)]
    assert cli.query("SELECT count(*) FROM chat_identity WHERE channel = 'webchat'") == [(6,)]
    roles = {role: n for role, n in cli.query("SELECT role, count(*) FROM membership GROUP BY role")}
    assert roles == {"reporter": 2, "engineer": 2, "supervisor": 1, "manager": 1}
    assert cli.query("SELECT count(DISTINCT subsystem_id) FROM asset") == [(12,)]
    assert "nothing seeded" in cli.ok("demo")
