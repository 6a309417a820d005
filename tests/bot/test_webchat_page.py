"""The web chat page (bot/webchat/static/chat.html) in headless Chromium, against a stub server.

The stub implements the page's HTTP contract with canned behaviour: a typed text is stored as
the user's message and answered with "收到 Got: <text>" and two buttons; a pressed button is
shown as its label and answered with "pressed <action>"; a text starting with "!" is refused
with a 400. Tests push bot messages from their side to show the long-poll delivering them live.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.browser import Browser, require_chromium


@pytest.fixture(autouse=True)
def needs_chromium() -> None:
    """These tests drive a real browser."""
    require_chromium()


PAGE = Path(__file__).resolve().parents[2] / "bot" / "webchat" / "static" / "chat.html"
PEOPLE = [
    {"user": "wangxiaoli", "name": "王晓丽", "role": "reporter", "site": "demo"},
    {"user": "liujianguo", "name": "刘建国", "role": "engineer", "site": "demo"},
    {"user": "zhaoke", "name": "赵可", "role": "supervisor", "site": "demo"},
    {"user": "chenjie", "name": "陈杰", "role": "manager", "site": "demo"},
]
USERS = {person["user"] for person in PEOPLE}
SCREENSHOT = Path("/tmp/webchat.png")
Buttons = list[list[dict[str, str]]]


class StubChat:
    """The web chat's HTTP contract with canned answers; messages live in memory."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.sends: list[dict[str, Any]] = []  # every accepted POST body, in order
        self.client_ids: set[str] = set()
        self.waiting: dict[str, int] = {}  # user -> long polls parked right now
        self.failing_polls = 0  # answer this many polls with a 500 first
        self.sloppy = False  # answer a poll with all of the user's messages, repeated and reversed
        self.texts_answered = 0
        self.closed = False
        self.changed = asyncio.Condition()
        self.base = ""

    def app(self) -> web.Application:
        """The stub's routes under /chat, as the real server serves them."""
        app = web.Application()
        app.router.add_get("/chat", self.page)
        app.router.add_get("/chat/api/people", self.people)
        app.router.add_post("/chat/api/send", self.send)
        app.router.add_get("/chat/api/messages", self.poll)
        return app

    def url(self, path: str = "/chat") -> str:
        """An absolute address on the stub."""
        return self.base + path

    async def page(self, request: web.Request) -> web.Response:
        """GET /chat: the page file, read afresh."""
        return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")

    async def people(self, request: web.Request) -> web.Response:
        """GET /chat/api/people."""
        return web.json_response({"people": PEOPLE})

    async def send(self, request: web.Request) -> web.Response:
        """POST /chat/api/send: store the user's message and answer it."""
        body = await request.json()
        if not isinstance(body, dict) or body.get("user") not in USERS:
            return web.json_response({"ok": False, "error": "未知用户 unknown user"}, status=404)
        if not isinstance(body.get("client_id"), str):
            return web.json_response({"ok": False, "error": "client_id missing"}, status=400)
        text, action = body.get("text"), body.get("action")
        if isinstance(text, str) and text.startswith("!"):
            return web.json_response({"ok": False, "error": "不能发送 refused: <b>坏</b>"}, status=400)
        if body["client_id"] in self.client_ids:
            return web.json_response({"ok": True}, status=202)
        self.client_ids.add(body["client_id"])
        self.sends.append(body)
        user = body["user"]
        if isinstance(text, str):
            self.texts_answered += 1
            n = self.texts_answered
            await self.push(user, text, direction="in")
            buttons = [
                [{"label": "接单", "action": f"t:{n}:ack"}, {"label": "转派", "action": f"t:{n}:pass"}]
            ]
            await self.push(user, f"收到 Got: {text}", buttons)
        elif isinstance(action, str):
            await self.push(user, str(body.get("label") or action), direction="in")  # as the server does
            await self.push(user, f"pressed {action}")
        else:
            return web.json_response({"ok": False, "error": "text or action"}, status=400)
        return web.json_response({"ok": True}, status=202)

    async def poll(self, request: web.Request) -> web.Response:
        """GET /chat/api/messages: answer at once when there is news, else after ``wait`` seconds."""
        if self.failing_polls > 0:
            self.failing_polls -= 1
            return web.json_response({"error": "boom"}, status=500)
        user = request.query["user"]
        after = int(request.query.get("after", "0"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(float(request.query.get("wait", "25")), 25)
        async with self.changed:
            self.waiting[user] = self.waiting.get(user, 0) + 1
            try:
                while not self.closed and not self._mine(user, after):
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        await asyncio.wait_for(self.changed.wait(), remaining)
                    except TimeoutError:
                        break
            finally:
                self.waiting[user] -= 1
            found = self._mine(user, after)
            if found and self.sloppy:
                everything = self._mine(user, 0)
                found = list(reversed(everything)) + everything
        return web.json_response({"messages": [self._public(m) for m in found]})

    async def push(
        self,
        user: str,
        text: str,
        buttons: Buttons | None = None,
        *,
        direction: str = "out",
        replaces: int | None = None,
    ) -> None:
        """Store a message for ``user`` (``replaces``: the new content of that earlier bubble,
        as the server sends a card changed in place) and wake the long polls."""
        async with self.changed:
            number = len(self.messages) + 1
            at = f"2026-12-01T09:{number % 60:02d}:00+08:00"
            message = {"id": number, "user": user, "direction": direction, "text": text, "at": at}
            self.messages.append({**message, "buttons": buttons or [], "replaces": replaces})
            self.changed.notify_all()

    async def close(self) -> None:
        """Let parked polls answer now (the server is going away)."""
        async with self.changed:
            self.closed = True
            self.changed.notify_all()

    def _mine(self, user: str, after: int) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["user"] == user and m["id"] > after]

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in message.items() if key != "user"}


@pytest.fixture
async def stub() -> AsyncIterator[StubChat]:
    """The stub server on 127.0.0.1 (a port the system picks)."""
    chat = StubChat()
    runner = web.AppRunner(chat.app(), shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    chat.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield chat
    finally:
        await chat.close()
        await runner.cleanup()


@pytest.fixture
async def browser(stub: StubChat) -> AsyncIterator[Browser]:
    """A headless Chromium, closed before the stub server stops."""
    async with Browser() as chromium:
        yield chromium


async def eventually(check: Callable[[], bool], message: str, within: float = 5) -> None:
    """Wait up to ``within`` seconds until ``check()`` holds (something the page does over HTTP)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.05)


async def eventually_async(
    read: Callable[[], Awaitable[object]], expected: object, within: float = 5
) -> None:
    """Wait up to ``within`` seconds until the awaitable ``read()`` returns ``expected``."""
    deadline = time.monotonic() + within
    value: object = None
    while time.monotonic() < deadline:
        value = await read()
        if value == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {expected!r}, last saw {json.dumps(value, ensure_ascii=False)}")


async def open_with(browser: Browser, stub: StubChat, *names: str) -> None:
    """Open the page and pick ``names`` in panes 0, 1, ..."""
    await browser.open(stub.url())
    for index, name in enumerate(names):
        await browser.pick(index, name)


async def test_page_lists_people_and_three_panes_keep_their_person(browser: Browser, stub: StubChat) -> None:
    await browser.open(stub.url())
    options = await browser.execute(
        "return Array.from(document.querySelectorAll('[data-pane=\"0\"] [data-role=picker] option'))"
        ".map((o) => o.textContent)"
    )
    assert options[1:] == [
        "王晓丽 · 报修人 reporter",
        "刘建国 · 工程师 engineer",
        "赵可 · 主管 supervisor",
        "陈杰 · 领导 manager",
    ]
    assert "选择人员" in options[0] and "Pick a person" in options[0]

    for index, name in enumerate(["王晓丽", "刘建国", "赵可"]):
        await browser.pick(index, name)
    assert (await browser.url()).endswith("/chat#wangxiaoli,liujianguo,zhaoke")
    await eventually(
        lambda: all(stub.waiting.get(user) for user in ("wangxiaoli", "liujianguo", "zhaoke")),
        f"not every pane is long-polling: {stub.waiting}",
    )

    boxes = await browser.execute(
        "return Array.from(document.querySelectorAll('section[data-pane]')).map((p) => {"
        "const r = p.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })"
    )
    width, height = await browser.execute("return [window.innerWidth, window.innerHeight]")
    assert len(boxes) == 3
    lefts = [box[0] for box in boxes]
    assert lefts == sorted(lefts) and len({round(box[1]) for box in boxes}) == 1, boxes  # side by side
    assert all(300 <= box[2] <= 450 and box[3] >= 0.8 * height for box in boxes), boxes  # phone-like
    assert boxes[-1][0] + boxes[-1][2] <= width

    await browser.reload()
    assert [await browser.picked(i) for i in range(3)] == ["wangxiaoli", "liujianguo", "zhaoke"]


async def test_typing_shows_the_line_and_the_answer_in_that_pane_only(
    browser: Browser, stub: StubChat
) -> None:
    await open_with(browser, stub, "王晓丽", "刘建国")
    await browser.type(0, "三楼打印机卡纸")
    assert await browser.wait_text(0, "三楼打印机卡纸", direction="in") == "三楼打印机卡纸"
    await browser.wait_text(0, "收到 Got: 三楼打印机卡纸", direction="out")
    await browser.type(0, "第二条 second", submit="click")
    await browser.wait_text(0, "收到 Got: 第二条 second")

    assert await browser.messages(0) == [
        "三楼打印机卡纸",
        "收到 Got: 三楼打印机卡纸",
        "第二条 second",
        "收到 Got: 第二条 second",
    ]
    assert await browser.messages(1) == []
    assert "打印机" not in await browser.pane_text(1)
    assert [(s["user"], s["text"]) for s in stub.sends] == [
        ("wangxiaoli", "三楼打印机卡纸"),
        ("wangxiaoli", "第二条 second"),
    ]
    assert all(uuid.UUID(s["client_id"]).version == 4 for s in stub.sends)
    assert (
        await browser.execute("return document.querySelector('[data-pane=\"0\"] [data-role=input]').value")
        == ""
    )
    # the user's line on the right, the bot's on the left, like a phone chat
    sides = await browser.execute(
        "return ['in', 'out'].map((d) => document.querySelector("
        '`[data-pane="0"] [data-direction="${d}"] [data-role=text]`).getBoundingClientRect())'
        ".map((r) => [r.left, r.right])"
    )
    assert sides[0][1] > sides[1][1] + 50 and sides[0][0] > sides[1][0], sides


async def test_pressing_a_button_sends_its_action(browser: Browser, stub: StubChat) -> None:
    await open_with(browser, stub, "刘建国")
    await browser.type(0, "一")
    await browser.wait_text(0, "收到 Got: 一")
    await browser.type(0, "二")
    await browser.wait_text(0, "收到 Got: 二")
    await browser.press(0, "接单")  # the newest message's button
    await browser.wait_text(0, "pressed t:2:ack", direction="out")
    bubble = next(m["id"] for m in stub.messages if m["text"] == "收到 Got: 二")
    assert stub.sends[-1] == {
        "user": "liujianguo",
        "action": "t:2:ack",
        "label": "接单",
        "line": bubble,  # which bubble the button was on: a card is changed in place
        "client_id": stub.sends[-1]["client_id"],
    }
    labels = await browser.execute(
        "return Array.from(document.querySelectorAll('[data-pane=\"0\"] [data-role=button]'))"
        ".map((b) => [b.textContent, b.dataset.action])"
    )
    assert labels == [["接单", "t:1:ack"], ["转派", "t:1:pass"], ["接单", "t:2:ack"], ["转派", "t:2:pass"]]


async def test_a_card_changed_in_place_replaces_its_bubble(browser: Browser, stub: StubChat) -> None:
    await open_with(browser, stub, "刘建国")
    await stub.push("liujianguo", "#1 一级·待接单", [[{"label": "接单", "action": "t:1:ack"}]])
    await stub.push("liujianguo", "新报修 #2")
    await browser.wait_text(0, "新报修 #2", direction="out")
    card = stub.messages[0]["id"]
    buttons = [[{"label": "到场", "action": "t:1:arr"}, {"label": "已解决", "action": "t:1:res"}]]
    await stub.push("liujianguo", "#1 一级·已接单", buttons, replaces=card)
    await browser.wait_text(0, "#1 一级·已接单", direction="out")
    shown = await browser.execute(
        "return Array.from(document.querySelectorAll('[data-pane=\"0\"] [data-role=message]'))"
        ".map((m) => [m.dataset.id, m.querySelector('[data-role=text]').textContent,"
        " Array.from(m.querySelectorAll('[data-role=button]')).map((b) => b.textContent)])"
    )
    assert shown == [[str(card), "#1 一级·已接单", ["到场", "已解决"]], ["2", "新报修 #2", []]]
    await browser.press(0, "到场")
    await eventually(lambda: bool(stub.sends), "the press was not sent")
    assert stub.sends[-1]["line"] == card  # the changed bubble keeps its own id


async def test_quick_buttons_send_the_common_commands(browser: Browser, stub: StubChat) -> None:
    await open_with(browser, stub, "王晓丽")
    for label, text in [("报修", "报修"), ("我的工单", "/my"), ("帮助", "/help"), ("取消", "/cancel")]:
        await browser.press(0, label)
        await browser.wait_text(0, f"收到 Got: {text}")
    assert [s["text"] for s in stub.sends] == ["报修", "/my", "/help", "/cancel"]


async def test_messages_arrive_live_through_the_long_poll(browser: Browser, stub: StubChat) -> None:
    await open_with(browser, stub, "王晓丽", "刘建国")
    await eventually(lambda: bool(stub.waiting.get("liujianguo")), "pane 1 is not long-polling")
    await stub.push(
        "liujianguo", "新工单 #12 一级 计算机网络\n全院断网", [[{"label": "接单", "action": "t:12:ack"}]]
    )
    started = time.monotonic()
    text = await browser.wait_text(1, "新工单 #12", timeout=2)
    assert time.monotonic() - started < 2
    assert text == "新工单 #12 一级 计算机网络\n全院断网"
    assert "新工单 #12 一级 计算机网络\n全院断网" in await browser.pane_text(1)  # line breaks kept
    assert await browser.messages(0) == []
    await browser.press(1, "接单")
    await browser.wait_text(1, "pressed t:12:ack")


async def test_polling_recovers_from_errors_and_never_repeats_a_message(
    browser: Browser, stub: StubChat
) -> None:
    stub.failing_polls = 2
    await open_with(browser, stub, "赵可")
    await stub.push("zhaoke", "第一条")
    await browser.wait_text(0, "第一条", timeout=8)
    stub.sloppy = True  # from now on every answer repeats everything, newest first
    await stub.push("zhaoke", "第二条")
    await stub.push("zhaoke", "第三条")
    await browser.wait_text(0, "第三条")
    await stub.push("zhaoke", "第四条")
    await browser.wait_text(0, "第四条")
    await asyncio.sleep(0.5)
    assert await browser.messages(0) == ["第一条", "第二条", "第三条", "第四条"]


async def test_long_text_wraps_and_the_page_stays_usable(browser: Browser, stub: StubChat) -> None:
    await open_with(browser, stub, "王晓丽", "刘建国", "赵可")
    long_text = ("机房空调告警，温度持续升高。" * 200)[:2500] + "A" * 2500
    assert len(long_text) == 5000
    await browser.type(0, long_text)
    assert await browser.wait_text(0, "A" * 100, direction="in", timeout=20) == long_text
    await browser.wait_text(0, "收到 Got: 机房空调", direction="out")
    layout = await browser.execute(
        "const pane = document.querySelector('[data-pane=\"0\"]');"
        "const list = pane.querySelector('[data-role=messages]');"
        "const right = pane.getBoundingClientRect().right;"
        "return {overflow: list.scrollWidth - list.clientWidth, right,"
        " bubbles: Array.from(list.querySelectorAll('[data-role=text]'))"
        "   .map((b) => b.getBoundingClientRect().right),"
        " bottom: list.scrollHeight - list.scrollTop - list.clientHeight,"
        " page: document.documentElement.scrollWidth - window.innerWidth}"
    )
    assert layout["overflow"] <= 0 and layout["page"] <= 0, layout
    assert all(edge <= layout["right"] for edge in layout["bubbles"]), layout
    assert layout["bottom"] < 2, layout  # scrolled to the newest message
    await browser.type(0, "还能继续 still usable")
    await browser.wait_text(0, "收到 Got: 还能继续 still usable")
    await browser.press(0, "接单")
    await browser.wait_text(0, "pressed t:2:ack")


async def test_html_in_messages_is_shown_as_text(browser: Browser, stub: StubChat) -> None:
    evil = "<b>x</b><img src=x onerror=alert(1)>"
    await open_with(browser, stub, "王晓丽")
    await browser.type(0, evil)
    assert await browser.wait_text(0, evil, direction="in") == evil
    await browser.wait_text(0, f"收到 Got: {evil}", direction="out")
    await stub.push("wangxiaoli", "按钮 button", [[{"label": "<i>y</i>", "action": "<script>z</script>"}]])
    await browser.press(0, "<i>y</i>")
    await browser.wait_text(0, "pressed <script>z</script>")
    assert evil in await browser.pane_text(0)
    elements = await browser.execute(
        "return document.querySelectorAll("
        "'[data-pane=\"0\"] [data-role=messages] :is(b, img, i, script)').length"
    )
    assert elements == 0
    await asyncio.sleep(0.3)
    assert await browser.alert_text() is None


async def test_a_refused_send_is_shown_in_red_and_the_text_kept(browser: Browser, stub: StubChat) -> None:
    await open_with(browser, stub, "王晓丽")
    await browser.type(0, "!不该发送")
    await eventually_async(lambda: browser.error(0), "不能发送 refused: <b>坏</b>")
    state = await browser.execute(
        "const pane = document.querySelector('[data-pane=\"0\"]');"
        "return [getComputedStyle(pane.querySelector('[data-role=error]')).color,"
        " pane.querySelector('[data-role=input]').value]"
    )
    assert state == ["rgb(211, 47, 47)", "!不该发送"]
    assert stub.sends == []
    await browser.type(0, "好的")
    await browser.wait_text(0, "收到 Got: 好的")
    assert await browser.error(0) == ""


async def test_the_qr_deep_link_sends_start_from_the_first_pane_once(
    browser: Browser, stub: StubChat
) -> None:
    await browser.open(stub.url("/chat?start=asset_PC0012"))
    await browser.pick(1, "刘建国")
    await asyncio.sleep(0.5)
    assert stub.sends == []  # only the first pane scans the code
    await browser.pick(0, "王晓丽")
    await browser.wait_text(0, "/start asset_PC0012", direction="in")
    assert [(s["user"], s["text"]) for s in stub.sends] == [("wangxiaoli", "/start asset_PC0012")]
    url = await browser.url()
    assert "start=" not in url and url.endswith("/chat#wangxiaoli,liujianguo")
    await browser.reload()
    await browser.wait_text(0, "收到 Got: /start asset_PC0012")
    await asyncio.sleep(0.5)
    assert len(stub.sends) == 1  # a reload does not scan again


async def test_screenshot_of_three_phone_panes(browser: Browser, stub: StubChat) -> None:
    await open_with(browser, stub, "王晓丽", "刘建国", "赵可")
    await browser.type(0, "三楼第二法庭的打印机卡纸\n打印不出判决书")
    await browser.wait_text(0, "收到 Got")
    await stub.push(
        "liujianguo",
        "新工单 #12 · 三级 一般故障\n子系统: 办公自动化\n报修人: 王晓丽\n响应期限 10:00",
        [[{"label": "接单", "action": "t:12:ack"}, {"label": "转派", "action": "t:12:pass"}]],
    )
    await browser.press(1, "接单")
    await browser.wait_text(1, "pressed t:12:ack")
    await stub.push("zhaoke", "本周巡检报告已生成 <b>请审阅</b>\n" + "计算机网络运行正常。" * 12)
    await browser.wait_text(2, "巡检报告")
    await browser.screenshot(SCREENSHOT)
    assert (await asyncio.to_thread(SCREENSHOT.stat)).st_size > 10_000
