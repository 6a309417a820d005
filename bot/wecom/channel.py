"""The WeChat Work channel: the callback at /wecom/callback, and the sender for the outbox.

A callback is checked, decrypted, stored in the inbox (dedup: MsgId, or for events the member,
the second, the event and its key) and answered at once — WeCom waits 5 s and retries three
times — then handled by the inbound pipeline; its replies are outbox rows the sender delivers.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.clean import Unfit
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.wecom.callback import MAX_BODY, CallbackCrypto, Rejected
from bot.wecom.client import WecomClient, WecomError
from bot.wecom.convert import bodies, inbound, inbox_key
from handlers.messages import Inbound, Outbound
from scheduler.outbox import Delivered, Refused, RetryLater
from scheduler.pacing import WECOM
from storage.enums import Channel

log = logging.getLogger("dutydesk.wecom")
PATH = "/wecom/callback"
#: -1 system busy, 45009 API frequency, 45033 too many concurrent calls: try again later.
BUSY = {-1: 5.0, 45009: 60.0, 45033: 5.0}
SUPERSEDED = "已更新 · Updated"


class WecomChannel:
    """The callback endpoint and the sender, as one of the service's channels."""

    kind = Channel.WECOM
    limits = WECOM
    handling_at_once = 4  # the others wait, stored, leaving connections for the callbacks

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        assert settings.wecom_corp_id and settings.wecom_agent_id is not None
        assert settings.wecom_secret and settings.wecom_token and settings.wecom_aes_key
        self.runtime = runtime
        self.crypto = CallbackCrypto(
            settings.wecom_token.get_secret_value(),
            settings.wecom_aes_key.get_secret_value(),
            settings.wecom_corp_id,
        )
        self.client = WecomClient.from_settings(settings)
        self._pipeline: Pipeline | None = None

    def routes(self, app: web.Application) -> None:
        """Mount the callback (GET: URL verification, POST: messages and events)."""
        app.router.add_get(PATH, self.verify)
        app.router.add_post(PATH, self.callback)

    async def start(self, pipeline: Pipeline) -> None:
        """Take callbacks."""
        self._pipeline = pipeline
        log.info("wecom: callback at %s", PATH)

    async def stop_receiving(self) -> None:
        """Nothing to stop: callbacks end with the web server."""

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
        """Check, decrypt and store a callback, answer at once; the pipeline handles it."""
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="body too large")
        try:
            body = await request.content.read(MAX_BODY + 1)
            message = self.crypto.open(dict(request.query), body)
        except Rejected as rejected:
            log.warning("wecom callback refused: %s", rejected.reason)
            return web.Response(status=rejected.status, text=rejected.reason)
        assert self._pipeline is not None
        try:
            await self._pipeline.receive(self.kind, inbox_key(message), message)
        except Unfit:
            return web.Response(status=400, text="not a WeCom callback")
        except Exception as error:  # not stored: WeCom sends it again
            log.warning("wecom: could not store a callback: %s", error)
            return web.Response(status=503, text="try again")
        return web.Response(text="")  # empty: no passive reply, the answers go through the API

    def decode(self, payload: dict[str, Any], received_at: datetime) -> Inbound | None:
        """The event of a stored callback."""
        return inbound(payload, received_at)

    async def send(self, message: Outbound) -> Delivered:
        """The sender: a pressed card's new caption, text pieces or cards; how many messages it took."""
        userid = message.to.chat_id
        try:
            if message.kind == "answer":
                await self.client.update_card(userid, message.token or "", message.text[:64])
                return Delivered(0)
            if message.kind == "edit":
                edited = await self._edit(message)
                if edited is not None:
                    return edited
            parts = bodies(message)
            handle = token = None
            for msgtype, body in parts:
                answer = await self.client.send(userid, msgtype, body)
                if msgtype == "template_card" and handle is None:  # the first card carries the ticket
                    handle, token = body.get("task_id"), answer.get("response_code")
            return Delivered(len(parts), handle, token)
        except WecomError as error:
            if error.errcode in BUSY:
                raise RetryLater(BUSY[error.errcode], str(error)) from error
            raise Refused(str(error)) from error
        except (aiohttp.ClientError, TimeoutError) as error:  # a 5xx, a time-out: back off and retry
            raise RetryLater(5.0, str(error) or type(error).__name__) from error

    async def _edit(self, message: Outbound) -> Delivered | None:
        """A card changed: WeCom lets an app change a sent card only once, with the response code
        its send (or a press of it) returned, so a card is never edited in place but replaced:
        its buttons become one disabled line (with that code) and, when the change leaves buttons
        to show, the card goes out anew below (with a code of its own, for the next change).
        None: send it anew. Without a code nothing can be done to the old card."""
        userid, handle = message.to.chat_id, message.handle
        if message.token is not None:
            try:
                await self.client.update_card(userid, message.token, SUPERSEDED)
            except WecomError as error:
                if error.errcode in BUSY:
                    raise
                log.info("wecom: card %s of %s cannot be changed (%s)", handle, userid, error)
        return None if message.buttons else Delivered(0, handle)
