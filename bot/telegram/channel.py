"""The Telegram channel: polling by default, or a webhook on the project's aiohttp server.

Every update is stored in the inbox (dedup on update_id) before the webhook answers 200, and
claimed in the same transaction that handles it, so a crash loses nothing and a redelivered
update is handled once.
"""

from __future__ import annotations

import hmac
import logging
import warnings
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from telegram import BotCommand, Update
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.warnings import PTBDeprecationWarning

from bot.background import Background
from bot.inbox_writer import InboxWriter
from bot.runtime import Runtime
from bot.telegram.convert import fit, inbound, keyboard
from handlers.conversation.router import Router
from handlers.messages import Outbound
from handlers.texts import EN, ZH
from scheduler.outbox import OutboxSender, Refused, RetryLater
from storage.engine import transaction
from storage.enums import Channel
from storage.repositories import inbox

log = logging.getLogger("dutydesk.telegram")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
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
    """One PTB Application wired to the router."""

    def __init__(self, runtime: Runtime, router: Router, delivery: OutboxSender) -> None:
        settings = runtime.settings
        assert settings.telegram_token is not None
        api = settings.telegram_api_url.rstrip("/")
        self.runtime, self.router, self.delivery = runtime, router, delivery
        self.webhook_url = settings.telegram_webhook_url
        secret = settings.telegram_webhook_secret
        self.secret = secret.get_secret_value() if secret else None
        builder = (
            ApplicationBuilder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
        )
        if self.webhook_url:
            builder = builder.updater(None)
        self.app: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self.inbox = InboxWriter(runtime.sessions)
        self._background = Background()

    @property
    def webhook_path(self) -> str | None:
        """The path of our webhook route (from the public URL Telegram calls)."""
        return urlparse(self.webhook_url).path or "/" if self.webhook_url else None

    def routes(self, app: web.Application) -> None:
        """Mount the webhook when webhook mode is on."""
        if self.webhook_path:
            app.router.add_post(self.webhook_path, self.webhook)

    async def start(self) -> None:
        """Connect (getMe), register the commands, then poll or set the webhook."""
        await self.app.initialize()
        for lang, language_code in ((ZH, None), (ZH, "zh"), (EN, "en")):
            commands = [BotCommand(name, description) for name, description in COMMANDS[lang]]
            await self.app.bot.set_my_commands(commands, language_code=language_code)
        await self._recover()
        if self.webhook_url:
            await self.app.bot.set_webhook(self.webhook_url, secret_token=self.secret)
            await self.app.start()
        else:
            await self.app.bot.delete_webhook()
            await self.app.start()
            assert self.app.updater is not None
            await self.app.updater.start_polling(poll_interval=0.0, timeout=10)
        log.info(
            "telegram: @%s in %s mode", self.app.bot.username, "webhook" if self.webhook_url else "polling"
        )

    async def stop_receiving(self) -> None:
        """Stop polling and finish the updates being handled (the bot can still send)."""
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        await self.drain()

    async def close(self) -> None:
        """Shut the bot down (after the outbox has sent what it could)."""
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def webhook(self, request: web.Request) -> web.Response:
        """Check the secret, store the update, answer 200, handle it after."""
        given = request.headers.get(SECRET_HEADER, "")
        if not self.secret or not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "not JSON"}, status=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        now = self.runtime.clock.now()
        fresh = await self.inbox.store(Channel.TELEGRAM, str(payload["update_id"]), payload, now)
        if fresh:
            self._background.spawn(self._process_payload(payload))
        return web.json_response({"ok": True})

    async def send(self, message: Outbound) -> None:
        """The sender: one message with its inline keyboard; the outbox learns what failed how."""
        try:
            await self.app.bot.send_message(
                chat_id=int(message.to.chat_id),
                text=fit(message.text),
                reply_markup=keyboard(message.buttons),
            )
        except RetryAfter as error:
            with warnings.catch_warnings():  # PTB 22 warns that int seconds become a timedelta
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                wait = error.retry_after
            raise RetryLater(
                wait.total_seconds() if isinstance(wait, timedelta) else float(wait), str(error)
            ) from error
        except (Forbidden, BadRequest) as error:  # blocked, chat gone, or a message it will never take
            raise Refused(error.message) from error

    async def _process_payload(self, payload: dict[str, Any]) -> None:
        update = Update.de_json(payload, self.app.bot)
        await self.app.process_update(update)

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        key = str(update.update_id)
        now = self.runtime.clock.now()
        if not self.webhook_url:  # a polled update is stored here; a webhook one already was
            async with transaction(self.runtime.sessions) as session:
                await inbox.store(session, Channel.TELEGRAM, key, update.to_dict(), now)
        event = inbound(update, now)
        if event is None:
            async with transaction(self.runtime.sessions) as session:
                await inbox.claim(session, Channel.TELEGRAM, key, now)
            return
        try:
            reply = await self.router.handle(event, inbox_key=key)
        except Exception as error:
            log.exception("telegram update %s failed", key)
            async with transaction(self.runtime.sessions) as session:
                await inbox.give_up(session, Channel.TELEGRAM, key, now, repr(error))
            return
        if update.callback_query is not None:
            await update.callback_query.answer(text=(reply.notice or "")[:200] or None)
        await self.delivery.deliver(reply)

    async def _recover(self) -> None:
        async with transaction(self.runtime.sessions) as session:
            pending = await inbox.unprocessed(session, Channel.TELEGRAM)
        for row in pending:
            try:
                await self._process_payload(row.payload)
            except Exception:
                log.exception("telegram update %s could not be handled after restart", row.key)

    async def drain(self) -> None:
        """Wait until every inbound message taken so far has been handled."""
        await self._background.drain()
