"""Odd input on every channel: update kinds nobody handles, bodies nested too deep, characters
no database should be asked to store, and a fuzzer of Telegram updates.

Whatever comes in is answered 2xx (or 4xx when it cannot be an update at all), stored once and
marked handled; nothing leaves a traceback in the log or a row for every restart to retry.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlmodel import col, func, select

from handlers.clock import ManualClock
from storage.engine import transaction
from storage.models import InboxUpdate, WebchatMessage
from tests.conftest import Database
from tests.fakes.telegram_api import FakeBotApi
from tests.scenarios.conftest import seed_cast
from tests.scenarios.stage import (
    SECRET,
    TOKEN,
    Actor,
    Stage,
    TelegramDriver,
    WebchatDriver,
    free_port,
    settings_for,
)
from tests.scenarios.test_reports import tickets
from tests.scenarios.test_telegram_channel import HOOK, Bench, start_bench
from tests.scenarios.wecom_stage import WecomDriver

JsonDict = dict[str, Any]
STRANGER = 20_999  # a Telegram account nobody registered
GROUP = -1_001_234_567_890  # a supergroup the bot was added to
CHANNEL = -1_009_876_543_210  # a channel the bot posts in


@pytest.fixture
async def bench(db: Database, clock: ManualClock) -> AsyncIterator[Bench]:
    """The Telegram service of test_telegram_channel (webhook mode, the fake Bot API, the cast)."""
    cast = await seed_cast(db, clock)
    port = free_port()
    async with FakeBotApi(TOKEN) as api:
        for actor in cast.values():
            api.user(actor.telegram_id, actor.name)
        service = await start_bench(db, clock, settings_for("telegram", port, api))
        try:
            yield Bench(api, service, port, cast)
        finally:
            await service.stop()


def troubles(caplog: pytest.LogCaptureFixture, collect: bool = True) -> list[logging.LogRecord]:
    """Log records that mean something broke: ERROR or worse, or any with a traceback."""
    if collect:  # a task nobody awaited reports "Task exception was never retrieved" when collected
        gc.collect()
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def inbox_rows(bench: Bench) -> list[InboxUpdate]:
    """Every stored update, oldest first."""
    async with transaction(bench.service.runtime.sessions) as session:
        return list((await session.exec(select(InboxUpdate).order_by(col(InboxUpdate.id)))).all())


def person(user_id: int, name: str = "路人") -> JsonDict:
    """A Telegram User object."""
    return {"id": user_id, "is_bot": False, "first_name": name, "language_code": "zh-hans"}


def private(user_id: int, name: str = "路人") -> JsonDict:
    """The private chat with a user."""
    return {"id": user_id, "type": "private", "first_name": name}


def group() -> JsonDict:
    """A supergroup."""
    return {"id": GROUP, "type": "supergroup", "title": "机房群"}


def message(chat: JsonDict, sender: JsonDict | None, text: str = "报修", message_id: int = 1) -> JsonDict:
    """A Message object (no ``from`` when ``sender`` is None)."""
    found: JsonDict = {"message_id": message_id, "date": int(time.time()), "chat": chat, "text": text}
    if sender is not None:
        found["from"] = sender
    return found


def member_change(bench: Bench, chat: JsonDict, who: JsonDict, member: JsonDict) -> JsonDict:
    """A ChatMemberUpdated: ``who`` changed ``member`` from member to kicked."""
    return {
        "chat": chat,
        "from": who,
        "date": int(time.time()),
        "old_chat_member": {"status": "member", "user": member},
        "new_chat_member": {"status": "kicked", "user": member, "until_date": 0},
    }


def bot_user(bench: Bench) -> JsonDict:
    """The bot's own User object."""
    return {k: bench.api.bot[k] for k in ("id", "is_bot", "first_name", "username")}


def known(bench: Bench) -> JsonDict:
    """The User object of reporter r1."""
    return person(bench.cast["r1"].telegram_id, bench.cast["r1"].name)


channel_chat: JsonDict = {"id": CHANNEL, "type": "channel", "title": "通知频道"}
POLL: JsonDict = {
    "id": "5012345678901234567",
    "question": "周五值班？",
    "options": [{"text": "可以", "voter_count": 1}, {"text": "不行", "voter_count": 0}],
    "total_voter_count": 1,
    "is_closed": False,
    "is_anonymous": True,
    "type": "regular",
    "allows_multiple_answers": False,
}

#: name → the update's body (without update_id), and whether the bot should answer it.
ODD: dict[str, tuple[Callable[[Bench], JsonDict], bool]] = {
    "edited_message": (
        lambda b: {
            "edited_message": {
                **message(private(b.cast["r1"].telegram_id), known(b), "报修!"),
                "edit_date": int(time.time()),
            }
        },
        False,
    ),
    "channel_post": (
        lambda b: {"channel_post": {**message(channel_chat, None, "通知"), "sender_chat": channel_chat}},
        False,
    ),
    "edited_channel_post": (
        lambda b: {
            "edited_channel_post": {
                **message(channel_chat, None, "通知!"),
                "sender_chat": channel_chat,
                "edit_date": int(time.time()),
            }
        },
        False,
    ),
    "poll": (lambda b: {"poll": POLL}, False),
    "poll_answer": (
        lambda b: {"poll_answer": {"poll_id": POLL["id"], "user": known(b), "option_ids": [0]}},
        False,
    ),
    "my_chat_member of a stranger": (
        lambda b: {"my_chat_member": member_change(b, private(STRANGER), person(STRANGER), bot_user(b))},
        False,
    ),
    "my_chat_member of a known person": (
        lambda b: {
            "my_chat_member": member_change(b, private(b.cast["r1"].telegram_id), known(b), bot_user(b))
        },
        False,
    ),
    "chat_member": (
        lambda b: {"chat_member": member_change(b, group(), known(b), person(STRANGER))},
        False,
    ),
    "chat_join_request": (
        lambda b: {
            "chat_join_request": {
                "chat": group(),
                "from": person(STRANGER),
                "user_chat_id": STRANGER,
                "date": int(time.time()),
            }
        },
        False,
    ),
    "message_reaction": (
        lambda b: {
            "message_reaction": {
                "chat": private(b.cast["r1"].telegram_id),
                "message_id": 1,
                "user": known(b),
                "date": int(time.time()),
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            }
        },
        False,
    ),
    "only an update_id": (lambda b: {}, False),
    "a message without from": (lambda b: {"message": message(private(STRANGER), None)}, False),
    "a stranger in a group": (lambda b: {"message": message(group(), person(STRANGER))}, False),
    "a stranger in private": (lambda b: {"message": message(private(STRANGER), person(STRANGER))}, True),
}


@pytest.mark.parametrize("kind", list(ODD))
async def test_an_update_of_a_kind_nobody_handles_is_stored_handled_and_answered_200(
    bench: Bench, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.WARNING)
    build, answered = ODD[kind]
    update = {"update_id": 900_001, **build(bench)}
    assert await bench.post(update) == 200
    await bench.service.idle()
    assert await bench.post(update) == 200  # Telegram's redelivery changes nothing
    await bench.service.idle()
    (row,) = await inbox_rows(bench)
    assert (row.key, row.processed_at is not None) == ("900001", True), row
    sent = bench.api.calls_to("sendMessage")
    if answered:
        (call,) = sent
        assert call.params["chat_id"] == STRANGER and "/join CODE" in str(call.params["text"])
    else:
        assert sent == [], [c.params for c in sent]
    assert troubles(caplog) == []


def deep(levels: int, brackets: tuple[str, str]) -> bytes:
    """An update whose one field nests ``levels`` deep."""
    opening, closing = brackets
    return b'{"update_id": 900002, "x": ' + (opening * levels).encode() + (closing * levels).encode() + b"}"


DEEP = {
    "100,000 lists": deep(100_000, ("[", "]")),
    "100,000 objects": b'{"update_id": 900002, "x": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    "40 objects": b'{"update_id": 900002, "x": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
    "40 lists": deep(40, ("[", "]")),
    "a bare list of 100,000": b"[" * 100_000 + b"]" * 100_000,
}


async def healthy(port: int) -> int:
    """The status of /healthz."""
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        return response.status


@pytest.mark.parametrize("body", list(DEEP))
async def test_a_deeply_nested_update_is_refused(
    bench: Bench, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    caplog.set_level(logging.WARNING)
    assert await bench.post(DEEP[body]) == 400
    await bench.service.idle()
    assert await bench.stored() == 0
    assert await healthy(bench.port) == 200
    assert troubles(caplog) == []


@pytest.mark.parametrize("body", list(DEEP))
async def test_a_deeply_nested_web_chat_message_is_refused(
    webchat: Stage, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    caplog.set_level(logging.WARNING)
    web = webchat.driver
    assert isinstance(web, WebchatDriver)
    nested = DEEP[body].replace(b'"update_id": 900002', b'"user": "r1", "text": "/help"')
    async with web.http.post(f"{web.base}/chat/api/send", data=nested) as response:
        assert response.status == 400
    await webchat.service.idle()
    assert await count(webchat, InboxUpdate) == 0 and await count(webchat, WebchatMessage) == 0
    assert await healthy(int(web.base.rsplit(":", 1)[1])) == 200
    assert troubles(caplog) == []


async def count(stage: Stage, model: type[InboxUpdate] | type[WebchatMessage]) -> int:
    """How many rows a table holds."""
    async with transaction(stage.service.runtime.sessions) as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


#: name → what is typed, what the ticket's description must be.
UNFIT = {
    "NUL": ("全院\x00断网了", "全院断网了"),
    "a lone surrogate": ("全院\ud800断网了\udfff", "全院断网了"),
    "C0 controls and DEL": (
        "全院\x01\x07\x08\x0b\x0c\x1b\x1f\x7f断网了\t核心交换机\n红灯",
        "全院断网了\t核心交换机\n红灯",
    ),
}


async def type_raw(stage: Stage, who: Actor, typed: str) -> None:
    """Send ``typed`` as the platform would carry it: a JSON escape for what JSON escapes
    (Telegram, the web chat), the character itself in the XML WeCom encrypts."""
    d = stage.driver
    if isinstance(d, TelegramDriver):
        update = d.api.message(who.telegram_id, "placeholder")
        update["message"]["text"] = typed  # the fake computes entities in UTF-16: no lone surrogates
        assert await d.api.deliver() == [200]
        await stage.service.idle()
    elif isinstance(d, WecomDriver):
        await d.deliver(d.callbacks.text_xml(who.webchat_user, typed, "7100000000000000001"))
    else:
        assert isinstance(d, WebchatDriver)
        assert await d.post({"user": who.webchat_user, "text": typed, "client_id": "unfit-1"}) == 202
        await stage.service.idle()


@pytest.mark.parametrize("unfit", list(UNFIT))
async def test_unfit_characters_in_a_description_are_removed_on_every_channel(
    stage: Stage, caplog: pytest.LogCaptureFixture, unfit: str
) -> None:
    caplog.set_level(logging.WARNING)
    typed, kept = UNFIT[unfit]
    if unfit == "a lone surrogate" and isinstance(stage.driver, WecomDriver):
        pytest.skip("WeCom carries UTF-8 in XML: a lone surrogate has no encoding to arrive in")
    d, r1 = stage.driver, stage["r1"]
    await d.send(r1, "报修")
    await d.press(r1, "计算机网络")
    await d.press(r1, "NET-CORE-01 核心交换机1")
    await type_raw(stage, r1, typed)
    assert (await d.seen(r1))[-1].text == "业务是否已中断、系统瘫痪，或数据丢失？"
    await d.press(r1, "是")
    await d.press(r1, "确认提交")
    (ticket,) = await tickets(stage)
    assert (ticket.description, ticket.level) == (kept, 1)
    assert (await d.seen(r1))[-1].text.startswith("已提交工单 #1（一级）")
    async with transaction(stage.service.runtime.sessions) as session:
        rows = (await session.exec(select(InboxUpdate))).all()
    assert all(row.processed_at is not None and row.error is None for row in rows)
    assert troubles(caplog) == []


# -- what the fuzzer found, one by one --------------------------------------------------------


def _r1_says(b: Bench, **changes: object) -> JsonDict:
    """/help from reporter r1 with ``changes`` made to the message (``from.x`` for its sender)."""
    r1 = b.cast["r1"].telegram_id
    found = message(private(r1, b.cast["r1"].name), known(b), "/help")
    for key, value in changes.items():
        where, _, name = key.rpartition(".")
        (found[where] if where else found)[name] = value
    return {"message": found}


def _a_press(b: Bench, query_id: object) -> JsonDict:
    """r1 pressing a button of a bot message, with the callback query's id ``query_id``."""
    r1 = b.cast["r1"].telegram_id
    bot_said = {**message(private(r1), bot_user(b), "报修：请选择故障所属系统："), "message_id": 1}
    return {
        "callback_query": {
            "id": query_id,
            "from": known(b),
            "message": bot_said,
            "chat_instance": "1",
            "data": "rb:4",
        }
    }


#: name → an update (its update_id left to the test) or a raw body: each shape the fuzzer found
#: making the bot log a traceback, leave its row for every restart, or answer 5xx (on one
#: engine or both), reduced to the one field that does it.
FOUND: dict[str, Callable[[Bench], JsonDict | bytes]] = {
    "text is a list": lambda b: _r1_says(b, text=[["报修"]]),
    "text is an object": lambda b: _r1_says(b, text={"a": "报修"}),
    "caption is a list": lambda b: {
        "message": {
            **message(private(b.cast["r1"].telegram_id), known(b), ""),
            "text": None,
            "caption": ["屏幕"],
            "photo": [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}],
        }
    },
    "a stranger's language_code is a list": lambda b: {
        "message": message(private(STRANGER), {**person(STRANGER), "language_code": ["en"]}, "你好")
    },
    "chat id is a list": lambda b: _r1_says(b, **{"chat.id": [b.cast["r1"].telegram_id]}),
    "chat id is null": lambda b: _r1_says(b, **{"chat.id": None}),
    "chat id of 71 digits": lambda b: _r1_says(b, **{"chat.id": 10**70}),
    "sender id of 71 digits": lambda b: _r1_says(b, **{"from.id": 10**70, "chat.id": 10**70}),
    "callback query id is a list": lambda b: _a_press(b, [["4120000000000000001"]]),
    "callback query id of 300 characters": lambda b: _a_press(b, "9" * 300),
    "update_id of 81 digits": lambda b: {"update_id": 10**80, **_r1_says(b)},
    "NaN": lambda b: b'{"update_id": 900003, "message": {"message_id": 1, "date": NaN}}',
    "Infinity": lambda b: b'{"update_id": 900003, "x": -Infinity}',
}


@pytest.mark.parametrize("shape", list(FOUND))
async def test_an_update_the_fuzzer_found_is_answered_and_handled_without_a_traceback(
    bench: Bench, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    caplog.set_level(logging.WARNING)
    body = FOUND[shape](bench)
    if isinstance(body, dict):
        body = {"update_id": 900_003, **body}
    status = await bench.post(body)
    await bench.service.idle()
    rows = await inbox_rows(bench)
    unprocessed = [(r.key, r.attempts, r.error) for r in rows if r.processed_at is None]
    assert (status, len(rows), unprocessed, [signature(r) for r in troubles(caplog)]) in [
        (200, 1, [], []),
        (400, 0, [], []),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"user": "u" * 64, "text": "/help", "client_id": "c" * 60},  # a key of 125 characters
        {"user": "r1", "text": "/help", "client_id": "nan", "x": float("nan")},
    ],
    ids=["the longest user and client id", "NaN"],
)
async def test_an_odd_web_chat_message_is_not_answered_5xx(
    webchat: Stage, caplog: pytest.LogCaptureFixture, body: JsonDict
) -> None:
    caplog.set_level(logging.WARNING)
    web = webchat.driver
    assert isinstance(web, WebchatDriver)
    status = await web.post(body)
    await webchat.service.idle()
    async with transaction(webchat.service.runtime.sessions) as session:
        rows = (await session.exec(select(InboxUpdate))).all()
    unprocessed = [(r.key, r.attempts, r.error) for r in rows if r.processed_at is None]
    assert (status, len(rows), unprocessed, [signature(r) for r in troubles(caplog)]) in [
        (202, 1, [], []),
        (400, 0, [], []),
    ]


# -- the fuzzer --------------------------------------------------------------------------------

Where = tuple[str | int, ...]  # a place inside a JSON value
FUZZ_EXAMPLES = 500  # on each engine
#: Keys a mutation may add: the ones the bot and python-telegram-bot read.
KEYS = [
    "update_id", "message", "edited_message", "callback_query", "channel_post", "my_chat_member",
    "from", "chat", "date", "text", "caption", "data", "id", "type", "photo", "voice", "document",
    "file_id", "file_size", "entities", "reply_to_message", "language_code", "first_name", "message_id",
]  # fmt: skip
WORDS = ["报修", "/help", "/my", "/start asset_SRV-CASE-01", "/join X", "rb:4", "t:1:ack", "", "private"]
UNFIT_CHARS = "\x00\x01\x1b\x7f\ud800\udfff\ufffe\uffff\u200b\u202e é报修 \t\n"


def odd_scalars() -> st.SearchStrategy[object]:
    """JSON scalars of every type, sizes and alphabets no real update has."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**53, max_value=10**80),  # beyond a double, beyond 64 bits
        st.integers(min_value=-(2**70), max_value=-1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.text(st.characters(codec=None), max_size=20),  # anything Python holds, surrogates too
        st.text(st.sampled_from(UNFIT_CHARS), max_size=12),
        st.builds(lambda c, n: c * n, st.sampled_from(["x", "报", "\x00", "😀"]), st.integers(1_000, 20_000)),
        st.sampled_from(WORDS),
    )


def odd_values() -> st.SearchStrategy[object]:
    """Any JSON value: scalars, small structures of them, and structures nested 2-40 deep
    (past bot.clean.MAX_DEPTH once the place they are put at is counted)."""
    nested: st.SearchStrategy[object] = st.recursive(
        odd_scalars(),
        lambda kids: (
            st.lists(kids, max_size=3)
            | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), kids, max_size=3)
        ),
        max_leaves=6,
    )
    deeply = st.tuples(st.integers(2, 40), st.booleans()).map(lambda t: _nest(*t))
    return st.one_of(nested, nested, nested, deeply)


def _nest(levels: int, as_lists: bool) -> object:
    value: object = "bottom"
    for _ in range(levels):
        value = [value] if as_lists else {"a": value}
    return value


def paths(value: object, prefix: Where = ()) -> list[Where]:
    """Every place inside a JSON value, the value itself excluded."""
    found: list[Where] = []
    children: list[tuple[str | int, object]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    for key, child in children:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


def dicts(value: object, prefix: Where = ()) -> list[Where]:
    """Every object inside a JSON value, the value itself included."""
    found = [prefix] if isinstance(value, dict) else []
    for path in paths(value, prefix):
        if isinstance(_at(value, path[len(prefix) :]), dict):
            found.append(path)
    return found


def _at(value: object, path: Where) -> object:
    for key in path:
        value = value[key]  # type: ignore[index]
    return value


Mutation = tuple[str, Where, str, object]  # what, where, a new key, a new value


def mutations(seed: JsonDict, values: st.SearchStrategy[object]) -> st.SearchStrategy[list[Mutation]]:
    """One to four changes of ``seed``: drop a key, replace a value, add a key."""
    drop = st.tuples(st.just("drop"), st.sampled_from(paths(seed)), st.just(""), st.none())
    replace = st.tuples(st.just("replace"), st.sampled_from(paths(seed)), st.just(""), values)
    add = st.tuples(
        st.just("add"),
        st.sampled_from(dicts(seed)),
        st.sampled_from(KEYS) | st.text(max_size=6),
        values,
    )
    return st.lists(st.one_of(drop, replace, add), min_size=1, max_size=4)


def mutate(seed: JsonDict, changes: list[Mutation]) -> JsonDict:
    """A copy of ``seed`` with ``changes`` made (those whose place is gone by then are skipped)."""
    update: JsonDict = copy.deepcopy(seed)
    for what, path, key, value in changes:
        try:
            if what == "add":
                parent = _at(update, path)
                if isinstance(parent, dict):
                    parent[key] = copy.deepcopy(value)
                continue
            parent = _at(update, path[:-1])
            if isinstance(parent, dict | list):
                if what == "drop":
                    del parent[path[-1]]  # type: ignore[arg-type]
                else:
                    parent[path[-1]] = copy.deepcopy(value)  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            continue
    return update


async def real_updates(bench: Bench) -> list[JsonDict]:
    """Updates the fake builds as Telegram would (each delivered and handled once)."""
    api, r1, e1 = bench.api, bench.cast["r1"].telegram_id, bench.cast["e1"].telegram_id
    seeds = [api.message(r1, "报修")]
    assert await api.deliver() == [200]
    await bench.service.idle()
    menu = api.messages_to(r1)[-1]
    seeds += [
        api.press(r1, menu.message_id, "rb:4"),
        api.message(r1, "/help"),
        api.message(r1, None, "photo-1", caption="屏幕"),
        api.message(r1, None, None, "voice-1"),
        api.message(e1, "/my", reply_to_message_id=1),
        api.message(STRANGER, "/start asset_SRV-CASE-01"),
    ]
    assert set(await api.deliver()) == {200}
    await bench.service.idle()
    return [copy.deepcopy(seed) for seed in seeds]


DIGITS = re.compile(r"\d+")


def signature(record: logging.LogRecord) -> str:
    """What kind of trouble a record reports: its logger, level, message and exception, numbers
    left out (so one bug hit a hundred times is one line)."""
    message = DIGITS.sub("N", record.getMessage().splitlines()[0])[:120]
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        message += f" | {type(error).__name__}: {DIGITS.sub('N', str(error))[:120]}"
    return f"{record.name} {record.levelname}: {message}"


def report_of(failures: list[tuple[str, JsonDict | None]]) -> str:
    """Each kind of failure once: how often, and the shortest update that caused it (for the
    outbox, which sends meanwhile, the update being handled when the record was logged)."""
    kinds: dict[str, list[JsonDict | None]] = {}
    for what, update in failures:
        kinds.setdefault(what, []).append(update)
    lines = []
    for what, updates in kinds.items():
        shortest = min(updates, key=lambda u: len(json.dumps(u)))
        lines.append(f"{len(updates)} x {what}\n    e.g. {json.dumps(shortest, ensure_ascii=False)[:700]}")
    return "\n".join(lines)


@pytest.fixture
def hypothesis_home(tmp_path: Path) -> Iterator[None]:
    """Hypothesis keeps its caches (charmap, constants) in the test's directory, not the tree's."""
    set_hypothesis_home_dir(tmp_path / ".hypothesis")
    try:
        yield
    finally:
        set_hypothesis_home_dir(None)


@pytest.mark.usefixtures("hypothesis_home")
async def test_fuzzed_updates_leave_no_traceback_no_5xx_and_no_row_unprocessed(
    bench: Bench, caplog: pytest.LogCaptureFixture, db: Database
) -> None:
    """Real updates from the fake, mutated by hypothesis (keys dropped and added, values of
    every JSON type put anywhere: huge and negative ints, long, odd and unfit strings, deep
    structures, a wrong update_id), POSTed to the webhook one after another, 500 on each
    engine (20-30 s an engine): none is answered 5xx (one without an
    int update_id gets 400), none leaves a log record at ERROR or with a traceback ("Task
    exception was never retrieved" included), every one stored is marked handled, and the bot
    still answers a real /help afterwards. Each failure kind is reported once, with the
    shortest update that caused it."""
    caplog.set_level(logging.WARNING)
    loop = asyncio.get_running_loop()
    seeds = await real_updates(bench)
    url = f"http://127.0.0.1:{bench.port}{HOOK}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    fresh = itertools.count(1_000_000)
    statuses: list[int] = []
    failures: list[tuple[str, JsonDict | None]] = []
    seen = 0

    def note_troubles(update: JsonDict | None, collect: bool) -> None:
        nonlocal seen
        found = troubles(caplog, collect)
        failures.extend((signature(record), update) for record in found[seen:])
        seen = len(found)

    async with aiohttp.ClientSession() as http:

        async def post(update: JsonDict) -> int:
            async with http.post(url, data=json.dumps(update), headers=headers) as response:
                status = response.status
            await bench.service.pipeline.drain()  # handled (the answers go out meanwhile)
            return status

        values = odd_values()
        drawn = [st.tuples(st.just(n), mutations(seed, values)) for n, seed in enumerate(seeds)]

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,  # nothing written into the tree
            phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
            suppress_health_check=list(HealthCheck),
        )
        @given(st.one_of(drawn))
        def fuzz(example: tuple[int, list[Mutation]]) -> None:
            number, changes = example
            update = mutate(seeds[number], changes)
            if not any(path == ("update_id",) for _, path, _, _ in changes):
                update["update_id"] = next(fresh)  # a new update, not Telegram's redelivery
            status = asyncio.run_coroutine_threadsafe(post(update), loop).result(timeout=60)
            statuses.append(status)
            if status >= 500:
                failures.append((f"answered {status}", update))
            if type(update.get("update_id")) is not int and status != 400:
                failures.append((f"no int update_id but answered {status}", update))
            note_troubles(update, collect=False)

        await asyncio.to_thread(fuzz)  # hypothesis drives the loop's service from a thread
        await bench.service.idle()
        note_troubles(None, collect=True)

    async with transaction(bench.service.runtime.sessions) as session:
        stuck = (await session.exec(select(InboxUpdate).where(col(InboxUpdate.processed_at).is_(None)))).all()
    failures += [("stored but never handled", row.payload) for row in stuck]
    assert failures == [], "\n" + report_of(failures)
    assert len(statuses) == FUZZ_EXAMPLES and set(statuses) <= {200, 400}

    r2 = bench.cast["r2"].telegram_id
    bench.api.message(r2, "/help")
    assert await bench.api.deliver() == [200]
    await bench.service.idle()
    assert (bench.api.messages_to(r2)[-1].text or "").startswith("报修：")
