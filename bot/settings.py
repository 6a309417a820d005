"""Settings from the environment (``DUTYDESK_*``) and an optional ``dutydesk.toml``.

Built at start-up by ``load_settings`` — never at import time — so tests can build their own.
Secrets are SecretStr: they print as ``**********`` and never reach a log line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from storage.engine import safe_url

DEFAULT_CONFIG_FILE = Path("dutydesk.toml")
WECOM_REQUIRED = ("corp_id", "agent_id", "secret", "token", "aes_key")


class Settings(BaseSettings):
    """Everything the service reads at start-up. Environment wins over the TOML file."""

    model_config = SettingsConfigDict(env_prefix="DUTYDESK_", extra="forbid", toml_file=DEFAULT_CONFIG_FILE)

    database_url: str = "sqlite+aiosqlite:///./dutydesk.db"
    policy: Path | None = Field(default=None, description="policy file; None: the built-in seed table")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "INFO"
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    #: The bot's @username, for t.me deep links printed by the CLI (invites, QR codes).
    telegram_bot_username: str | None = None
    #: Public address of this service, for links printed by the CLI (web chat, QR codes).
    public_url: str | None = None
    #: The local web chat has no login (anyone reaching the port can act as any of its
    #: people): "auto" serves it only while the server listens on a loopback address.
    webchat: Literal["auto", "on", "off"] = "auto"
    #: Local times of the supervisor's daily overview and the engineers' weekly reminder.
    overview_at: str = Field(default="08:30", pattern=r"^\d{1,2}:\d{2}$")
    inspection_at: str = Field(default="mon 09:00", pattern=r"^(mon|tue|wed|thu|fri|sat|sun) \d{1,2}:\d{2}$")
    #: WeChat Work (企业微信): the channel is on when corp id, agent id, secret, callback token
    #: and EncodingAESKey are all set; the callback is served at /wecom/callback.
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            raise ValueError("telegram_webhook_url needs telegram_webhook_secret (checked on every request)")
        return self

    @model_validator(mode="after")
    def _wecom_complete(self) -> Settings:
        given = {name: getattr(self, f"wecom_{name}") is not None for name in WECOM_REQUIRED}
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(f"DUTYDESK_WECOM_{name.upper()}" for name, ok in given.items() if not ok)
            raise ValueError(f"WeChat Work needs {missing} as well")
        if self.wecom_aes_key is not None and len(self.wecom_aes_key.get_secret_value()) != 43:
            raise ValueError("wecom_aes_key (EncodingAESKey) must be the 43 characters WeCom shows")
        return self

    @property
    def wecom_enabled(self) -> bool:
        """Whether the WeChat Work channel is configured."""
        return self.wecom_corp_id is not None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Constructor arguments, then the environment, then dutydesk.toml."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def webchat_enabled(self) -> bool:
        """Whether the web chat is served."""
        if self.webchat == "auto":
            return self.http_host in {"127.0.0.1", "::1", "localhost"}
        return self.webchat == "on"

    def describe(self) -> dict[str, Any]:
        """What is safe to log: the database URL without its password, no secrets."""
        return {
            "database": safe_url(self.database_url),
            "policy": str(self.policy) if self.policy else "built-in",
            "http": f"{self.http_host}:{self.http_port}",
            "telegram": ("webhook" if self.telegram_webhook_url else "polling")
            if self.telegram_token
            else "off",
            "wecom": f"corp {self.wecom_corp_id} agent {self.wecom_agent_id}"
            if self.wecom_enabled
            else "off",
        }


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings; ``config_file`` replaces ./dutydesk.toml (it must then exist)."""
    if config_file is None:
        return Settings(**overrides)
    if not config_file.is_file():
        raise FileNotFoundError(f"settings file {config_file} does not exist")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

    return _FromFile(**overrides)


def web_base(settings: Settings) -> str:
    """Where people reach this service's web pages."""
    return (settings.public_url or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")


def deep_links(settings: Settings, payload: str) -> list[tuple[str, str]]:
    """(channel, link) pairs that open a chat with ``payload`` as the /start argument."""
    links = [("web chat", f"{web_base(settings)}/chat?start={payload}")]
    if settings.telegram_bot_username:
        links.insert(
            0, ("Telegram", f"https://t.me/{settings.telegram_bot_username.lstrip('@')}?start={payload}")
        )
    return links
