"""The WeChat Work channel: the callback at /wecom/callback, and the sender for the outbox.

A callback is checked, decrypted, stored in the inbox (dedup: MsgId, or for events the member,
the second, the event and its key) and answered at once — WeCom waits 5 s and retries three
times — then handled in the background; its replies are outbox rows the sender delivers.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web

from bot.background import Background
from bot.inbox_writer import InboxWriter
from bot.runtime import Runtime
from bot.wecom.callback import MAX_BODY, CallbackCrypto, Rejected
from bot.wecom.client import WecomClient, WecomError
from bot.wecom.convert import bodies, inbound, inbox_key
from handlers.conversation.router import Router
from handlers.messages import Outbound
from scheduler.outbox import OutboxSender, Refused, RetryLater
from storage.engine import transaction
from storage.enums import Channel
from storage.repositories import inbox

log = logging.getLogger("dutydesk.wecom")
HANDLING_AT_ONCE = 4  # callbacks handled at a time; the others wait, stored
PATH = "/wecom/callback"
#: -1 system busy, 45009 API frequency, 45033 too many concurrent calls: try again later.
BUSY = {-1: 5.0, 45009: 60.0, 45033: 5.0}


class WecomChannel:
    """The callback endpoint and the sender, wired to the router and the outbox."""

    def __init__(self, runtime: Runtime, router: Router, delivery: OutboxSender) -> None:
        settings = runtime.settings
        assert settings.wecom_corp_id and settings.wecom_agent_id is not None
        assert settings.wecom_secret and settings.wecom_token and settings.wecom_aes_key
        self.runtime, self.router, self.delivery = runtime, router, delivery
        self.crypto = CallbackCrypto(
            settings.wecom_token.get_secret_value(),
            settings.wecom_aes_key.get_secret_value(),
            settings.wecom_corp_id,
        )
        self.client = WecomClient.from_settings(settings)
        self.inbox = InboxWriter(runtime.sessions)
        self._background = Background(limit=HANDLING_AT_ONCE)

    def routes(self, app: web.Application) -> None:
        """Mount the callback (GET: URL verification, POST: messages and events)."""
        app.router.add_get(PATH, self.verify)
        app.router.add_post(PATH, self.callback)

    async def start(self) -> None:
        """Handle what a previous run stored but did not finish."""
        async with transaction(self.runtime.sessions) as session:
            pending = await inbox.unprocessed(session, Channel.WECOM)
        for row in pending:
            self._background.spawn(self._process(row.key, row.payload))
        log.info("wecom: callback at %s, %d stored callbacks to finish", PATH, len(pending))

    async def drain(self) -> None:
        """Wait until every callback taken so far has been handled."""
        await self._background.drain()

    async def close(self) -> None:
        """Close the API client."""
        await self.client.close()

    async def verify(self, request: web.Request) -> web.Response:
        """URL verification: answer the decrypted echostr."""
        try:
            echo = self.crypto.verify_url(dict(request.query))
        except Rejected as rejected:
            return web.Response(status=rejected.status, text=rejected.reason)
        return web.Response(text=echo)

    async def callback(self, request: web.Request) -> web.Response:
        """Check, decrypt and store a callback, answer at once, handle it after."""
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="body too large")
        try:
            body = await request.content.read(MAX_BODY + 1)
            message = self.crypto.open(dict(request.query), body)
        except Rejected as rejected:
            log.warning("wecom callback refused: %s", rejected.reason)
            return web.Response(status=rejected.status, text=rejected.reason)
        key = inbox_key(message)
        if await self.inbox.store(Channel.WECOM, key, message, self.runtime.clock.now()):
            self._background.spawn(self._process(key, message))
        return web.Response(text="")  # empty: no passive reply, the answers go through the API

    async def _process(self, key: str, message: dict[str, Any]) -> None:
        now = self.runtime.clock.now()
        event = inbound(message, now)
        try:
            if event is None:  # nothing to answer: mark it handled
                async with transaction(self.runtime.sessions) as session:
                    await inbox.claim(session, Channel.WECOM, key, now)
                return
            reply = await self.router.handle(event, inbox_key=key)
        except Exception as error:
            log.exception("wecom callback %s failed", key)
            async with transaction(self.runtime.sessions) as session:
                await inbox.give_up(session, Channel.WECOM, key, now, repr(error))
            return
        await self.delivery.deliver(reply)

    async def send(self, message: Outbound) -> int:
        """The sender: a card's new caption, text pieces or cards; how many messages it took."""
        userid = message.to.chat_id
        try:
            if message.replaces:
                await self.client.update_card(userid, message.replaces, message.text[:64])
                return 0
            parts = bodies(message)
            for msgtype, body in parts:
                await self.client.send(userid, msgtype, body)
            return len(parts)
        except WecomError as error:
            if error.errcode in BUSY:
                raise RetryLater(BUSY[error.errcode], str(error)) from error
            raise Refused(str(error)) from error
        except aiohttp.ClientResponseError as error:  # a 5xx: the outbox backs off and retries
            raise RetryLater(5.0, f"HTTP {error.status}") from error
