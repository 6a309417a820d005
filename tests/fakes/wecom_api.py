"""A fake WeChat Work (WeCom, 企业微信) server API, spoken to over real HTTP on 127.0.0.1.

Point the product's client at :attr:`FakeWecomApi.url` instead of ``https://qyapi.weixin.qq.com``;
it appends ``/cgi-bin/...`` as with the real API. The test registers members (:meth:`FakeWecomApi.user`),
media (:meth:`FakeWecomApi.media`), plays members pressing card buttons (:meth:`FakeWecomApi.press`)
and inspects what arrived (:meth:`FakeWecomApi.messages_to`, :attr:`FakeWecomApi.dropped`,
:attr:`FakeWecomApi.calls`, :attr:`FakeWecomApi.menu`).

Implemented: ``gettoken``, ``message/send`` (text, markdown, template_card of the types
button_interaction and text_notice), ``message/update_template_card`` (both forms: button.replace_name
and a new template_card of those types), ``media/get`` and ``menu/create``. Every JSON answer is
HTTP 200 with ``errcode``/``errmsg``, as WeCom answers; errmsg is the bare message, without WeCom's
", hint: [...]" suffix. A response_code can be used once, within 72 hours (:attr:`FakeWecomApi.clock`).

Deviations from the real API, on purpose:

* ``toparty``/``totag`` are ignored; recipients are ``touser`` members only (``@all`` = every member).
* Only the card types button_interaction and text_notice exist; other card types are refused.
* text and markdown content over 2048 UTF-8 bytes is refused with 45002 (WeCom's documentation says
  a longer text is truncated), so a product that sends too much is caught instead of cut short.
* Card titles: main_title.title is required (WeCom accepts sub_title_text alone).
* update_template_card: a new ``template_card`` is checked as message/send checks one, except that its
  task_id may be left out (WeCom's examples of this form have none): the card keeps its task_id unless
  the new card names another one not used by the app yet. A body with both ``button`` and
  ``template_card`` is refused with 40058. A refused update does not use up its response_code.
* A call takes effect when it arrives; :attr:`FakeWecomApi.delay` only delays the answer, so a client
  that gives up waiting may have sent a message anyway (as with the real service).
* A path the fake does not implement answers HTTP 404, a wrong HTTP method HTTP 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

JsonDict = dict[str, Any]

# ---------------------------------------------------------------------- error codes (WeCom's numbers)

SYSTEM_BUSY = -1
INVALID_CREDENTIAL = 40001  # wrong corpsecret
INVALID_MEDIA_ID = 40007
INVALID_MESSAGE_TYPE = 40008
INVALID_CORPID = 40013
INVALID_ACCESS_TOKEN = 40014
INVALID_AGENTID = 40056
INVALID_PARAMETER = 40058  # WeCom's generic "invalid parameter"
ACCESS_TOKEN_MISSING = 41001
CORPID_MISSING = 41002
CORPSECRET_MISSING = 41004
MEDIA_ID_MISSING = 41006
ACCESS_TOKEN_EXPIRED = 42001
EMPTY_CONTENT = 44004  # text/markdown content empty
CONTENT_SIZE_OUT_OF_LIMIT = 45002
DATA_FORMAT_ERROR = 47001  # the body is not a JSON object
ALL_RECIPIENTS_INVALID = 81013
#: The code for an unknown or already used response_code. This number is the fake's choice: WeCom's
#: published error code list has no entry for it that we could rely on, so tests should not either.
INVALID_RESPONSE_CODE = 40090
#: Seconds a response_code stays usable (72 hours).
RESPONSE_CODE_TTL = 72 * 3600

#: Largest text/markdown content, in UTF-8 bytes.
MAX_CONTENT_BYTES = 2048
#: Largest button key of a template card, in UTF-8 bytes.
MAX_BUTTON_KEY_BYTES = 1024
#: A template card's task_id: letters, digits and ``_-@``, 1..128 characters.
TASK_ID = re.compile(r"[A-Za-z0-9_\-@]{1,128}")
#: Menu limits from WeCom's menu/create documentation (bytes of UTF-8).
MAX_MENU_NAME_BYTES = 16
MAX_SUB_MENU_NAME_BYTES = 40
MAX_MENU_KEY_BYTES = 128
MAX_MENU_URL_BYTES = 1024
#: Menu button types that carry a ``key`` (their click reaches the callback URL).
MENU_KEY_TYPES = frozenset(
    {"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin"}
    | {"location_select"}
)
CARD_TYPES = frozenset({"button_interaction", "text_notice"})


class WecomError(Exception):
    """An error answer: ``{"errcode": errcode, "errmsg": errmsg}`` (HTTP 200, as WeCom answers)."""

    def __init__(self, errcode: int, errmsg: str, **extra: Any) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.extra = extra

    def body(self) -> JsonDict:
        """The JSON answer."""
        return {"errcode": self.errcode, "errmsg": self.errmsg, **self.extra}


def invalid(errmsg: str) -> WecomError:
    """A 40058 (invalid parameter) error with an explanatory message."""
    return WecomError(INVALID_PARAMETER, errmsg)


@dataclass
class Delivered:
    """One message as it reached one member (or was dropped for that member)."""

    userid: str
    msgtype: str
    #: text/markdown: the content; template cards: main_title.title and sub_title_text joined by "\n".
    text: str
    #: The buttons of a button_interaction card: (text, key).
    buttons: list[tuple[str, str]] = field(default_factory=list)
    task_id: str | None = None
    #: The response_code the send call returned (button_interaction cards only).
    response_code: str | None = None
    #: The button's replace_name once update_template_card changed this member's card.
    replaced: str | None = None
    msgid: str = ""
    #: The JSON body of the message/send call.
    raw: JsonDict = field(default_factory=dict)
    card_type: str | None = None
    #: The body of the last update_template_card call that gave this member a new template_card
    #: (text, buttons, task_id and card_type above then describe that card).
    card_update: JsonDict | None = None


@dataclass
class ApiCall:
    """One request to the fake, in arrival order."""

    path: str  # e.g. "/cgi-bin/message/send"
    query: dict[str, str]
    body: JsonDict | None  # the JSON object posted; None for GET or a body that is not a JSON object
    errcode: int | None = None  # the answer's errcode (0 for media bytes); None while not answered


@dataclass
class _Token:
    issued: float
    expired: bool = False


@dataclass
class _CodeGrant:
    """What one response_code may update: these members' copies of the card sent as ``msgid``
    (None: no card), once, within :data:`RESPONSE_CODE_TTL` seconds of ``issued``."""

    msgid: str | None
    userids: frozenset[str]
    issued: float
    used: bool = False

    def usable(self, now: float) -> bool:
        """Not used yet and not expired."""
        return not self.used and now - self.issued < RESPONSE_CODE_TTL


@dataclass
class _Media:
    data: bytes
    content_type: str
    filename: str


@dataclass
class _Content:
    """What a message/send body asks to show, after validation."""

    text: str
    buttons: list[tuple[str, str]] = field(default_factory=list)
    task_id: str | None = None
    card_type: str | None = None


Handler = Callable[[dict[str, str], JsonDict | None], JsonDict | _Media]


def utf8_len(text: str) -> int:
    """Length in UTF-8 bytes (WeCom's limits count bytes)."""
    return len(text.encode("utf-8"))


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and value != ""


class FakeWecomApi:
    """An in-process WeCom API on 127.0.0.1 (aiohttp) for one corp and one self-built app.

    Use ``async with FakeWecomApi(corp_id, secret, agent_id) as api:`` or ``await api.start()`` /
    ``await api.stop()``. All state lives on the test's event loop.
    """

    def __init__(
        self,
        corp_id: str,
        secret: str,
        agent_id: int,
        *,
        token_ttl: int = 7200,
        per_minute: int = 30,
        per_hour: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.token_ttl = token_ttl
        self.per_minute = per_minute
        self.per_hour = per_hour
        #: Monotonic seconds for token lifetimes and the per-member limits (tests may pass a fake clock).
        self.clock = clock
        #: Seconds to wait before every answer (the call itself takes effect at once).
        self.delay = 0.0
        #: How many gettoken requests arrived (refused ones included).
        self.token_fetches = 0
        #: Every request, in arrival order, refused ones included.
        self.calls: list[ApiCall] = []
        #: Messages the per-member limits silently dropped (the send call still answered errcode 0).
        self.dropped: list[Delivered] = []
        #: The body of the last successful menu/create ({"button": [...]}); {} until one succeeds.
        self.menu: JsonDict = {}
        self._members: dict[str, str] = {}
        self._inbox: dict[str, list[Delivered]] = {}
        self._sent_at: dict[str, deque[float]] = {}
        self._tokens: dict[str, _Token] = {}
        self._current_token: str | None = None
        self._task_ids: set[str] = set()
        self._codes: dict[str, _CodeGrant] = {}
        self._media: dict[str, _Media] = {}
        self._failures: deque[tuple[int, str]] = deque()
        self._routes: dict[str, tuple[str, Handler]] = {
            "gettoken": ("GET", self._gettoken),
            "message/send": ("POST", self._message_send),
            "message/update_template_card": ("POST", self._update_template_card),
            "media/get": ("GET", self._media_get),
            "menu/create": ("POST", self._menu_create),
        }
        self.app = web.Application()
        self.app.router.add_route("*", "/cgi-bin/{path:.+}", self._handle)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        if self._runner is not None:
            raise RuntimeError("FakeWecomApi is already started")
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Cut pending delays short and shut the server down."""
        self._closing.set()
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
        """``http://127.0.0.1:PORT``: the API base (the client appends ``/cgi-bin/...``)."""
        if self._port is None:
            raise RuntimeError("FakeWecomApi is not started")
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ test side: setup and controls

    def user(self, userid: str, name: str) -> None:
        """Register a member of the corp who can receive the app's messages."""
        self._members[userid] = name
        self._inbox.setdefault(userid, [])

    @property
    def members(self) -> dict[str, str]:
        """The registered members: userid -> name."""
        return dict(self._members)

    def media(self, media_id: str, data: bytes, content_type: str, *, filename: str | None = None) -> None:
        """Make ``media/get?media_id=...`` answer these bytes (e.g. a photo or voice a member sent)."""
        self._media[media_id] = _Media(data, content_type, filename or media_id)

    def expire_tokens(self) -> None:
        """Expire every access_token issued so far (the next use answers 42001)."""
        for token in self._tokens.values():
            token.expired = True
        self._current_token = None

    def fail_next(self, count: int, errcode: int = SYSTEM_BUSY, errmsg: str = "system busy") -> None:
        """Answer the next ``count`` message/send calls (with a valid token) with this error; nothing
        is sent. -1 is WeCom's "system busy"."""
        self._failures.extend([(errcode, errmsg)] * count)

    def press(self, userid: str, task_id: str, key: str, *, strict: bool = True) -> str:
        """A member presses button ``key`` of the card ``task_id`` they received; return the new
        response_code the callback event carries (usable once, within 72 hours, to update that member's
        card).

        With ``strict`` the member must have the card, the card must offer ``key`` and must not have been
        replaced yet (AssertionError otherwise).
        """
        cards = [d for d in self._inbox.get(userid, []) if d.task_id == task_id and d.card_type is not None]
        card = cards[-1] if cards else None
        if strict:
            if card is None:
                raise AssertionError(f"member {userid!r} has no card with task_id {task_id!r}")
            offered = [button_key for _, button_key in card.buttons]
            if key not in offered:
                raise AssertionError(f"card {task_id!r} has no button {key!r}; it offers {offered}")
            if card.replaced is not None:
                raise AssertionError(f"card {task_id!r} of {userid!r} was replaced by {card.replaced!r}")
        return self._grant(None if card is None else card.msgid, [userid])

    # ------------------------------------------------------------------ test side: inspection

    def messages_to(self, userid: str) -> list[Delivered]:
        """The messages the member received, in order (dropped ones are not there)."""
        return list(self._inbox.get(userid, []))

    def calls_to(self, path: str) -> list[ApiCall]:
        """The calls of one endpoint, e.g. ``calls_to("message/send")``."""
        suffix = "/cgi-bin/" + path.removeprefix("/cgi-bin/").lstrip("/")
        return [call for call in self.calls if call.path == suffix]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, checking every 10 ms; TimeoutError after ``within`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            if loop.time() >= deadline:
                raise TimeoutError(f"the condition did not hold within {within} s")
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        call = ApiCall(path=request.path, query=dict(request.query), body=None)
        self.calls.append(call)
        raw = await request.read() if request.body_exists else b""
        body: JsonDict | None = None
        if raw:
            with contextlib.suppress(ValueError):
                parsed = json.loads(raw)
                if isinstance(parsed, dict):
                    body = parsed
        call.body = body
        route = self._routes.get(path)
        if route is None:
            call.errcode = 404
            response: web.StreamResponse = web.Response(status=404, text="404 Not Found")
        elif request.method != route[0]:
            call.errcode = 405
            response = web.Response(status=405, text="405 Method Not Allowed")
        else:
            try:
                if route[0] == "POST" and body is None:
                    self._check_token(call.query)
                    raise WecomError(DATA_FORMAT_ERROR, "data format error")
                result = route[1](call.query, body)
            except WecomError as error:
                result = error.body()
            if isinstance(result, _Media):
                call.errcode = 0
                disposition = f'attachment; filename="{result.filename}"'
                response = web.Response(
                    body=result.data,
                    content_type=result.content_type,
                    headers={"Content-Disposition": disposition},
                )
            else:
                call.errcode = int(result["errcode"])
                response = web.json_response(result)
        await self._sleep(self.delay)
        return response

    async def _sleep(self, seconds: float) -> None:
        """Wait, but no longer than until stop()."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    # ------------------------------------------------------------------ access tokens

    def _gettoken(self, query: dict[str, str], _body: JsonDict | None) -> JsonDict:
        self.token_fetches += 1
        corp_id, secret = query.get("corpid", ""), query.get("corpsecret", "")
        if not corp_id:
            raise WecomError(CORPID_MISSING, "corpid missing")
        if corp_id != self.corp_id:
            raise WecomError(INVALID_CORPID, "invalid corpid")
        if not secret:
            raise WecomError(CORPSECRET_MISSING, "corpsecret missing")
        if secret != self.secret:
            raise WecomError(INVALID_CREDENTIAL, "invalid credential")
        now = self.clock()
        current = self._tokens.get(self._current_token or "")
        if self._current_token is not None and current is not None and self._alive(current, now):
            # Within its lifetime WeCom hands out the same token again, with the time it has left.
            remaining = max(1, int(self.token_ttl - (now - current.issued)))
            token = self._current_token
        else:
            token = secrets.token_urlsafe(48)
            self._tokens[token] = _Token(issued=now)
            self._current_token, remaining = token, self.token_ttl
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": remaining}

    def _alive(self, token: _Token, now: float) -> bool:
        return not token.expired and now - token.issued < self.token_ttl

    def _check_token(self, query: dict[str, str]) -> None:
        value = query.get("access_token", "")
        if not value:
            raise WecomError(ACCESS_TOKEN_MISSING, "access_token missing")
        token = self._tokens.get(value)
        if token is None:
            raise WecomError(INVALID_ACCESS_TOKEN, "invalid access_token")
        if not self._alive(token, self.clock()):
            raise WecomError(ACCESS_TOKEN_EXPIRED, "access_token expired")

    def _check_agent(self, agentid: object) -> None:
        """The agentid must be this app's (an int, or its decimal string as WeCom also accepts)."""
        if isinstance(agentid, bool) or not isinstance(agentid, int | str):
            raise WecomError(INVALID_AGENTID, "invalid agentid")
        if str(agentid).strip() != str(self.agent_id):
            raise WecomError(INVALID_AGENTID, "invalid agentid")

    # ------------------------------------------------------------------ message/send

    def _message_send(self, query: dict[str, str], body: JsonDict | None) -> JsonDict:
        self._check_token(query)
        if self._failures:
            errcode, errmsg = self._failures.popleft()
            raise WecomError(errcode, errmsg)
        assert body is not None  # _handle refuses a POST without a JSON object
        self._check_agent(body.get("agentid"))
        content = self._content(body)
        valid, unknown = self._recipients(body.get("touser"))
        invaliduser = "|".join(unknown)
        if not valid:
            raise WecomError(
                ALL_RECIPIENTS_INVALID, "user & party & tag all invalid", invaliduser=invaliduser
            )
        if content.task_id is not None:
            if content.task_id in self._task_ids:
                raise invalid(f"invalid task_id: {content.task_id!r} was already used by this app")
            self._task_ids.add(content.task_id)
        msgid = secrets.token_urlsafe(32)
        answer: JsonDict = {"errcode": 0, "errmsg": "ok", "invaliduser": invaliduser, "msgid": msgid}
        response_code: str | None = None
        if content.card_type == "button_interaction":
            assert content.task_id is not None
            response_code = self._grant(msgid, valid)
            answer["response_code"] = response_code
        for userid in valid:
            message = Delivered(
                userid=userid,
                msgtype=str(body["msgtype"]),
                text=content.text,
                buttons=list(content.buttons),
                task_id=content.task_id,
                response_code=response_code,
                msgid=msgid,
                raw=body,
                card_type=content.card_type,
            )
            if self._within_limits(userid):
                self._inbox[userid].append(message)
            else:
                self.dropped.append(message)
        return answer

    def _recipients(self, touser: object) -> tuple[list[str], list[str]]:
        """(registered members, unknown userids) named by ``touser`` ("u1|u2" or "@all")."""
        if touser is None:
            touser = ""
        if not isinstance(touser, str):
            raise invalid("invalid touser: expected a string like 'userid1|userid2'")
        if touser.strip() == "@all":
            return list(self._members), []
        valid: list[str] = []
        unknown: list[str] = []
        for userid in dict.fromkeys(part.strip() for part in touser.split("|")):
            if userid:
                (valid if userid in self._members else unknown).append(userid)
        return valid, unknown

    def _within_limits(self, userid: str) -> bool:
        """Count one message to the member unless it exceeds per_minute/per_hour (sliding windows)."""
        now = self.clock()
        times = self._sent_at.setdefault(userid, deque())
        while times and times[0] <= now - 3600:
            times.popleft()
        last_minute = sum(1 for t in times if t > now - 60)
        if last_minute >= self.per_minute or len(times) >= self.per_hour:
            return False
        times.append(now)
        return True

    def _content(self, body: JsonDict) -> _Content:
        msgtype = body.get("msgtype")
        if msgtype in ("text", "markdown"):
            part = body.get(msgtype)
            text = part.get("content") if isinstance(part, dict) else None
            if text is None:
                raise invalid(f"invalid {msgtype}: {msgtype}.content missing")
            if not isinstance(text, str):
                raise invalid(f"invalid {msgtype}: {msgtype}.content must be a string")
            if not text:
                raise WecomError(EMPTY_CONTENT, "empty content")
            if utf8_len(text) > MAX_CONTENT_BYTES:
                raise WecomError(CONTENT_SIZE_OUT_OF_LIMIT, "content size out of limit")
            return _Content(text=text)
        if msgtype == "template_card":
            return self._card(body.get("template_card"))
        raise WecomError(INVALID_MESSAGE_TYPE, "invalid message type")

    def _card(self, card: object, *, need_task_id: bool = True) -> _Content:
        """Check a template_card; ``need_task_id=False`` for a new card of update_template_card,
        which may leave it out (the card keeps its task_id)."""
        if not isinstance(card, dict):
            raise invalid("invalid template_card: template_card must be an object")
        card_type = card.get("card_type")
        if card_type not in CARD_TYPES:
            raise invalid("invalid card_type")
        task_id = card.get("task_id")
        if need_task_id and card_type == "button_interaction" and task_id is None:
            raise invalid("invalid task_id: button_interaction cards need a task_id")
        if task_id is not None and not (isinstance(task_id, str) and TASK_ID.fullmatch(task_id)):
            raise invalid("invalid task_id: 1..128 characters of letters, digits and _-@")
        main_title = card.get("main_title")
        title = main_title.get("title") if isinstance(main_title, dict) else None
        if not _nonempty_str(title):
            raise invalid("invalid template_card: main_title.title missing or empty")
        assert isinstance(title, str)
        sub_title = card.get("sub_title_text")
        if sub_title is not None and not isinstance(sub_title, str):
            raise invalid("invalid template_card: sub_title_text must be a string")
        text = f"{title}\n{sub_title}" if sub_title else title
        buttons: list[tuple[str, str]] = []
        if card_type == "button_interaction":
            buttons = self._buttons(card.get("button_list"))
        else:
            self._card_action(card.get("card_action"))
        return _Content(text=text, buttons=buttons, task_id=task_id, card_type=str(card_type))

    @staticmethod
    def _buttons(button_list: object) -> list[tuple[str, str]]:
        if not isinstance(button_list, list) or not 1 <= len(button_list) <= 6:
            count = len(button_list) if isinstance(button_list, list) else 0
            raise invalid(f"invalid template_card: button_list needs 1..6 buttons, got {count}")
        buttons: list[tuple[str, str]] = []
        for index, button in enumerate(button_list):
            where = f"button_list[{index}]"
            if not isinstance(button, dict):
                raise invalid(f"invalid template_card: {where} must be an object")
            text, key, style = button.get("text"), button.get("key"), button.get("style")
            if not _nonempty_str(text):
                raise invalid(f"invalid template_card: {where}.text missing or empty")
            if not _nonempty_str(key):
                raise invalid(f"invalid template_card: {where}.key missing or empty")
            assert isinstance(text, str) and isinstance(key, str)
            if utf8_len(key) > MAX_BUTTON_KEY_BYTES:
                raise invalid(f"invalid template_card: {where}.key over {MAX_BUTTON_KEY_BYTES} bytes")
            if style is not None and (isinstance(style, bool) or not isinstance(style, int)):
                raise invalid(f"invalid template_card: {where}.style must be an integer")
            if key in (seen for _, seen in buttons):
                raise invalid(f"invalid template_card: button key {key!r} repeated")
            buttons.append((text, key))
        return buttons

    @staticmethod
    def _card_action(action: object) -> None:
        """text_notice cards must say where a tap on the card leads (type 1: url, type 2: mini program)."""
        if not isinstance(action, dict):
            raise invalid("invalid template_card: text_notice needs card_action")
        kind = action.get("type")
        if kind == 1 and _nonempty_str(action.get("url")):
            return
        if kind == 2 and _nonempty_str(action.get("appid")):
            return
        raise invalid("invalid template_card: card_action needs type 1 with url or type 2 with appid")

    def _grant(self, msgid: str | None, userids: list[str]) -> str:
        """A new response_code for these members' copies of the card ``msgid``."""
        while (code := secrets.token_urlsafe(32)) in self._codes:
            pass
        self._codes[code] = _CodeGrant(msgid, frozenset(userids), issued=self.clock())
        return code

    # ------------------------------------------------------------------ message/update_template_card

    def _update_template_card(self, query: dict[str, str], body: JsonDict | None) -> JsonDict:
        self._check_token(query)
        assert body is not None
        self._check_agent(body.get("agentid"))
        new_card, replace_name = self._update_form(body)
        userids = body.get("userids", [])
        if not isinstance(userids, list) or not all(isinstance(u, str) for u in userids):
            raise invalid("invalid userids: expected a list of userids")
        atall = body.get("atall") == 1
        if not userids and not atall:
            raise WecomError(ALL_RECIPIENTS_INVALID, "user & party & tag all invalid", invaliduser=[])
        code = body.get("response_code")
        grant = self._codes.get(code) if isinstance(code, str) else None
        if grant is None or not grant.usable(self.clock()):
            raise WecomError(INVALID_RESPONSE_CODE, "invalid response_code")
        targets = sorted(grant.userids) if atall else list(dict.fromkeys(userids))
        cards: list[Delivered] = []
        invaliduser: list[str] = []
        for userid in targets:
            card = self._card_of(userid, grant) if userid in grant.userids else None
            if card is None:
                invaliduser.append(userid)
            else:
                cards.append(card)
        if new_card is not None:
            self._claim_task_id(new_card, cards)
        grant.used = True
        for card in cards:
            if new_card is None:
                card.replaced = replace_name
            else:
                self._replace_card(card, new_card, body)
        return {"errcode": 0, "errmsg": "ok", "invaliduser": invaliduser}

    def _update_form(self, body: JsonDict) -> tuple[_Content | None, str]:
        """(the new card, "") for a template_card update, (None, replace_name) for a button one."""
        button = body.get("button")
        if "template_card" in body:
            if button is not None:
                raise invalid("invalid parameter: give either button or template_card, not both")
            return self._card(body["template_card"], need_task_id=False), ""
        if not isinstance(button, dict):
            raise invalid("invalid button: button.replace_name missing")
        replace_name = button.get("replace_name")
        if not _nonempty_str(replace_name):
            raise invalid("invalid button: replace_name missing or empty")
        return None, str(replace_name)

    def _card_of(self, userid: str, grant: _CodeGrant) -> Delivered | None:
        """The member's copy of the card the code was given for, if they have it."""
        found = [d for d in self._inbox.get(userid, []) if d.msgid == grant.msgid and d.card_type is not None]
        return found[-1] if found else None

    def _claim_task_id(self, new_card: _Content, cards: list[Delivered]) -> None:
        """A new card that names a task_id other than its card's must name one not used yet."""
        task_id = new_card.task_id
        if task_id is None or not cards or task_id in {card.task_id for card in cards}:
            return
        if task_id in self._task_ids:
            raise invalid(f"invalid task_id: {task_id!r} was already used by this app")
        self._task_ids.add(task_id)

    @staticmethod
    def _replace_card(card: Delivered, new_card: _Content, body: JsonDict) -> None:
        """Show the member the new card instead (its buttons, if any, can be pressed again)."""
        card.text = new_card.text
        card.buttons = list(new_card.buttons)
        card.card_type = new_card.card_type
        card.task_id = new_card.task_id or card.task_id
        card.replaced = None
        card.card_update = body

    # ------------------------------------------------------------------ media/get

    def _media_get(self, query: dict[str, str], _body: JsonDict | None) -> JsonDict | _Media:
        self._check_token(query)
        media_id = query.get("media_id", "")
        if not media_id:
            raise WecomError(MEDIA_ID_MISSING, "media_id missing")
        found = self._media.get(media_id)
        if found is None:
            raise WecomError(INVALID_MEDIA_ID, "invalid media_id")
        return found

    # ------------------------------------------------------------------ menu/create

    def _menu_create(self, query: dict[str, str], body: JsonDict | None) -> JsonDict:
        self._check_token(query)
        assert body is not None
        self._check_agent(query.get("agentid"))
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise invalid("invalid menu: button needs 1..3 top-level buttons")
        for index, button in enumerate(buttons):
            where = f"button[{index}]"
            if not isinstance(button, dict):
                raise invalid(f"invalid menu: {where} must be an object")
            self._menu_name(button.get("name"), where, MAX_MENU_NAME_BYTES)
            subs = button.get("sub_button")
            if subs is None or subs == []:
                self._menu_leaf(button, where)
                continue
            if not isinstance(subs, list) or len(subs) > 5:
                raise invalid(f"invalid menu: {where}.sub_button needs 1..5 buttons")
            for sub_index, sub in enumerate(subs):
                sub_where = f"{where}.sub_button[{sub_index}]"
                if not isinstance(sub, dict):
                    raise invalid(f"invalid menu: {sub_where} must be an object")
                if sub.get("sub_button"):
                    raise invalid(f"invalid menu: {sub_where} cannot have a third level")
                self._menu_name(sub.get("name"), sub_where, MAX_SUB_MENU_NAME_BYTES)
                self._menu_leaf(sub, sub_where)
        self.menu = body
        return {"errcode": 0, "errmsg": "ok"}

    @staticmethod
    def _menu_name(name: object, where: str, limit: int) -> None:
        if not _nonempty_str(name):
            raise invalid(f"invalid menu: {where}.name missing or empty")
        assert isinstance(name, str)
        if utf8_len(name) > limit:
            raise invalid(f"invalid menu: {where}.name over {limit} bytes")

    @staticmethod
    def _menu_leaf(button: JsonDict, where: str) -> None:
        kind = button.get("type")
        if kind in MENU_KEY_TYPES:
            key = button.get("key")
            if not _nonempty_str(key) or utf8_len(str(key)) > MAX_MENU_KEY_BYTES:
                raise invalid(f"invalid menu: {where}.key needs 1..{MAX_MENU_KEY_BYTES} bytes")
        elif kind == "view":
            url = button.get("url")
            if not _nonempty_str(url) or utf8_len(str(url)) > MAX_MENU_URL_BYTES:
                raise invalid(f"invalid menu: {where}.url needs 1..{MAX_MENU_URL_BYTES} bytes")
        elif kind == "view_miniprogram":
            if not (_nonempty_str(button.get("appid")) and _nonempty_str(button.get("pagepath"))):
                raise invalid(f"invalid menu: {where} needs appid and pagepath")
        else:
            raise invalid(f"invalid menu: {where}.type {kind!r} is not a menu button type")


__all__ = ["ApiCall", "Delivered", "FakeWecomApi", "WecomError"]
