"""A fake Telegram Bot API server, spoken to over HTTP by the real python-telegram-bot library.

Point a bot at it with ``Bot(token, base_url=api.base_url, base_file_url=api.base_file_url)`` or
``ApplicationBuilder().token(token).base_url(api.base_url).base_file_url(api.base_file_url)``.
The test plays the users (:meth:`FakeBotApi.message`, :meth:`FakeBotApi.press`) and inspects what
the bot did (:attr:`FakeBotApi.sent`, :meth:`FakeBotApi.messages_to`, :attr:`FakeBotApi.calls`).

Deviations from the real API, on purpose: webhooks may be plain-HTTP URLs on any port (the test's
own receiver), updates reach a webhook only when the test awaits :meth:`FakeBotApi.deliver`, and
formatted texts are returned as sent (no ``entities`` are computed for the bot's messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from tests.fakes.telegram_methods import BOT_USERNAME, DEFAULT_TOKEN, BotApiState, Described
from tests.fakes.telegram_objects import (
    POLL_CONFLICT,
    WEBHOOK_CONFLICT,
    ApiError,
    Call,
    ChatMessage,
    FailureRule,
    JsonDict,
    Upload,
    Webhook,
    bad_request,
    command_entities,
    decode_params,
    scope_key,
    too_many_requests,
)


class FakeBotApi(BotApiState):
    """An in-process Telegram Bot API on 127.0.0.1 (aiohttp), with test-side controls.

    Use ``async with FakeBotApi() as api:`` or ``await api.start()`` / ``await api.stop()``;
    an instance is started once. All state lives on the test's event loop.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(token, clock=clock)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._lock = asyncio.Lock()
        self._deliver_lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._release = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._poll_generation = 0
        self._waiting_polls = 0
        self._query_ids = itertools.count(4_120_000_000_000_000_001)
        self._failures: dict[str, deque[FailureRule]] = {}
        self._per_second: int | None = None
        self._window: deque[float] = deque()
        #: Every request, in arrival order, including refused ones.
        self.calls: list[Call] = []
        #: How many 429 answers the rate limit (not fail_next) has sent.
        self.rate_limited = 0
        #: Seconds deliver() and post_update() wait for the webhook's answer.
        self.webhook_timeout = 10.0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        if self._runner is not None:
            raise RuntimeError("FakeBotApi is already started")
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Answer pending long polls and delays at once, then shut the server down."""
        self._closing.set()
        self._wake()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._port is None:
            raise RuntimeError("FakeBotApi is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` for PTB (the token is appended by PTB)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """The ``base_file_url`` for PTB (the token is appended by PTB)."""
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------------ test side: users and updates

    def user(
        self,
        user_id: int,
        first_name: str,
        language_code: str | None = "zh-hans",
        *,
        last_name: str | None = None,
        username: str | None = None,
    ) -> JsonDict:
        """Register a Telegram user and the private chat with them; return the User object."""
        extra = {k: v for k, v in {"last_name": last_name, "username": username}.items() if v}
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name, **extra}
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        self._chats[user_id] = {"id": user_id, "type": "private", "first_name": first_name, **extra}
        return user

    def message(
        self,
        user_id: int,
        text: str | None = None,
        photo_file_id: str | None = None,
        voice_file_id: str | None = None,
        *,
        caption: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> JsonDict:
        """Queue a Message update from the user (registered on the fly if new); return the Update.

        A text gets bot_command entities; a photo or voice file_id not added with add_file
        becomes a known file with empty content.
        """
        if text is None and photo_file_id is None and voice_file_id is None:
            raise ValueError("a message needs a text, a photo or a voice")
        if user_id not in self._users:
            self.user(user_id, f"User {user_id}")
        chat = self._chats[user_id]
        message = self._new_message(chat, self._users[user_id], text=text, caption=caption)
        if text is not None:
            message.entities = command_entities(text)
        if photo_file_id is not None:
            message.media_kind, message.media = "photo", [self._photo_size(photo_file_id)]
        elif voice_file_id is not None:
            stored = self._known_file(voice_file_id, "voice", ".oga")
            message.media_kind = "voice"
            message.media = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "duration": 3,
                "mime_type": "audio/ogg",
                "file_size": len(stored.content),
            }
        if reply_to_message_id is not None:
            message.reply_to = self._messages[user_id].get(reply_to_message_id)
        return self._enqueue("message", message.to_api())

    def press(self, user_id: int, message_id: int, data: str, *, strict: bool = True) -> JsonDict:
        """Queue a CallbackQuery update: the user taps a button of the bot's message; return it.

        With ``strict`` the message must currently carry a button with this callback_data.
        """
        message = self._messages.get(user_id, {}).get(message_id)
        if user_id not in self._users or message is None or not message.from_bot:
            raise LookupError(f"no bot message {message_id} in the chat with user {user_id}")
        offered = [button_data for row in message.buttons for _, button_data in row]
        if strict and data not in offered:
            raise LookupError(f"message {message_id} has no button {data!r}; it offers {offered}")
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        query = {
            "id": query_id,
            "from": self._users[user_id],
            "message": message.to_api(),
            "chat_instance": str(8_000_000_000_000_000_000 + user_id),
            "data": data,
        }
        return self._enqueue("callback_query", query)

    @property
    def updates(self) -> list[JsonDict]:
        """Updates queued and not yet confirmed (getUpdates) or delivered (webhook)."""
        return list(self._updates)

    async def deliver(self) -> list[int]:
        """POST every queued update to the webhook, in order, as Telegram does; return the statuses.

        An update answered with 2xx is done; any other answer (or 0 for no connection) keeps it
        queued for redelivery and is reported in getWebhookInfo's last_error_message.
        """
        async with self._deliver_lock:
            webhook = self._require_webhook()
            statuses: list[int] = []
            for update in list(self._updates):
                status = await self._post(webhook, update, webhook.secret_token)
                statuses.append(status)
                if 200 <= status < 300 and update in self._updates:
                    self._updates.remove(update)
            self._wake()
            return statuses

    async def post_update(self, update: JsonDict, secret: str | None = None) -> int:
        """POST one raw update to the webhook (e.g. a forged one); return the HTTP status."""
        return await self._post(self._require_webhook(), update, secret)

    # ------------------------------------------------------------------ test side: failures

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` ("*" = any method) with an error, after
        ``delay`` seconds; the call is not carried out. 429 answers carry retry_after (default 1)."""
        rule = FailureRule(status, description, retry_after, delay, times)
        self._failures.setdefault(method.lower(), deque()).append(rule)

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``method`` but answer only after ``seconds``
        (a client with a shorter read timeout sees a timeout for an action that happened)."""
        self._failures.setdefault(method.lower(), deque()).append(
            FailureRule(None, None, None, seconds, times)
        )

    def release_delays(self) -> None:
        """Let every delayed answer (fail_next / delay_next with a delay) go out now."""
        self._release.set()
        self._release = asyncio.Event()

    def rate_limit(self, per_second: int | None = 30) -> None:
        """Answer 429 beyond ``per_second`` calls (getUpdates excepted) in any one-second window;
        None switches the limit off."""
        self._per_second = per_second
        self._window.clear()

    # ------------------------------------------------------------------ test side: inspection

    def messages_to(self, chat_id: int) -> list[ChatMessage]:
        """The bot's messages now in the chat, in order (edits applied, deleted ones gone)."""
        return [m for m in self._messages.get(chat_id, {}).values() if m.from_bot]

    def history(self, chat_id: int) -> list[ChatMessage]:
        """Every message now in the chat, the user's and the bot's, in order."""
        return list(self._messages.get(chat_id, {}).values())

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, checking it after every request the fake answers
        and every update queued (no polling); TimeoutError after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            changed, remaining = self._wakeup, deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"the condition did not hold within {within} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    @property
    def waiting_polls(self) -> int:
        """How many getUpdates requests are being answered now (waiting for updates)."""
        return self._waiting_polls

    def calls_to(self, method: str) -> list[Call]:
        """The calls of one method."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    @property
    def commands(self) -> dict[str, list[tuple[str, str]]]:
        """The default-scope command lists by language_code ("" = for all languages)."""
        default = scope_key(None)
        return {
            language: [(c["command"], c["description"]) for c in commands]
            for (scope, language), commands in self._commands.items()
            if scope == default
        }

    def commands_for(self, scope: JsonDict | None = None, language_code: str = "") -> list[tuple[str, str]]:
        """The (command, description) list set for one scope and language."""
        commands = self._commands.get((scope_key(scope), language_code), [])
        return [(c["command"], c["description"]) for c in commands]

    @property
    def webhook(self) -> Webhook | None:
        """The webhook as set, or None."""
        return self._webhook

    # ------------------------------------------------------------------ HTTP

    async def _handle_method(self, request: web.Request) -> web.Response:
        call = Call(method=request.match_info["method"], params={})
        self.calls.append(call)
        try:
            token = request.match_info["token"]
            if token != self.token:  # a malformed token is not even looked up
                raise ApiError(401, "Unauthorized") if ":" in token else ApiError(404, "Not Found")
            call.params = await self._read_params(request)
            body = await self._execute(call)
        except ApiError as error:
            call.status, call.description = error.status, error.description
            return web.json_response(error.body(), status=error.status)
        finally:
            self._wake()  # wait_until() checks again
        return web.json_response(body)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        found = [f for f in self._files.values() if f.file_path == path]
        if request.match_info["token"] != self.token or not found:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=found[0].content, content_type="application/octet-stream")

    @staticmethod
    async def _read_params(request: web.Request) -> JsonDict:
        raw: JsonDict = dict(request.query)
        if not request.body_exists:
            return raw
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise bad_request("can't parse JSON encoded request")
            raw.update(body)
            return raw
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                raw[name] = Upload(value.filename, value.content_type, value.file.read())
            else:
                raw[name] = value.decode() if isinstance(value, bytes) else value
        return raw

    async def _execute(self, call: Call) -> JsonDict:
        """Carry out one recorded call: lookup, injected failure, rate limit, the method."""
        entry = self._methods.get(call.method.lower())
        if entry is None:
            raise ApiError(404, "Not Found")
        call.method, handler = entry
        params = call.params = decode_params(call.params)
        rule = self._take_rule(call.method)
        if rule is not None and (error := rule.error()) is not None:
            await self._sleep(rule.delay)
            raise error
        if call.method == "getUpdates":
            result: object = await self._get_updates(params)
        else:
            self._check_rate()
            async with self._lock:
                result = handler(params)
        if rule is not None:
            await self._sleep(rule.delay)
        call.status = 200
        if isinstance(result, Described):
            return {"ok": True, "result": result.result, "description": result.description}
        return {"ok": True, "result": result}

    def _take_rule(self, method: str) -> FailureRule | None:
        for key in (method.lower(), "*"):
            rules = self._failures.get(key)
            if rules:
                rule = rules[0]
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.popleft()
                return rule
        return None

    def _check_rate(self) -> None:
        if self._per_second is None:
            return
        now = asyncio.get_running_loop().time()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self._per_second:
            self.rate_limited += 1
            raise too_many_requests(max(1, math.ceil(self._window[0] + 1.0 - now)))
        self._window.append(now)

    async def _sleep(self, seconds: float) -> None:
        """Wait, but no longer than until stop() or release_delays()."""
        if seconds > 0:
            release = self._release
            waits = [asyncio.ensure_future(e.wait()) for e in (self._closing, release)]
            try:
                await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()

    async def _post(self, webhook: Webhook, update: JsonDict, secret: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.webhook_timeout))
        try:
            async with self._session.post(webhook.url, data=json.dumps(update), headers=headers) as response:
                status, reason, body = response.status, response.reason, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            webhook.last_error_date = int(self.clock())
            webhook.last_error_message = f"Connection failed: {type(error).__name__}"
            return 0
        if not 200 <= status < 300:
            webhook.last_error_date = int(self.clock())
            webhook.last_error_message = f"Wrong response from the webhook: {status} {reason}"
        elif body:
            await self._webhook_reply(body)
        return status

    async def _webhook_reply(self, body: bytes) -> None:
        """Carry out a method the bot put in its answer to a webhook request, as Telegram does."""
        try:
            reply = json.loads(body)
        except ValueError:
            return
        if isinstance(reply, dict) and isinstance(reply.get("method"), str):
            call = Call(method=reply.pop("method"), params=reply)
            self.calls.append(call)
            try:
                await self._execute(call)
            except ApiError as error:
                call.status, call.description = error.status, error.description

    # ------------------------------------------------------------------ methods

    async def _get_updates(self, p: JsonDict) -> list[JsonDict]:
        async with self._lock:
            if self._webhook is not None:
                raise ApiError(409, WEBHOOK_CONFLICT)
            offset = p.get("offset")
            if isinstance(offset, int) and offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif isinstance(offset, int) and offset < 0:
                self._updates = self._updates[offset:]
            if isinstance(p.get("allowed_updates"), list):
                self._allowed_updates = [str(kind) for kind in p["allowed_updates"]]
            self._poll_generation += 1
            generation = self._poll_generation
            self._wake()  # an earlier getUpdates still waiting is terminated
        limit, timeout = p.get("limit"), p.get("timeout")
        limit = min(max(limit, 1), 100) if isinstance(limit, int) else 100
        timeout = max(0.0, float(timeout)) if isinstance(timeout, int | float) else 0.0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiting_polls += 1
        self._wake()  # wait_until(lambda: api.waiting_polls ...) checks again
        try:
            while True:
                wakeup = self._wakeup
                if self._webhook is not None:
                    raise ApiError(409, WEBHOOK_CONFLICT)
                if generation != self._poll_generation:
                    raise ApiError(409, POLL_CONFLICT)
                remaining = deadline - loop.time()
                if self._updates or remaining <= 0 or self._closing.is_set():
                    return self._updates[:limit]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), remaining)
        finally:
            self._waiting_polls -= 1


__all__ = ["BOT_USERNAME", "DEFAULT_TOKEN", "FakeBotApi"]
