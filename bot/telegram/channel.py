"""The Telegram channel: polling by default, or a webhook on the project's aiohttp server.

Either way an update is stored in the inbox (dedup on update_id) before Telegram learns that it
arrived: the webhook answers 200 only after the commit, and the polling loop asks for the next
updates (whose offset confirms the previous ones) only after it stored what it got. So a crash
at any moment loses nothing; a redelivered update is handled once. python-telegram-bot does
the HTTP and the parsing; the loop and the state are ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import warnings
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from telegram import Bot, BotCommand, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.clean import Unfit, loads
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.telegram.convert import inbound, keyboard, pieces
from handlers.messages import Inbound, Outbound
from handlers.texts import EN, ZH
from scheduler.outbox import Delivered, Refused, RetryLater
from scheduler.pacing import TELEGRAM
from storage.enums import Channel

log = logging.getLogger("dutydesk.telegram")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POLL_TIMEOUT = 10  # seconds a getUpdates waits for something to arrive
ALLOWED_UPDATES = ["message", "callback_query"]
COMMANDS = {
    ZH: [
        ("report", "报修"),
        ("my", "我的工单"),
        ("help", "帮助"),
        ("cancel", "取消当前操作"),
        ("lang", "切换语言"),
    ],
    EN: [
        ("report", "Report a fault"),
        ("my", "My tickets"),
        ("help", "Help"),
        ("cancel", "Cancel"),
        ("lang", "Language"),
    ],
}


class TelegramChannel:
    """The Telegram Bot API, as one of the service's channels."""

    kind = Channel.TELEGRAM
    limits = TELEGRAM
    handling_at_once = 16

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        assert settings.telegram_token is not None
        api = settings.telegram_api_url.rstrip("/")
        self.runtime = runtime
        self.webhook_url = settings.telegram_webhook_url
        secret = settings.telegram_webhook_secret
        self.secret = secret.get_secret_value() if secret else None
        self.bot = Bot(
            settings.telegram_token.get_secret_value(), base_url=f"{api}/bot", base_file_url=f"{api}/file/bot"
        )
        self._pipeline: Pipeline | None = None
        self._polling: asyncio.Task[None] | None = None

    @property
    def webhook_path(self) -> str | None:
        """The path of our webhook route (from the public URL Telegram calls)."""
        return urlparse(self.webhook_url).path or "/" if self.webhook_url else None

    def routes(self, app: web.Application) -> None:
        """Mount the webhook when webhook mode is on."""
        if self.webhook_path:
            app.router.add_post(self.webhook_path, self.webhook)

    async def start(self, pipeline: Pipeline) -> None:
        """Connect (getMe), register the commands, then poll or set the webhook."""
        self._pipeline = pipeline
        await self.bot.initialize()
        for lang, language_code in ((ZH, None), (ZH, "zh"), (EN, "en")):
            commands = [BotCommand(name, description) for name, description in COMMANDS[lang]]
            await self.bot.set_my_commands(commands, language_code=language_code)
        if self.webhook_url:
            await self.bot.set_webhook(
                self.webhook_url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES
            )
        else:
            await self.bot.delete_webhook()
            self._polling = asyncio.create_task(self._poll())
        mode = "webhook" if self.webhook_url else "polling"
        log.info("telegram: @%s in %s mode", self.bot.username, mode)

    async def stop_receiving(self) -> None:
        """Stop polling (an update fetched but not yet stored is fetched again next time)."""
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None

    async def close(self) -> None:
        """Shut the bot's HTTP client down (after the outbox has sent what it could)."""
        await self.bot.shutdown()

    # -- receiving ------------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """Check the secret, store the update, answer 200 (after the commit); handled after."""
        given = request.headers.get(SECRET_HEADER, "")
        if not self.secret or not hmac.compare_digest(given.encode(), self.secret.encode()):
            return _answer(403, "forbidden")
        try:
            payload = await request.json(loads=loads)
        except (ValueError, RecursionError, UnicodeDecodeError):
            return _answer(400, "not JSON")
        update_id = payload.get("update_id") if isinstance(payload, dict) else None
        if type(update_id) is not int or not 0 <= update_id < 2**63:
            return _answer(400, "not an update")
        assert self._pipeline is not None
        try:
            await self._pipeline.receive(self.kind, str(payload["update_id"]), payload)
        except Unfit:
            return _answer(400, "not an update")
        except Exception as error:  # not stored: Telegram must send it again
            log.warning("telegram: could not store update %s: %s", payload["update_id"], error)
            return _answer(503, "try again")
        return web.json_response({"ok": True})

    async def _poll(self) -> None:
        """getUpdates in a loop; the offset that confirms a batch goes out only once it is stored."""
        assert self._pipeline is not None
        offset: int | None = None
        pause = 1.0
        while True:
            try:
                kwargs: dict[str, Any] = {"timeout": POLL_TIMEOUT, "allowed_updates": ALLOWED_UPDATES}
                if offset is not None:
                    kwargs["offset"] = offset
                with warnings.catch_warnings():  # raw JSON on purpose: one malformed update must
                    warnings.simplefilter("ignore", PTBUserWarning)  # not stop the batch being stored
                    found = await self.bot.do_api_request(
                        "getUpdates", api_kwargs=kwargs, read_timeout=POLL_TIMEOUT + 5
                    )
                updates = [u for u in found if isinstance(u, dict) and type(u.get("update_id")) is int]
                stored = [self._pipeline.receive(self.kind, str(u["update_id"]), u) for u in updates]
                for outcome in await asyncio.gather(*stored, return_exceptions=True):
                    if isinstance(outcome, Unfit):
                        continue
                    if isinstance(outcome, BaseException):
                        raise outcome
                if updates:
                    offset = max(u["update_id"] for u in updates) + 1
                pause = 1.0
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                log.error("telegram: the bot token was refused; polling stops")
                return
            except Exception as error:  # the network, Telegram, or the database: the same updates again
                log.warning("telegram: polling paused %.0f s: %s", pause, error)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    def decode(self, payload: dict[str, Any], received_at: datetime) -> Inbound | None:
        """The event of a stored update."""
        update = Update.de_json(payload, self.bot)
        return None if update is None else inbound(update, received_at)

    # -- sending --------------------------------------------------------------------------------

    async def send(self, message: Outbound) -> Delivered:
        """One outbox message: a toast for a press, a card changed in place, or a message (in
        pieces if it must)."""
        try:
            if message.kind == "answer":
                await self.bot.answer_callback_query(message.token or "", text=message.text or None)
                return Delivered(0)
            if message.kind == "edit" and message.handle is not None:
                edited = await self._edit(message, message.handle)
                if edited is not None:
                    return edited
            sent = None
            parts = pieces(message.text, message.buttons)
            for text, buttons in parts:
                sent = await self.bot.send_message(
                    chat_id=int(message.to.chat_id), text=text, reply_markup=keyboard(buttons)
                )
            return Delivered(len(parts), None if sent is None else str(sent.message_id))
        except RetryAfter as error:
            with warnings.catch_warnings():  # PTB 22 warns that int seconds become a timedelta
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                wait = error.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            raise RetryLater(seconds, str(error)) from error
        except (Forbidden, BadRequest) as error:  # blocked, chat gone, or a message it will never take
            raise Refused(error.message) from error
        except (TimedOut, NetworkError) as error:
            raise RetryLater(5.0, str(error)) from error
        except ValueError as error:  # no chat Telegram could have: a forged id
            raise Refused(f"not a Telegram chat: {message.to.chat_id!r}") from error

    async def _edit(self, message: Outbound, handle: str) -> Delivered | None:
        """Change a sent message in place; None when it cannot be (gone, too old): send anew."""
        text = pieces(message.text, ())[0][0]
        try:
            await self.bot.edit_message_text(
                chat_id=int(message.to.chat_id),
                message_id=int(handle),
                text=text,
                reply_markup=keyboard(message.buttons),
            )
        except BadRequest as error:
            reason = error.message.lower()
            if "not modified" in reason:
                return Delivered(0, handle)
            if "not found" in reason or "can't be edited" in reason:
                return None
            raise
        return Delivered(0, handle)


def _answer(status: int, error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)
