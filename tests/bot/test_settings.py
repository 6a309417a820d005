"""Settings: environment over dutydesk.toml over defaults; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DUTYDESK_* variable and no ./dutydesk.toml unless a test sets one."""
    import os

    for name in list(os.environ):
        if name.startswith("DUTYDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_ones() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./dutydesk.db"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.policy is None


def test_the_environment_wins_over_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "dutydesk.toml").write_text('http_port = 9000\nhttp_host = "0.0.0.0"\n', encoding="utf-8")
    assert load_settings().http_port == 9000
    monkeypatch.setenv("DUTYDESK_HTTP_PORT", "9100")
    settings = load_settings()
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 9100)


def test_a_named_config_file_is_used_and_must_exist(tmp_path: Path) -> None:
    config = tmp_path / "prod.toml"
    config.write_text('database_url = "postgresql://dd@db/dutydesk"\n', encoding="utf-8")
    assert load_settings(config).database_url == "postgresql://dd@db/dutydesk"
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("http_prot = 1\n", "http_prot"),
        ("http_port = 70000\n", "http_port"),
        ('log_level = "LOUD"\n', "log_level"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name(tmp_path: Path, content: str, field: str) -> None:
    (tmp_path / "dutydesk.toml").write_text(content, encoding="utf-8")
    with pytest.raises(ValidationError, match=field):
        load_settings()


def test_secrets_and_passwords_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUTYDESK_TELEGRAM_TOKEN", "123456:ABC-very-secret")
    monkeypatch.setenv("DUTYDESK_DATABASE_URL", "postgresql://dd:hunter2@db:5432/dutydesk")
    settings = load_settings()
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == "123456:ABC-very-secret"
    shown = f"{settings!r} {settings} {settings.describe()}"
    assert "very-secret" not in shown
    assert "hunter2" not in str(settings.describe())
    assert settings.describe()["database"] == "postgresql+asyncpg://dd:***@db:5432/dutydesk"


def test_nothing_is_built_at_import_time() -> None:
    """Importing the packages opens no database and reads no settings (tests can swap them)."""
    import importlib

    import bot.cli.main

    importlib.reload(bot.cli.main)
    assert not Path("dutydesk.db").exists()
    assert isinstance(load_settings(), Settings)


@pytest.mark.parametrize(
    ("host", "choice", "served"),
    [
        ("127.0.0.1", "auto", True),
        ("0.0.0.0", "auto", False),
        ("0.0.0.0", "on", True),
        ("127.0.0.1", "off", False),
    ],
)
def test_the_web_chat_is_served_only_on_loopback_unless_asked(host: str, choice: str, served: bool) -> None:
    assert Settings(http_host=host, webchat=choice).webchat_enabled is served
