"""The stage the scenarios play on: a running dutydesk service, its database, a cast of people
with a Telegram, a web chat and a WeCom account each, and a driver per channel.

A driver is how a person uses the bot: ``send`` types, ``press`` taps the newest button with a
label, ``seen`` is every bot message the person received. The same scenario runs on every
channel and on every database.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bot.runtime import Runtime
from bot.service import Service
from bot.settings import Settings
from handlers.clock import ManualClock
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.wecom_api import FakeWecomApi

TOKEN = "123456:TEST-token"
SECRET = "s3cret-webhook-token"
#: The WeCom app of the stage.
CORP_ID = "ww0123456789abcdef"
AGENT_ID = 1000002
APP_SECRET = "app-secret-for-tests"
CALLBACK_TOKEN = "callbackToken42"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeCom shows it


@dataclass(frozen=True)
class Seen:
    """A bot message as a person sees it: its text and the labels of its buttons."""

    text: str
    labels: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Actor:
    """Someone of the cast: their person id and their accounts."""

    key: str
    name: str
    person_id: int
    telegram_id: int
    webchat_user: str  # also the WeCom userid


class Driver(Protocol):
    """How a person uses the bot on one channel."""

    name: str

    async def meet(self, who: Actor) -> None: ...
    async def send(self, who: Actor, text: str) -> None: ...
    async def press(self, who: Actor, label: str) -> None: ...
    async def press_action(self, who: Actor, action: str) -> None: ...
    async def seen(self, who: Actor) -> list[Seen]: ...
    async def answer(self, who: Actor) -> str | None: ...


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stage:
    """A running service plus whatever the channel under test needs."""

    service: Service
    clock: ManualClock
    driver: Driver
    cast: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Actor:
        return self.cast[key]


class WebchatDriver:
    """Plays people on the web chat through its HTTP API, as the page does."""

    name = "webchat"

    def __init__(self, base: str, service: Service) -> None:
        self.base, self.service = base, service
        self.http = aiohttp.ClientSession()
        self._sent = 0

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.http.close()

    async def post(self, body: Mapping[str, object]) -> int:
        """POST one message to the send API; the HTTP status."""
        async with self.http.post(f"{self.base}/chat/api/send", json=body) as response:
            return response.status

    async def meet(self, who: Actor) -> None:
        """Nothing to do: anyone may open the page."""

    async def send(self, who: Actor, text: str) -> None:
        self._sent += 1
        assert await self.post({"user": who.webchat_user, "text": text, "client_id": f"c{self._sent}"}) == 202
        await self.service.idle()

    async def press(self, who: Actor, label: str) -> None:
        for line in reversed(await self.lines(who)):
            for row in line["buttons"]:
                for button in row:
                    if button["label"] == label:
                        await self.press_action(who, button["action"], line["id"])
                        return
        raise AssertionError(f"{who.key} has no button {label!r}: {await self.seen(who)}")

    async def press_action(self, who: Actor, action: str, line: int | None = None) -> None:
        self._sent += 1
        body: dict[str, object] = {"user": who.webchat_user, "action": action, "client_id": f"c{self._sent}"}
        if line is not None:
            body["line"] = line
        assert await self.post(body) == 202
        await self.service.idle()

    async def answer(self, who: Actor) -> str | None:
        """The web chat answers a press with a line (when nothing else came back)."""
        seen = await self.seen(who)
        return seen[-1].text if seen else None

    async def lines(self, who: Actor) -> list[dict[str, Any]]:
        """The person's bot lines as the page shows them: a changed card in its bubble's place."""
        url = f"{self.base}/chat/api/messages?user={who.webchat_user}&after=0&wait=0"
        async with self.http.get(url) as response:
            lines = (await response.json())["messages"]
        shown: dict[int, dict[str, Any]] = {}
        for line in lines:
            if line.get("replaces") is not None:
                if line["replaces"] in shown:
                    shown[line["replaces"]] = {**line, "id": line["replaces"]}
            elif line["direction"] == "out":
                shown[line["id"]] = line
        return list(shown.values())

    async def seen(self, who: Actor) -> list[Seen]:
        return [
            Seen(
                line["text"],
                tuple(b["label"] for row in line["buttons"] for b in row),
                tuple(b["action"] for row in line["buttons"] for b in row),
            )
            for line in await self.lines(who)
        ]


class TelegramDriver:
    """Plays people on Telegram through the fake Bot API; updates reach the bot by webhook."""

    name = "telegram"

    def __init__(self, api: FakeBotApi, service: Service) -> None:
        self.api, self.service = api, service
        self._queries: dict[str, int] = {}  # callback query id → who pressed

    async def meet(self, who: Actor) -> None:
        """A new Telegram account opens a chat with the bot."""
        self.api.user(who.telegram_id, who.name)

    async def send(self, who: Actor, text: str) -> None:
        self.api.message(who.telegram_id, text)
        await self._deliver()

    async def press(self, who: Actor, label: str) -> None:
        for message in reversed(self.api.messages_to(who.telegram_id)):
            for row in (message.reply_markup or {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        update = self.api.press(who.telegram_id, message.message_id, button["callback_data"])
                        self._queries[update["callback_query"]["id"]] = who.telegram_id
                        await self._deliver()
                        return
        raise AssertionError(f"{who.key} has no button {label!r}: {await self.seen(who)}")

    async def press_action(self, who: Actor, action: str) -> None:
        last = self.api.messages_to(who.telegram_id)[-1]
        update = self.api.press(who.telegram_id, last.message_id, action, strict=False)
        self._queries[update["callback_query"]["id"]] = who.telegram_id
        await self._deliver()

    async def answer(self, who: Actor) -> str | None:
        """The toast Telegram showed for the person's last press (None: the spinner stays)."""
        mine = [a for a in self.api.answered_callbacks if self._queries.get(a.query_id) == who.telegram_id]
        return (mine[-1].text or "") if mine else None

    async def seen(self, who: Actor) -> list[Seen]:
        found = []
        for message in self.api.messages_to(who.telegram_id):
            rows = (message.reply_markup or {}).get("inline_keyboard", [])
            found.append(
                Seen(
                    message.text or "",
                    tuple(b["text"] for row in rows for b in row),
                    tuple(b["callback_data"] for row in rows for b in row),
                )
            )
        return found

    async def _deliver(self) -> None:
        statuses = await self.api.deliver()
        assert all(status == 200 for status in statuses), statuses
        await self.service.idle()


def settings_for(channel: str, port: int, api: FakeBotApi | FakeWecomApi | None) -> Settings:
    """Service settings for a stage (the database comes from the test's own engine)."""
    if channel == "webchat" or api is None:
        return Settings(http_port=port)
    if isinstance(api, FakeWecomApi):
        return Settings(
            http_port=port,
            wecom_corp_id=CORP_ID,
            wecom_agent_id=AGENT_ID,
            wecom_secret=APP_SECRET,
            wecom_token=CALLBACK_TOKEN,
            wecom_aes_key=AES_KEY,
            wecom_api_url=api.url,
        )
    return Settings(
        http_port=port,
        telegram_token=TOKEN,
        telegram_api_url=api.url,
        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
        telegram_webhook_secret=SECRET,
    )


async def open_service(runtime: Runtime) -> AsyncIterator[Service]:
    """A started service (no background ticker: scenarios tick the injected clock themselves)."""
    service = Service(runtime, clockwork=False)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
