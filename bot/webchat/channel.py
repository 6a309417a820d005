"""The web chat channel: its message store, its HTTP API and its sender.

The page (static/chat.html) talks to this API: it lists the people who have a web chat
account, sends what a person types or presses, and long-polls for their messages. Inbound
messages are stored (deduplicated by the page's client id) with the line the page shows
before the API answers 202; the inbound pipeline handles them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clean import Unfit, clean, loads
from bot.pipeline import RETRY_AFTER, Pipeline
from bot.runtime import Runtime
from handlers.messages import Inbound, Outbound
from scheduler.outbox import Delivered
from scheduler.pacing import LOCAL
from storage.engine import transaction
from storage.enums import Channel, Role
from storage.models import DEFAULT_TIMEZONE, ChatIdentity, Membership, Person, Site, WebchatMessage
from storage.repositories import inbox

log = logging.getLogger("dutydesk.webchat")
PAGE = Path(__file__).with_name("static") / "chat.html"
USER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MAX_WAIT = 30.0
RECHECK = 1.0  # another process may have written: look at the table at least this often


class WebChat:
    """The web chat channel of one process."""

    kind = Channel.WEBCHAT
    limits = LOCAL
    handling_at_once = 16

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._changed = asyncio.Condition()
        self._version = 0  # bumped on every new line, so a poller never misses a wake-up
        self._pipeline: Pipeline | None = None
        self._zones: dict[str, str] = {}

    async def start(self, pipeline: Pipeline) -> None:
        """Take messages from the page."""
        self._pipeline = pipeline

    async def stop_receiving(self) -> None:
        """Nothing to stop: the page's requests end with the web server."""

    async def close(self) -> None:
        """Nothing to release."""

    def routes(self, app: web.Application) -> None:
        """Mount the page and its API."""
        app.router.add_get("/chat", self.page)
        app.router.add_get("/chat/api/people", self.people)
        app.router.add_post("/chat/api/send", self.receive)
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

    async def receive(self, request: web.Request) -> web.Response:
        """Store what a person typed or pressed, answer 202; the pipeline handles it."""
        try:
            body = clean(await request.json(loads=loads))
        except (ValueError, RecursionError, UnicodeDecodeError, Unfit):
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
        key = f"{user}:{client_id}"[:80]
        try:
            async with transaction(self.runtime.sessions) as session:
                fresh = await inbox.store(session, Channel.WEBCHAT, key, body, now, now + RETRY_AFTER)
                if fresh:
                    session.add(
                        WebchatMessage(user_id=user, direction="in", text=shown[:4000], created_at=now)
                    )
        except Exception as error:
            log.warning("web chat: could not store a message: %s", error)
            return _error("the service is busy, try again", 503)
        if fresh:
            await self._wake()
        assert self._pipeline is not None
        self._pipeline.take(self.kind, key, body, now)  # a repeat too (see Pipeline.receive)
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

    def decode(self, payload: dict[str, Any], received_at: datetime) -> Inbound | None:
        """The event of a stored message from the page."""
        user = str(payload.get("user") or "")
        text, action = payload.get("text"), payload.get("action")
        if not USER.fullmatch(user) or not isinstance(text or action, str):
            return None
        line = payload.get("line")
        return Inbound(
            Channel.WEBCHAT,
            user,
            user,
            received_at,
            text=text if isinstance(text, str) else None,
            action=action if isinstance(action, str) else None,
            message_ref=str(line) if type(line) is int else None,
            received_at=received_at,
        )

    async def send(self, message: Outbound) -> Delivered:
        """The sender: a bot message (or the answer to a press) becomes a line of the person's
        chat; a card changed in place replaces its bubble."""
        buttons = [[{"label": b.label, "action": b.action} for b in row] for row in message.buttons]
        handle = message.handle or ""
        replaces = int(handle) if message.kind == "edit" and handle.isdigit() else None
        line = await self._store(message.to.chat_id, message.text, buttons, replaces)
        return Delivered(0 if replaces else 1, str(replaces or line))

    async def _store(
        self, user: str, message: str, buttons: list[list[dict[str, str]]], replaces: int | None = None
    ) -> int:
        async with transaction(self.runtime.sessions) as session:
            now = self.runtime.clock.now()
            line = WebchatMessage(
                user_id=user,
                direction="out",
                text=message,
                buttons=buttons,
                replaces_id=replaces,
                created_at=now,
            )
            session.add(line)
            if replaces is not None and (original := await session.get(WebchatMessage, replaces)) is not None:
                original.text, original.buttons = message, buttons  # a page opened later shows it current
                session.add(original)
            await session.flush()
        await self._wake()
        return line.id or 0

    async def _load(self, user: str, after: int) -> list[dict[str, Any]]:
        query = (
            select(WebchatMessage)
            .where(WebchatMessage.user_id == user, col(WebchatMessage.id) > after)
            .order_by(col(WebchatMessage.id))
            .limit(200)
        )
        async with transaction(self.runtime.sessions) as session:
            rows = (await session.exec(query)).all()
            zone = ZoneInfo(await self._zone(session, user))
        return [
            {
                "id": row.id,
                "direction": row.direction,
                "text": row.text,
                "buttons": row.buttons,
                "replaces": row.replaces_id,
                "at": row.created_at.astimezone(zone).isoformat(timespec="seconds"),
            }
            for row in rows
        ]

    async def _zone(self, session: AsyncSession, user: str) -> str:
        """The time zone a person's lines are shown in: that of their (first) site."""
        if user not in self._zones:
            query = (
                select(Site.timezone)
                .join(Membership, col(Membership.site_id) == col(Site.id))
                .join(ChatIdentity, col(ChatIdentity.person_id) == col(Membership.person_id))
                .where(ChatIdentity.channel == Channel.WEBCHAT, ChatIdentity.external_id == user)
                .order_by(col(Site.id))
                .limit(1)
            )
            found = (await session.exec(query)).first()
            if found is None:
                return DEFAULT_TIMEZONE
            self._zones[user] = found
        return self._zones[user]

    async def _wake(self) -> None:
        async with self._changed:
            self._version += 1
            self._changed.notify_all()


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)
