"""The fake Telegram Bot API answers the real python-telegram-bot library as Telegram does."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.fakes.telegram_api import BOT_USERNAME, DEFAULT_TOKEN, FakeBotApi
from tests.fakes.telegram_objects import Sent

USER = 4242


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """An inline keyboard of callback buttons."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    """A running fake with one known user."""
    async with FakeBotApi(DEFAULT_TOKEN) as fake:
        fake.user(USER, "Li Lei")
        yield fake


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    """A real PTB bot, initialised (getMe) against the fake."""
    async with Bot(DEFAULT_TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
        yield bot


async def test_get_me_and_wrong_token(api: FakeBotApi, bot: Bot) -> None:
    """getMe answers the test bot; a wrong token is refused with 401 Unauthorized."""
    me = await bot.get_me()
    assert (me.is_bot, me.username, me.id, me.can_join_groups) == (True, BOT_USERNAME, 123456789, True)
    assert bot.username == BOT_USERNAME  # initialize() called getMe
    assert [call.method for call in api.calls] == ["getMe", "getMe"]

    stranger = Bot("123456789:WRONG", base_url=api.base_url)
    try:
        with pytest.raises(InvalidToken, match="was rejected by the server"):
            await stranger.initialize()
    finally:
        await stranger.request.shutdown()  # Bot.shutdown() skips a bot that never initialised
    assert (api.calls[-1].status, api.calls[-1].description) == (401, "Unauthorized")


async def test_unknown_method_and_raw_requests(api: FakeBotApi) -> None:
    """Method names are case-insensitive; JSON and query-string requests work as form ones do."""
    async with aiohttp.ClientSession() as http:
        url = f"{api.base_url}{DEFAULT_TOKEN}"
        async with http.post(f"{url}/frobnicate") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.post(f"{url}/SENDMESSAGE", json={"chat_id": USER, "text": "json"}) as response:
            assert (await response.json())["result"]["text"] == "json"
        async with http.get(f"{url}/sendMessage", params={"chat_id": str(USER), "text": "query"}) as response:
            assert (await response.json())["result"]["message_id"] == 2
    assert [(s.method, s.text) for s in api.sent] == [("sendMessage", "json"), ("sendMessage", "query")]


async def test_send_message_with_inline_keyboard(api: FakeBotApi, bot: Bot) -> None:
    """sendMessage returns a full Message and records the text and the buttons."""
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("接单", callback_data="t:1:accept"),
                InlineKeyboardButton("转派", callback_data="t:1:pass"),
            ],
            [InlineKeyboardButton("Manual", url="https://example.com/manual")],
        ]
    )
    first = await bot.send_message(USER, "工单 #1：机房空调告警", reply_markup=markup)
    second = await bot.send_message(USER, "second")

    assert (first.message_id, second.message_id) == (1, 2)
    assert first.chat.id == USER and first.chat.type == "private" and first.chat.first_name == "Li Lei"
    assert first.from_user is not None and first.from_user.username == BOT_USERNAME
    assert first.reply_markup == markup
    assert api.sent[0] == Sent(
        "sendMessage",
        USER,
        1,
        "工单 #1：机房空调告警",
        [[("接单", "t:1:accept"), ("转派", "t:1:pass")], [("Manual", None)]],
    )
    assert [m.text for m in api.messages_to(USER)] == ["工单 #1：机房空调告警", "second"]
    # PTB form-encodes the markup as a JSON string; calls show it decoded.
    assert api.calls_to("sendMessage")[0].params["reply_markup"]["inline_keyboard"][1] == [
        {"text": "Manual", "url": "https://example.com/manual"}
    ]


async def test_concurrent_sends_get_distinct_ids(api: FakeBotApi, bot: Bot) -> None:
    """Concurrent sends to two chats: message ids increase per chat, none lost or doubled."""
    api.user(5151, "Han Meimei")
    sent = await asyncio.gather(
        *(bot.send_message(chat, f"n{n}") for n in range(40) for chat in (USER, 5151))
    )
    for chat in (USER, 5151):
        ids = sorted(m.message_id for m in sent if m.chat.id == chat)
        assert ids == list(range(1, 41))
        assert [m.message_id for m in api.messages_to(chat)] == ids
    assert len(api.sent) == 80
    with pytest.raises(TimeoutError):
        await api.wait_until(lambda: len(api.sent) > 80, within=0.2)


async def test_text_length_and_empty_text(api: FakeBotApi, bot: Bot) -> None:
    """4096 characters pass, 4097 do not; a blank text is empty."""
    assert (await bot.send_message(USER, "长" * 4096)).text == "长" * 4096
    with pytest.raises(BadRequest, match=r"^Message is too long$"):
        await bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match=r"^Message text is empty$"):
        await bot.send_message(USER, "   ")
    assert len(api.sent) == 1
    assert [call.status for call in api.calls_to("sendMessage")] == [200, 400, 400]


async def test_formatting_errors_are_refused(bot: Bot) -> None:
    """The mistakes Telegram refuses: an unknown HTML tag, an unescaped MarkdownV2 character."""
    assert (await bot.send_message(USER, "<b>P1</b> &lt;机房&gt;", parse_mode="HTML")).message_id == 1
    with pytest.raises(BadRequest, match='unsupported start tag "br" at byte offset 1'):
        await bot.send_message(USER, "a<br>b", parse_mode="HTML")
    with pytest.raises(BadRequest, match="character '\\.' is reserved"):
        await bot.send_message(USER, "*Ticket* 1.2", parse_mode="MarkdownV2")
    assert (await bot.send_message(USER, r"*Ticket* 1\.2", parse_mode="MarkdownV2")).message_id == 2


async def test_callback_data_is_limited_to_64_bytes(api: FakeBotApi, bot: Bot) -> None:
    """The limit is in UTF-8 bytes: 32 "é" fit, 33 (33 characters, 66 bytes) do not."""
    await bot.send_message(USER, "ok", reply_markup=keyboard([("a", "é" * 32)]))
    with pytest.raises(BadRequest, match=r"^Button_data_invalid$"):
        await bot.send_message(USER, "too long", reply_markup=keyboard([("a", "é" * 33)]))
    assert api.calls[-1].description == "Bad Request: BUTTON_DATA_INVALID"
    assert [m.text for m in api.messages_to(USER)] == ["ok"]


def grid(buttons: int, per_row: int = 10) -> InlineKeyboardMarkup:
    """An inline keyboard of ``buttons`` callback buttons, ``per_row`` to a row."""
    labels = [(f"b{n}", f"d{n}") for n in range(buttons)]
    return keyboard(*(labels[start : start + per_row] for start in range(0, buttons, per_row)))


async def test_inline_keyboard_of_at_most_100_buttons(api: FakeBotApi, bot: Bot) -> None:
    """100 buttons in all pass, in rows of any length; 101 are refused wherever reply_markup is
    taken, and the refused call sends or changes nothing."""
    sent = await bot.send_message(USER, "100", reply_markup=grid(100))
    await bot.send_message(USER, "one row", reply_markup=grid(100, per_row=100))
    assert [[len(row) for row in m.buttons] for m in api.messages_to(USER)] == [[10] * 10, [100]]
    recorded = list(api.sent)

    too_many = grid(101)
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: bot.send_message(USER, "101", reply_markup=too_many),
        lambda: bot.send_message(USER, "101 in a row", reply_markup=grid(101, per_row=101)),
        lambda: bot.edit_message_text("x", chat_id=USER, message_id=sent.message_id, reply_markup=too_many),
        lambda: bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=too_many),
        lambda: bot.send_photo(USER, photo=b"jpeg bytes", reply_markup=too_many),
        lambda: bot.send_document(USER, document=b"%PDF", filename="a.pdf", reply_markup=too_many),
    ]
    for attempt in attempts:
        with pytest.raises(BadRequest, match=r"^Reply markup is too long$"):
            await attempt()
        assert (api.calls[-1].status, api.calls[-1].description) == (
            400,
            "Bad Request: reply markup is too long",
        )
    assert api.sent == recorded
    assert [(m.text, m.edited, len(m.buttons)) for m in api.messages_to(USER)] == [
        ("100", 0, 10),
        ("one row", 0, 1),
    ]


async def test_unknown_chat(api: FakeBotApi, bot: Bot) -> None:
    """Chats are known once created with user() or once they sent an update."""
    with pytest.raises(BadRequest, match=r"^Chat not found$"):
        await bot.send_message(777, "hello")
    api.message(777, "hi")  # a user who writes to the bot becomes a known chat
    assert (await bot.send_message(777, "hello")).chat.first_name == "User 777"


async def test_edit_message_text_in_place(api: FakeBotApi, bot: Bot) -> None:
    """Edits change the stored message in place; identical edits and unknown ids are refused."""
    sent = await bot.send_message(USER, "工单 #1：待接单", reply_markup=keyboard([("接单", "t:1:accept")]))
    edited = await bot.edit_message_text(
        "工单 #1：已接单",
        chat_id=USER,
        message_id=sent.message_id,
        reply_markup=keyboard([("完成", "t:1:done")]),
    )
    assert isinstance(edited, type(sent)) and edited.edit_date is not None
    [message] = api.messages_to(USER)
    assert (message.text, message.edited, message.buttons) == ("工单 #1：已接单", 1, [[("完成", "t:1:done")]])
    assert [s.method for s in api.sent] == ["sendMessage", "editMessageText"]

    with pytest.raises(BadRequest, match=r"^Message is not modified: specified new message content"):
        await bot.edit_message_text(
            "工单 #1：已接单",
            chat_id=USER,
            message_id=sent.message_id,
            reply_markup=keyboard([("完成", "t:1:done")]),
        )
    with pytest.raises(BadRequest, match=r"^Message to edit not found$"):
        await bot.edit_message_text("x", chat_id=USER, message_id=99)

    # As in Telegram, an edit without reply_markup removes the keyboard...
    await bot.edit_message_text("工单 #1：已接单", chat_id=USER, message_id=sent.message_id)
    assert api.messages_to(USER)[0].buttons == []
    # ...and editMessageReplyMarkup puts one back.
    await bot.edit_message_reply_markup(
        USER, sent.message_id, reply_markup=keyboard([("重开", "t:1:reopen")])
    )
    assert (api.messages_to(USER)[0].edited, api.sent[-1].buttons) == (3, [[("重开", "t:1:reopen")]])

    assert await bot.delete_message(USER, sent.message_id)
    assert api.messages_to(USER) == []
    with pytest.raises(BadRequest, match=r"^Message to delete not found$"):
        await bot.delete_message(USER, sent.message_id)


async def test_answer_callback_query_once(api: FakeBotApi, bot: Bot) -> None:
    """A button press is a query the bot may answer once."""
    sent = await bot.send_message(USER, "工单 #1", reply_markup=keyboard([("接单", "t:1:accept")]))
    update = api.press(USER, sent.message_id, "t:1:accept")
    query = update["callback_query"]
    assert query["message"]["message_id"] == sent.message_id and query["from"]["id"] == USER

    [received] = await bot.get_updates()
    assert received.callback_query is not None and received.callback_query.data == "t:1:accept"
    assert await received.callback_query.answer("已接单")
    with pytest.raises(
        BadRequest, match=r"^Query is too old and response timeout expired or query id is invalid$"
    ):
        await bot.answer_callback_query(query["id"])
    with pytest.raises(BadRequest, match=r"^Query is too old"):
        await bot.answer_callback_query("123")
    assert [(a.query_id, a.text, a.show_alert) for a in api.answered_callbacks] == [
        (query["id"], "已接单", False)
    ]

    with pytest.raises(LookupError):
        api.press(USER, sent.message_id, "t:1:other")  # no such button on the message
    with pytest.raises(LookupError):
        api.press(USER, 99, "t:1:accept")


async def test_get_updates_long_poll_returns_as_an_update_arrives(api: FakeBotApi, bot: Bot) -> None:
    """A waiting getUpdates answers as soon as an update is queued; offset confirms it."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_until(lambda: api.waiting_polls == 1)
    assert not poll.done()
    api.message(USER, "/start@dutydesk_test_bot 你好")
    [update] = await asyncio.wait_for(poll, 3)
    assert loop.time() - started < 3
    assert update.message is not None and update.message.text == "/start@dutydesk_test_bot 你好"
    entity = update.message.entities[0]
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 24)
    assert update.message.from_user is not None and update.message.from_user.language_code == "zh-hans"

    # Until confirmed by a higher offset, the update is served again.
    assert [u.update_id for u in await bot.get_updates()] == [update.update_id]
    assert await bot.get_updates(offset=update.update_id + 1) == ()
    assert api.updates == []


async def test_get_updates_times_out_empty(bot: Bot) -> None:
    """With nothing queued, a long poll answers [] after its timeout."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= loop.time() - started < 3


async def test_a_second_poller_terminates_the_first(api: FakeBotApi, bot: Bot) -> None:
    """Two instances of one bot polling: the earlier long poll gets 409, as from Telegram."""
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_until(lambda: api.waiting_polls == 1)
    async with Bot(DEFAULT_TOKEN, base_url=api.base_url) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 3)


async def test_set_my_commands_per_language(api: FakeBotApi, bot: Bot) -> None:
    """Commands are kept per language code and validated as Telegram does."""
    assert await bot.set_my_commands(
        [BotCommand("start", "开始"), BotCommand("report", "报修")], language_code="zh"
    )
    assert await bot.set_my_commands(
        [BotCommand("start", "Start"), BotCommand("report", "Report a fault")], language_code="en"
    )
    assert api.commands == {
        "zh": [("start", "开始"), ("report", "报修")],
        "en": [("start", "Start"), ("report", "Report a fault")],
    }
    assert [c.command for c in await bot.get_my_commands(language_code="en")] == ["start", "report"]
    assert await bot.get_my_commands() == ()  # no fallback to a language's list

    with pytest.raises(BadRequest, match=r"^Invalid language code specified$"):
        await bot.set_my_commands([BotCommand("start", "开始")], language_code="zh-hans")
    with pytest.raises(BadRequest, match=r"^Bot_command_invalid$"):
        await bot.set_my_commands([BotCommand("Report-Fault", "x")])


async def test_injected_429_raises_retry_after(
    api: FakeBotApi, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fail_next: the next call fails with Telegram's error shapes and is not carried out."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    api.fail_next("sendMessage", 429, retry_after=3)
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(USER, "first try")
    assert raised.value.retry_after == dtm.timedelta(seconds=3)
    assert (await bot.send_message(USER, "second try")).message_id == 1  # the failed call sent nothing
    assert [(c.status, c.description) for c in api.calls_to("sendMessage")] == [
        (429, "Too Many Requests: retry after 3"),
        (200, None),
    ]

    api.fail_next("sendMessage", 500)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(USER, "x")
    api.fail_next("*", 403)
    with pytest.raises(Forbidden, match="Forbidden: bot was blocked by the user"):
        await bot.send_message(USER, "x")


async def test_delay_then_answer(api: FakeBotApi, bot: Bot) -> None:
    """delay_next: the call happens, the answer comes late (the client times out)."""
    api.delay_next("sendMessage", 2)
    with pytest.raises(NetworkError, match="Timed out"):
        await bot.send_message(USER, "slow", read_timeout=0.3)
    assert [m.text for m in api.messages_to(USER)] == ["slow"]


async def test_rate_limit(api: FakeBotApi, bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the calls allowed per second the fake answers 429 and counts it."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    api.rate_limit(per_second=3)
    for n in range(3):
        await bot.send_message(USER, f"m{n}")
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(USER, "m3")
    assert raised.value.retry_after == dtm.timedelta(seconds=1)
    assert api.rate_limited == 1
    api.rate_limit(None)
    await bot.send_message(USER, "m3")
    assert len(api.sent) == 4


async def test_get_file_and_download(api: FakeBotApi, bot: Bot) -> None:
    """A registered file: getFile gives its path, the file URL gives its bytes."""
    content = b"\x89PNG\r\n\x1a\n fault photo"
    path = api.add_file("photo-1", content)
    api.message(USER, photo_file_id="photo-1", caption="漏水")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.caption == "漏水"
    photo = update.message.photo[-1]
    file = await photo.get_file()
    assert file.file_path == f"{api.base_file_url}{DEFAULT_TOKEN}/{path}" and file.file_size == len(content)
    assert await file.download_as_bytearray() == bytearray(content)
    with pytest.raises(BadRequest, match=r"^Invalid file_id$"):
        await bot.get_file("nope")


async def test_send_photo_upload(api: FakeBotApi, bot: Bot) -> None:
    """A multipart upload is stored; its file_id can be fetched and sent again."""
    sent = await bot.send_photo(
        USER, photo=b"jpeg bytes", caption="现场照片", reply_markup=keyboard([("ok", "ok")])
    )
    file_id = sent.photo[-1].file_id
    assert await (await bot.get_file(file_id)).download_as_bytearray() == bytearray(b"jpeg bytes")
    again = await bot.send_photo(USER, photo=file_id)
    assert again.photo[-1].file_id == file_id
    assert [(s.method, s.text, s.file_id) for s in api.sent] == [
        ("sendPhoto", "现场照片", file_id),
        ("sendPhoto", None, file_id),
    ]
    with pytest.raises(BadRequest, match=r"^Wrong file identifier/http url specified$"):
        await bot.send_photo(USER, photo="unknown-file-id")


class Receiver:
    """A tiny webhook endpoint: records what Telegram posts and answers with given statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[str | None, str, dict[str, object]]] = []
        self.app = web.Application()
        self.app.router.add_post("/hook", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        """Record one delivery."""
        body = await request.json()
        self.received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), request.content_type, body)
        )
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A running Receiver and its URL."""
    hook = Receiver([500])
    runner = web.AppRunner(hook.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield hook, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


async def test_webhook_delivery_and_redelivery(
    api: FakeBotApi, bot: Bot, receiver: tuple[Receiver, str]
) -> None:
    """deliver() posts as Telegram does and keeps an update the webhook did not take."""
    hook, url = receiver
    assert await bot.set_webhook(
        url, secret_token="s3cret-Token_1", allowed_updates=["message", "callback_query"]
    )
    assert api.webhook is not None and api.webhook.secret_token == "s3cret-Token_1"
    update = api.message(USER, "报修：3 楼打印机卡纸")

    assert await api.deliver() == [500]  # the bot failed: Telegram keeps the update
    assert api.updates == [update]
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == (url, 1)
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"

    assert await api.deliver() == [200]
    assert api.updates == []
    assert hook.received == [("s3cret-Token_1", "application/json", update)] * 2
    assert (await bot.get_webhook_info()).pending_update_count == 0

    forged = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}}
    assert await api.post_update(forged, secret=None) == 200
    assert hook.received[-1] == (None, "application/json", forged)


async def test_get_updates_conflicts_with_a_webhook(api: FakeBotApi, bot: Bot) -> None:
    """While a webhook is set getUpdates is a 409 Conflict; deleteWebhook ends it."""
    assert await bot.set_webhook("https://bot.example.com/hook")
    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == ()
    assert api.webhook is None
    with pytest.raises(BadRequest, match=r"^Secret token contains unallowed characters$"):
        await bot.set_webhook("https://bot.example.com/hook", secret_token="a+b/c=")


async def test_application_polling_echo(api: FakeBotApi) -> None:
    """A PTB Application polls the fake, echoes a text and stops cleanly."""

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_message.text is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    app = (
        ApplicationBuilder()
        .token(DEFAULT_TOKEN)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        api.message(USER, "空调漏水")
        await api.wait_until(lambda: len(api.messages_to(USER)) == 1)
        assert api.messages_to(USER)[0].text == "echo: 空调漏水"
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert api.updates == []  # the updater confirmed what it handled
    assert "deleteWebhook" in [call.method for call in api.calls]


async def test_stop_answers_a_pending_long_poll() -> None:
    """stop() does not wait for a long poll to time out."""
    api = FakeBotApi()
    await api.start()
    async with Bot(DEFAULT_TOKEN, base_url=api.base_url) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await api.wait_until(lambda: api.waiting_polls == 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await api.stop()
        assert loop.time() - started < 2
        assert await asyncio.wait_for(poll, 2) == ()
