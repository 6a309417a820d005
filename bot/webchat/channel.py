"""The web chat channel: its message store, its HTTP API and its sender.

The page (static/chat.html) talks to this API: it lists the people who have a web chat
account, sends what a person types or presses, and long-polls for their messages. Inbound
messages are stored (deduplicated by the page's client id) before the API answers 202.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import col, select

from bot.background import Background
from bot.runtime import Runtime
from handlers.conversation.router import Router
from handlers.messages import Inbound, Outbound
from scheduler.outbox import OutboxSender
from storage.engine import transaction
from storage.enums import Channel, Role
from storage.models import ChatIdentity, Membership, Person, Site, WebchatMessage
from storage.repositories import inbox

log = logging.getLogger("dutydesk.webchat")
PAGE = Path(__file__).with_name("static") / "chat.html"
USER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MAX_WAIT = 30.0
RECHECK = 1.0  # another process may have written: look at the table at least this often


class WebChat:
    """The web chat channel of one process."""

    def __init__(self, runtime: Runtime, router: Router, delivery: OutboxSender) -> None:
        self.runtime, self.router, self.delivery = runtime, router, delivery
        self._changed = asyncio.Condition()
        self._version = 0  # bumped on every new line, so a poller never misses a wake-up
        self._background = Background()

    def routes(self, app: web.Application) -> None:
        """Mount the page and its API."""
        app.router.add_get("/chat", self.page)
        app.router.add_get("/chat/api/people", self.people)
        app.router.add_post("/chat/api/send", self.send)
        app.router.add_get("/chat/api/messages", self.messages)

    async def page(self, request: web.Request) -> web.FileResponse:
        """The chat page."""
        return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})

    async def people(self, request: web.Request) -> web.Response:
        """Everyone with a web chat account, with their role and site."""
        query = (
            select(ChatIdentity.external_id, Person.name, Membership.role, Site.slug)
            .join(Person, col(Person.id) == col(ChatIdentity.person_id))
            .join(Membership, col(Membership.person_id) == col(Person.id))
            .join(Site, col(Site.id) == col(Membership.site_id))
            .where(ChatIdentity.channel == Channel.WEBCHAT)
            .order_by(col(Membership.role), col(Person.id))
        )
        async with transaction(self.runtime.sessions) as session:
            rows = (await session.exec(query)).all()
        order = list(Role)
        people = [{"user": u, "name": n, "role": str(r), "site": s} for u, n, r, s in rows]
        people.sort(key=lambda p: order.index(Role(p["role"])))
        return web.json_response({"people": people})

    async def send(self, request: web.Request) -> web.Response:
        """Store what a person typed or pressed, answer 202, handle it after."""
        try:
            body = await request.json()
        except ValueError:
            return _error("the body is not JSON", 400)
        if not isinstance(body, dict):
            return _error("the body must be a JSON object", 400)
        user, message, action = body.get("user"), body.get("text"), body.get("action")
        client_id = str(body.get("client_id") or uuid.uuid4())
        if not isinstance(user, str) or not USER.fullmatch(user):
            return _error("unknown user", 400)
        if (message is None) == (action is None) or not isinstance(message or action, str):
            return _error("send either text or action", 400)
        shown = message if message is not None else str(body.get("label") or action)
        now = self.runtime.clock.now()
        async with transaction(self.runtime.sessions) as session:
            fresh = await inbox.store(session, Channel.WEBCHAT, f"{user}:{client_id[:60]}", body, now)
            if fresh:
                session.add(WebchatMessage(user_id=user, direction="in", text=shown[:4000], created_at=now))
        if fresh:
            await self._wake()
            event = Inbound(Channel.WEBCHAT, user, user, now, text=message, action=action)
            self._background.spawn(self._process(event, f"{user}:{client_id[:60]}"))
        return web.json_response({"ok": True}, status=202)

    async def messages(self, request: web.Request) -> web.Response:
        """Long poll: a person's messages after ``after``, as soon as there are any."""
        user = request.query.get("user", "")
        try:
            after = int(request.query.get("after", "0"))
            wait = min(float(request.query.get("wait", "25")), MAX_WAIT)
        except ValueError:
            return _error("after and wait must be numbers", 400)
        if not USER.fullmatch(user):
            return _error("unknown user", 400)
        deadline = asyncio.get_running_loop().time() + max(wait, 0.0)
        while True:
            seen = self._version
            found = await self._load(user, after)
            left = deadline - asyncio.get_running_loop().time()
            if found or left <= 0:
                return web.json_response({"messages": found})
            async with self._changed:
                if self._version == seen:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), timeout=min(left, RECHECK))

    async def deliver(self, message: Outbound) -> None:
        """The sender: a bot message becomes a line of the person's chat."""
        buttons = [[{"label": b.label, "action": b.action} for b in row] for row in message.buttons]
        await self._store(message.to.chat_id, message.text, buttons)

    async def _store(self, user: str, message: str, buttons: list[list[dict[str, str]]]) -> None:
        async with transaction(self.runtime.sessions) as session:
            line = WebchatMessage(
                user_id=user,
                direction="out",
                text=message,
                buttons=buttons,
                created_at=self.runtime.clock.now(),
            )
            session.add(line)
        await self._wake()

    async def recover(self) -> None:
        """Handle what was stored but not processed before the last stop."""
        async with transaction(self.runtime.sessions) as session:
            pending = await inbox.unprocessed(session, Channel.WEBCHAT)
        for row in pending:
            body = row.payload
            user = str(body.get("user"))
            event = Inbound(
                Channel.WEBCHAT, user, user, row.received_at, text=body.get("text"), action=body.get("action")
            )
            await self._process(event, row.key)

    async def _process(self, event: Inbound, key: str) -> None:
        try:
            reply = await self.router.handle(event, inbox_key=key)
        except Exception as error:
            log.exception("web chat message from %s failed", event.user_id)
            async with transaction(self.runtime.sessions) as session:
                await inbox.give_up(session, Channel.WEBCHAT, key, self.runtime.clock.now(), repr(error))
            return
        if reply.notice and not reply.messages:  # the web chat's answer to a button press
            await self._store(event.chat_id, reply.notice, [])
        await self.delivery.deliver(reply)

    async def _load(self, user: str, after: int) -> list[dict[str, Any]]:
        query = (
            select(WebchatMessage)
            .where(WebchatMessage.user_id == user, col(WebchatMessage.id) > after)
            .order_by(col(WebchatMessage.id))
            .limit(200)
        )
        async with transaction(self.runtime.sessions) as session:
            rows = (await session.exec(query)).all()
        zone = ZoneInfo("Asia/Shanghai")
        return [
            {
                "id": row.id,
                "direction": row.direction,
                "text": row.text,
                "buttons": row.buttons,
                "at": row.created_at.astimezone(zone).isoformat(timespec="seconds"),
            }
            for row in rows
        ]

    async def _wake(self) -> None:
        async with self._changed:
            self._version += 1
            self._changed.notify_all()

    async def drain(self) -> None:
        """Wait until every inbound message taken so far has been handled."""
        await self._background.drain()


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)
