"""The fake WeCom API answers raw HTTP as WeCom does, and WecomCallbacks encrypts and signs as WeCom does."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from tests.fakes.wecom_api import Delivered, FakeWecomApi
from tests.fakes.wecom_callback import DEFAULT_ECHOSTR, WecomCallbacks

CORP = "ww0123456789abcdef"
SECRET = "app-secret-0123456789"
AGENT = 1000002
TOKEN = "callbacktoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeCom shows it

Json = dict[str, Any]


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    """The fake's clock."""
    return ManualClock()


@pytest.fixture
async def api(clock: ManualClock) -> AsyncIterator[FakeWecomApi]:
    """A running fake with two members."""
    async with FakeWecomApi(CORP, SECRET, AGENT, clock=clock) as fake:
        fake.user("lilei", "李雷")
        fake.user("hanmeimei", "韩梅梅")
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, api: FakeWecomApi, path: str, **query: str) -> Json:
    """GET /cgi-bin/<path>; the JSON answer (always HTTP 200)."""
    async with http.get(f"{api.url}/cgi-bin/{path}", params=query) as response:
        assert response.status == 200
        body: Json = await response.json()
        return body


async def post(http: aiohttp.ClientSession, api: FakeWecomApi, path: str, body: Json, **query: str) -> Json:
    """POST JSON to /cgi-bin/<path>; the JSON answer (always HTTP 200)."""
    async with http.post(f"{api.url}/cgi-bin/{path}", params=query, json=body) as response:
        assert response.status == 200
        answer: Json = await response.json()
        return answer


async def token(http: aiohttp.ClientSession, api: FakeWecomApi) -> str:
    """A valid access_token."""
    answer = await get(http, api, "gettoken", corpid=CORP, corpsecret=SECRET)
    assert answer["errcode"] == 0
    return str(answer["access_token"])


async def send(http: aiohttp.ClientSession, api: FakeWecomApi, access_token: str, **body: Any) -> Json:
    """message/send with agentid filled in."""
    return await post(http, api, "message/send", {"agentid": AGENT, **body}, access_token=access_token)


def text(touser: str, content: str) -> Json:
    """A text message body (without agentid)."""
    return {"touser": touser, "msgtype": "text", "text": {"content": content}}


def button_card(task_id: str, buttons: int = 2, **extra: Any) -> Json:
    """A button_interaction template_card body part."""
    return {
        "card_type": "button_interaction",
        "task_id": task_id,
        "main_title": {"title": "工单 T-1 待接单"},
        "button_list": [{"text": f"按钮{i}", "key": f"k{i}", "style": 1} for i in range(buttons)],
        **extra,
    }


# ---------------------------------------------------------------------- access tokens


async def test_gettoken_good_and_bad(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """Right credentials get a token (the same one while it lives); wrong ones get WeCom's errcodes."""
    first = await get(http, api, "gettoken", corpid=CORP, corpsecret=SECRET)
    assert (first["errcode"], first["errmsg"], first["expires_in"]) == (0, "ok", 7200)
    assert len(first["access_token"]) > 20
    again = await get(http, api, "gettoken", corpid=CORP, corpsecret=SECRET)
    assert again["access_token"] == first["access_token"]

    assert await get(http, api, "gettoken", corpid="wrong", corpsecret=SECRET) == {
        "errcode": 40013,
        "errmsg": "invalid corpid",
    }
    assert (await get(http, api, "gettoken", corpid=CORP, corpsecret="wrong"))["errcode"] == 40001
    assert (await get(http, api, "gettoken", corpid=CORP))["errcode"] == 41004
    assert api.token_fetches == 5
    assert [call.path for call in api.calls] == ["/cgi-bin/gettoken"] * 5


async def test_token_missing_unknown_expired(
    api: FakeWecomApi, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """41001 without a token, 40014 for an unknown one, 42001 once expired; then a new token works."""
    message = text("lilei", "hi")
    assert (await post(http, api, "message/send", {"agentid": AGENT, **message}))["errcode"] == 41001
    assert (await send(http, api, "nonsense", **message))["errmsg"] == "invalid access_token"
    old = await token(http, api)
    api.expire_tokens()
    assert await send(http, api, old, **message) == {"errcode": 42001, "errmsg": "access_token expired"}
    new = await token(http, api)
    assert new != old
    assert (await send(http, api, new, **message))["errcode"] == 0
    clock.now += 7200  # the lifetime ends by itself too
    assert (await send(http, api, new, **message))["errcode"] == 42001
    assert len(api.messages_to("lilei")) == 1


# ---------------------------------------------------------------------- message/send


async def test_text_markdown_recipients_and_limits(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """Texts reach registered members; unknown ones are listed; 2048 bytes is the limit."""
    access = await token(http, api)
    answer = await send(http, api, access, **text("lilei|ghost|hanmeimei|nobody", "报修：打印机卡纸"))
    assert (answer["errcode"], answer["errmsg"], answer["invaliduser"]) == (0, "ok", "ghost|nobody")
    assert answer["msgid"] and "response_code" not in answer
    [got] = api.messages_to("lilei")
    assert (got.msgtype, got.text, got.msgid, got.buttons) == (
        "text",
        "报修：打印机卡纸",
        answer["msgid"],
        [],
    )
    assert api.messages_to("hanmeimei")[0].msgid == answer["msgid"]

    markdown = {"touser": "lilei", "msgtype": "markdown", "markdown": {"content": "**SLA** 即将超时"}}
    assert (await send(http, api, access, **markdown))["errcode"] == 0
    assert api.messages_to("lilei")[-1].text == "**SLA** 即将超时"

    exactly = "工" * 682 + "ab"  # 2046 + 2 = 2048 bytes
    assert (await send(http, api, access, **text("lilei", exactly)))["errcode"] == 0
    too_long = await send(http, api, access, **text("lilei", exactly + "c"))
    assert too_long == {"errcode": 45002, "errmsg": "content size out of limit"}
    assert len(api.messages_to("lilei")) == 3

    assert (await send(http, api, access, **text("ghost", "x")))["errcode"] == 81013
    assert (await send(http, api, access, **text("", "x")))["errcode"] == 81013
    assert (await send(http, api, access, **text("lilei", "")))["errcode"] == 44004
    wrong_agent = await post(
        http, api, "message/send", {"agentid": 7, **text("lilei", "x")}, access_token=access
    )
    assert wrong_agent == {"errcode": 40056, "errmsg": "invalid agentid"}
    image = {"touser": "lilei", "msgtype": "image", "image": {"media_id": "m"}}
    assert (await send(http, api, access, **image))["errcode"] == 40008
    everyone = await send(http, api, access, **text("@all", "全员通知"))
    assert everyone["errcode"] == 0 and api.messages_to("hanmeimei")[-1].text == "全员通知"

    async with http.post(f"{api.url}/cgi-bin/message/send?access_token={access}", data=b"{nope") as response:
        assert (await response.json())["errcode"] == 47001
    assert api.calls[-1].body is None and api.calls[-1].errcode == 47001


async def test_template_cards(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """button_interaction and text_notice cards are checked like WeCom checks them."""
    access = await token(http, api)

    async def card(template_card: Json, touser: str = "lilei") -> Json:
        return await send(
            http, api, access, touser=touser, msgtype="template_card", template_card=template_card
        )

    ok = await card(button_card("T-1_a@b", sub_title_text="机房 3 楼"), touser="lilei|hanmeimei")
    assert ok["errcode"] == 0 and ok["response_code"]
    [got] = api.messages_to("lilei")
    assert (got.msgtype, got.card_type, got.task_id) == ("template_card", "button_interaction", "T-1_a@b")
    assert (got.text, got.buttons) == ("工单 T-1 待接单\n机房 3 楼", [("按钮0", "k0"), ("按钮1", "k1")])
    assert (got.response_code, got.replaced) == (ok["response_code"], None)

    reused = await card(button_card("T-1_a@b"))
    assert reused["errcode"] == 40058 and "task_id" in reused["errmsg"]
    seven = await card(button_card("T-2", buttons=7))
    assert seven["errcode"] == 40058 and "button_list" in seven["errmsg"]
    assert (await card(button_card("T-3", buttons=0)))["errcode"] == 40058
    assert (await card(button_card("bad id!")))["errcode"] == 40058
    assert (await card(button_card("x" * 129)))["errcode"] == 40058
    assert (await card({**button_card("T-4"), "main_title": {"title": ""}}))["errcode"] == 40058
    long_key = button_card("T-5")
    long_key["button_list"][0]["key"] = "k" * 1025
    assert (await card(long_key))["errcode"] == 40058
    same_keys = button_card("T-6")
    same_keys["button_list"][1]["key"] = "k0"
    assert (await card(same_keys))["errcode"] == 40058
    assert await card({"card_type": "vote_interaction", "task_id": "T-7"}) == {
        "errcode": 40058,
        "errmsg": "invalid card_type",
    }
    assert (await card(button_card("T-2")))["errcode"] == 0  # refused cards did not use up their task_id

    notice = {"card_type": "text_notice", "main_title": {"title": "已派单"}}
    assert (await card(notice))["errcode"] == 40058  # text_notice needs card_action
    sent = await card({**notice, "card_action": {"type": 1, "url": "https://example.com/t/1"}})
    assert sent["errcode"] == 0 and "response_code" not in sent
    assert api.messages_to("lilei")[-1].text == "已派单"
    assert (await card(button_card("T-8"), touser="ghost"))["errcode"] == 81013
    assert (await card(button_card("T-8")))["errcode"] == 0  # 81013 did not use up T-8 either


async def test_per_member_limit_drops_silently(
    api: FakeWecomApi, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """31 messages in a burst: 30 delivered, 1 dropped, all answered errcode 0; the window slides."""
    access = await token(http, api)
    answers = [await send(http, api, access, **text("lilei", f"#{i}")) for i in range(31)]
    assert {answer["errcode"] for answer in answers} == {0}
    assert [m.text for m in api.messages_to("lilei")] == [f"#{i}" for i in range(30)]
    assert [(d.userid, d.text) for d in api.dropped] == [("lilei", "#30")]
    assert (await send(http, api, access, **text("hanmeimei", "other member")))["errcode"] == 0
    assert len(api.messages_to("hanmeimei")) == 1

    clock.now += 59
    await send(http, api, access, **text("lilei", "still within the minute"))
    clock.now += 1.5
    await send(http, api, access, **text("lilei", "a new minute"))
    assert api.messages_to("lilei")[-1].text == "a new minute"
    assert [d.text for d in api.dropped] == ["#30", "still within the minute"]


async def test_per_hour_limit(http: aiohttp.ClientSession, clock: ManualClock) -> None:
    """per_hour counts delivered messages over a sliding hour."""
    async with FakeWecomApi(CORP, SECRET, AGENT, per_minute=100, per_hour=3, clock=clock) as api:
        api.user("lilei", "李雷")
        access = await token(http, api)
        for i in range(4):
            clock.now += 61
            await send(http, api, access, **text("lilei", f"#{i}"))
        assert (len(api.messages_to("lilei")), [d.text for d in api.dropped]) == (3, ["#3"])
        clock.now += 3600 - 3 * 61 + 1  # the first one leaves the hour
        await send(http, api, access, **text("lilei", "#4"))
        assert api.messages_to("lilei")[-1].text == "#4"


# ---------------------------------------------------------------------- cards: update and press


async def test_update_template_card_once_per_code(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """The send-time response_code updates the card of the named members, once."""
    access = await token(http, api)
    sent = await send(
        http, api, access, touser="lilei|hanmeimei", msgtype="template_card", template_card=button_card("T-9")
    )
    update = {"userids": ["lilei"], "agentid": AGENT, "response_code": sent["response_code"]}
    update["button"] = {"replace_name": "已接单"}
    first = await post(http, api, "message/update_template_card", update, access_token=access)
    assert first == {"errcode": 0, "errmsg": "ok", "invaliduser": []}
    assert api.messages_to("lilei")[0].replaced == "已接单"
    assert api.messages_to("hanmeimei")[0].replaced is None
    again = await post(http, api, "message/update_template_card", update, access_token=access)
    assert again == {"errcode": 40090, "errmsg": "invalid response_code"}
    unknown = {**update, "response_code": "made-up"}
    assert (await post(http, api, "message/update_template_card", unknown, access_token=access))[
        "errcode"
    ] == 40090
    wrong_agent = {**update, "agentid": 1}
    assert (await post(http, api, "message/update_template_card", wrong_agent, access_token=access))[
        "errcode"
    ] == 40056


async def test_press_gives_a_code_usable_once(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """press() returns a fresh code for that member's card; strict press checks the card."""
    access = await token(http, api)
    sent = await send(
        http,
        api,
        access,
        touser="lilei|hanmeimei",
        msgtype="template_card",
        template_card=button_card("T-10"),
    )
    code = api.press("lilei", "T-10", "k1")
    assert code != sent["response_code"] and code != api.press("hanmeimei", "T-10", "k0")
    with pytest.raises(AssertionError, match="no button"):
        api.press("lilei", "T-10", "nope")
    with pytest.raises(AssertionError, match="no card"):
        api.press("lilei", "T-404", "k0")
    assert api.press("lilei", "T-404", "k0", strict=False)

    update = {"userids": ["lilei", "hanmeimei"], "agentid": AGENT, "response_code": code}
    update["button"] = {"replace_name": "处理中"}
    answer = await post(http, api, "message/update_template_card", update, access_token=access)
    assert answer == {"errcode": 0, "errmsg": "ok", "invaliduser": ["hanmeimei"]}  # the code is lilei's
    assert (api.messages_to("lilei")[0].replaced, api.messages_to("hanmeimei")[0].replaced) == (
        "处理中",
        None,
    )
    assert (await post(http, api, "message/update_template_card", update, access_token=access))[
        "errcode"
    ] == 40090
    with pytest.raises(AssertionError, match="replaced"):
        api.press("lilei", "T-10", "k1")


def notice_card(title: str, **extra: Any) -> Json:
    """A text_notice template_card body part."""
    return {
        "card_type": "text_notice",
        "main_title": {"title": title},
        "card_action": {"type": 1, "url": "https://example.com/t/1"},
        **extra,
    }


async def update_card(
    http: aiohttp.ClientSession, api: FakeWecomApi, access: str, code: str, **body: Any
) -> Json:
    """message/update_template_card with agentid and response_code filled in (userids unless given)."""
    payload = {"userids": ["lilei"], "agentid": AGENT, "response_code": code, **body}
    return await post(http, api, "message/update_template_card", payload, access_token=access)


async def send_card(
    http: aiohttp.ClientSession, api: FakeWecomApi, access: str, touser: str, card: Json
) -> Json:
    """message/send of a template_card."""
    return await send(http, api, access, touser=touser, msgtype="template_card", template_card=card)


async def test_update_to_a_new_button_card(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """The member's card shows the new title, text and buttons and keeps its task_id; the old
    buttons are gone, the new ones can be pressed and give a fresh code."""
    access = await token(http, api)
    sent = await send_card(http, api, access, "lilei|hanmeimei", button_card("T-20"))
    new_card = {
        "card_type": "button_interaction",
        "main_title": {"title": "工单 T-20 已接单"},
        "sub_title_text": "处理人：李雷",
        "button_list": [{"text": "已到场", "key": "arrived"}, {"text": "已解决", "key": "solved"}],
    }
    answer = await update_card(http, api, access, sent["response_code"], template_card=new_card)
    assert answer == {"errcode": 0, "errmsg": "ok", "invaliduser": []}

    [card] = api.messages_to("lilei")
    assert (card.text, card.buttons) == (
        "工单 T-20 已接单\n处理人：李雷",
        [("已到场", "arrived"), ("已解决", "solved")],
    )
    assert (card.task_id, card.card_type, card.replaced, card.msgid) == (
        "T-20",
        "button_interaction",
        None,
        sent["msgid"],
    )
    assert card.card_update is not None and card.card_update["template_card"] == new_card
    assert card.raw["template_card"]["task_id"] == "T-20"  # raw stays the send body
    other = api.messages_to("hanmeimei")[0]  # not named in userids: unchanged
    assert (other.text, other.buttons[0], other.card_update) == ("工单 T-1 待接单", ("按钮0", "k0"), None)

    with pytest.raises(AssertionError, match="no button 'k0'"):
        api.press("lilei", "T-20", "k0")
    code = api.press("lilei", "T-20", "solved")
    assert code != sent["response_code"]
    done = await update_card(http, api, access, code, button={"replace_name": "已解决"})
    assert done["errcode"] == 0 and api.messages_to("lilei")[0].replaced == "已解决"


async def test_update_to_a_text_notice_and_new_task_ids(
    api: FakeWecomApi, http: aiohttp.ClientSession
) -> None:
    """A text_notice leaves no buttons; atall updates every recipient; a new card may name a new,
    unused task_id (an already used one is refused and the code stays usable)."""
    access = await token(http, api)
    sent = await send_card(http, api, access, "lilei|hanmeimei", button_card("T-21"))
    await send_card(http, api, access, "lilei", button_card("T-22"))
    code = sent["response_code"]

    taken = await update_card(http, api, access, code, template_card=notice_card("已关闭", task_id="T-22"))
    assert taken["errcode"] == 40058 and "task_id" in taken["errmsg"]
    closed = notice_card("工单 T-21 已关闭", task_id="T-21-closed", sub_title_text="已解决")
    answer = await update_card(http, api, access, code, userids=[], atall=1, template_card=closed)
    assert answer == {"errcode": 0, "errmsg": "ok", "invaliduser": []}
    for userid in ("lilei", "hanmeimei"):
        card = api.messages_to(userid)[0]
        assert (card.text, card.buttons) == ("工单 T-21 已关闭\n已解决", [])
        assert (card.card_type, card.task_id) == ("text_notice", "T-21-closed")
        with pytest.raises(AssertionError, match="no button"):
            api.press(userid, "T-21-closed", "k0")
    with pytest.raises(AssertionError, match="no card"):
        api.press("lilei", "T-21", "k0")
    reused = await send_card(http, api, access, "lilei", button_card("T-21-closed"))
    assert reused["errcode"] == 40058  # the new card's task_id is now used by the app


async def test_full_update_codes_once_each(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """The send code and each click code update once, whatever the form; a second use is 40090."""
    access = await token(http, api)
    sent = await send_card(http, api, access, "lilei", button_card("T-23"))
    first = await update_card(http, api, access, sent["response_code"], template_card=button_card("T-23"))
    assert first["errcode"] == 0
    again = await update_card(http, api, access, sent["response_code"], template_card=notice_card("x"))
    assert again == {"errcode": 40090, "errmsg": "invalid response_code"}
    replace_too = await update_card(http, api, access, sent["response_code"], button={"replace_name": "x"})
    assert replace_too["errcode"] == 40090

    clicked = api.press("lilei", "T-23", "k1")  # the code the click callback carries
    assert (await update_card(http, api, access, clicked, template_card=notice_card("已接单")))[
        "errcode"
    ] == 0
    assert api.messages_to("lilei")[0].text == "已接单"
    second = await update_card(http, api, access, clicked, template_card=notice_card("又一次"))
    assert second["errcode"] == 40090
    assert api.messages_to("lilei")[0].text == "已接单"


async def test_response_codes_expire_after_72_hours(
    api: FakeWecomApi, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A code works until 72 hours after it was issued (by the send or by a click), for either
    form, then answers 40090."""
    access = await token(http, api)
    sent = await send_card(http, api, access, "lilei", button_card("T-24"))
    clicked = api.press("lilei", "T-24", "k0")
    clock.now += 72 * 3600 - 1
    access = await token(http, api)  # the first access_token expired meanwhile
    accepted = await update_card(http, api, access, clicked, button={"replace_name": "已接单"})
    assert accepted["errcode"] == 0 and api.messages_to("lilei")[0].replaced == "已接单"
    clock.now += 1
    expired = await update_card(http, api, access, sent["response_code"], template_card=notice_card("迟了"))
    assert expired == {"errcode": 40090, "errmsg": "invalid response_code"}

    await send_card(http, api, access, "lilei", button_card("T-25"))
    late_click = api.press("lilei", "T-25", "k0")
    clock.now += 72 * 3600
    access = await token(http, api)
    stale = await update_card(http, api, access, late_click, template_card=notice_card("迟了"))
    assert stale == {"errcode": 40090, "errmsg": "invalid response_code"}
    assert [(m.text, m.replaced) for m in api.messages_to("lilei")] == [
        ("工单 T-1 待接单", "已接单"),
        ("工单 T-1 待接单", None),
    ]


async def test_invalid_new_card_is_refused_like_send(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """A new card is checked as message/send checks one (40058); refused, it uses up no code."""
    access = await token(http, api)
    sent = await send_card(http, api, access, "lilei", button_card("T-26"))
    code = sent["response_code"]
    bad_cards: list[Json] = [
        button_card("T-26", buttons=7),
        {**button_card("T-26"), "button_list": []},
        {**button_card("T-26"), "main_title": {"title": ""}},
        button_card("bad id!"),
        {"card_type": "text_notice", "main_title": {"title": "no card_action"}},
        {"card_type": "vote_interaction", "main_title": {"title": "x"}},
    ]
    for bad in bad_cards:
        refused = await update_card(http, api, access, code, template_card=bad)
        as_sent = await send_card(http, api, access, "lilei", bad)
        assert refused["errcode"] == as_sent["errcode"] == 40058, bad
        assert refused["errmsg"] == as_sent["errmsg"], bad
    both = await update_card(
        http, api, access, code, button={"replace_name": "x"}, template_card=notice_card("x")
    )
    assert both["errcode"] == 40058
    assert (await update_card(http, api, access, code, template_card="card"))["errcode"] == 40058
    [card] = api.messages_to("lilei")
    assert (card.text, card.card_update) == ("工单 T-1 待接单", None)
    assert (await update_card(http, api, access, code, template_card=notice_card("ok")))["errcode"] == 0


# ---------------------------------------------------------------------- media, menu, controls


async def test_media_get(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """Registered media come back as bytes with their Content-Type; unknown ones as errcode 40007."""
    access = await token(http, api)
    api.media("MEDIA_1", b"\x89PNG fake", "image/png")
    async with http.get(
        f"{api.url}/cgi-bin/media/get", params={"access_token": access, "media_id": "MEDIA_1"}
    ) as r:
        assert (r.status, r.content_type, await r.read()) == (200, "image/png", b"\x89PNG fake")
    assert await get(http, api, "media/get", access_token=access, media_id="NOPE") == {
        "errcode": 40007,
        "errmsg": "invalid media_id",
    }
    assert (await get(http, api, "media/get", media_id="MEDIA_1"))["errcode"] == 41001


async def test_menu_create(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """A valid menu is stored; a wrong agentid or shape is refused."""
    access = await token(http, api)
    report = {"type": "click", "name": "报修", "key": "REPORT"}
    group = {"name": "我的", "sub_button": [{"type": "click", "name": "我的工单", "key": "MINE"}]}
    menu = {"button": [report, group]}

    async def create(body: Json, agentid: str = str(AGENT)) -> Json:
        return await post(http, api, "menu/create", body, access_token=access, agentid=agentid)

    assert await create(menu, agentid="42") == {"errcode": 40056, "errmsg": "invalid agentid"}
    assert await create(menu) == {"errcode": 0, "errmsg": "ok"}
    assert api.menu == menu
    bad_menus: list[Json] = [
        {"button": []},
        {"button": [report] * 4},
        {"button": [{**report, "name": ""}]},
        {"button": [{"type": "click", "name": "x"}]},  # no key
        {"button": [{"name": "组", "sub_button": [report] * 6}]},
        {"button": [{"type": "dance", "name": "x", "key": "k"}]},
        {"button": [{**report, "name": "一二三四五六"}]},  # 18 bytes > 16
    ]
    for bad in bad_menus:
        answer = await create(bad)
        assert answer["errcode"] == 40058 and answer["errmsg"].startswith("invalid menu"), bad
    assert api.menu == menu


async def test_fail_next_delay_and_calls(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """fail_next answers the next sends with an error (nothing sent); delay slows every answer."""
    access = await token(http, api)
    api.fail_next(2)
    assert await send(http, api, access, **text("lilei", "a")) == {"errcode": -1, "errmsg": "system busy"}
    assert (await send(http, api, access, **text("lilei", "b")))["errcode"] == -1
    assert (await send(http, api, access, **text("lilei", "c")))["errcode"] == 0
    api.fail_next(1, 45009, "api freq out of limit")
    assert (await send(http, api, access, **text("lilei", "d")))["errmsg"] == "api freq out of limit"
    assert [m.text for m in api.messages_to("lilei")] == ["c"]
    sends = api.calls_to("message/send")
    assert [c.errcode for c in sends] == [-1, -1, 0, 45009]
    assert sends[2].query == {"access_token": access} and sends[2].body == {
        "agentid": AGENT,
        **text("lilei", "c"),
    }

    api.delay = 0.3
    started = time.monotonic()
    await send(http, api, access, **text("lilei", "slow"))
    assert time.monotonic() - started >= 0.3
    async with http.get(f"{api.url}/cgi-bin/nothing/here") as response:
        assert response.status == 404


# ---------------------------------------------------------------------- callbacks


class Receiver:
    """A tiny callback endpoint that decrypts with wechatpy, as a product would."""

    def __init__(self, corp_id: str = CORP) -> None:
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, corp_id)
        self.received: list[str] = []
        self.bodies: list[bytes] = []
        self.queries: list[dict[str, str]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/wecom", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        """GET: URL verification (echo the decrypted echostr); POST: decrypt and keep the plaintext."""
        query = dict(request.query)
        self.queries.append(query)
        try:
            if request.method == "GET":
                echo = self.crypto.check_signature(
                    query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
                )
                return web.Response(text=str(echo))
            body = await request.read()
            self.bodies.append(body)
            plain = self.crypto.decrypt_message(
                body, query["msg_signature"], query["timestamp"], query["nonce"]
            )
        except InvalidSignatureException:
            return web.Response(status=403, text="bad signature")
        except InvalidCorpIdException:
            return web.Response(status=403, text="wrong corp")
        except Exception:  # malformed XML and the like
            return web.Response(status=400, text="bad request")
        self.received.append(str(plain))
        return web.Response(text="success")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A running Receiver and its URL."""
    receiver = Receiver()
    runner = web.AppRunner(receiver.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield receiver, f"http://127.0.0.1:{port}/wecom"
    await runner.cleanup()


@pytest.fixture
async def callbacks(receiver: tuple[Receiver, str]) -> AsyncIterator[WecomCallbacks]:
    """WecomCallbacks aimed at the receiver."""
    async with WecomCallbacks(receiver[1], TOKEN, AES_KEY, CORP, AGENT) as sender:
        yield sender


def fields(xml_text: str) -> dict[str, str]:
    """Top-level element texts of an <xml> document."""
    return {child.tag: child.text or "" for child in ET.fromstring(xml_text)}


async def test_post_round_trip(receiver: tuple[Receiver, str], callbacks: WecomCallbacks) -> None:
    """Every builder's plaintext arrives intact through wechatpy's decrypt_message."""
    documents = [
        callbacks.text_xml("lilei", "打印机坏了 ]]> <b>", 7001, create_time=1_700_000_000),
        callbacks.image_xml("lilei", "MEDIA_1", 7002, pic_url="https://wework.example/p.jpg"),
        callbacks.voice_xml("lilei", "MEDIA_2", 7003),
        callbacks.location_xml("lilei", 31.2304, 121.4737, "上海市黄浦区", 7004),
        callbacks.click_xml("lilei", "REPORT"),
        callbacks.enter_agent_xml("lilei"),
        callbacks.card_event_xml("lilei", "T-1", "k0", "CODE-1"),
    ]
    for document in documents:
        assert await callbacks.post(document) == (200, "success")
    assert receiver[0].received == documents

    text_msg = fields(documents[0])
    assert text_msg == {
        "ToUserName": CORP,
        "FromUserName": "lilei",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "打印机坏了 ]]> <b>",
        "MsgId": "7001",
        "AgentID": str(AGENT),
    }
    location = fields(documents[3])
    assert (location["Location_X"], location["Location_Y"], location["Label"]) == (
        "31.2304",
        "121.4737",
        "上海市黄浦区",
    )
    assert (fields(documents[4])["Event"], fields(documents[4])["EventKey"]) == ("click", "REPORT")
    assert (fields(documents[5])["Event"], fields(documents[5])["EventKey"]) == ("enter_agent", "")
    card = fields(documents[6])
    assert (card["MsgType"], card["Event"], card["EventKey"]) == ("event", "template_card_event", "k0")
    assert (card["TaskId"], card["CardType"], card["ResponseCode"]) == ("T-1", "button_interaction", "CODE-1")
    assert abs(int(card["CreateTime"]) - time.time()) < 5

    envelope = fields(receiver[0].bodies[0].decode())
    assert (envelope["ToUserName"], envelope["AgentID"]) == (CORP, str(AGENT)) and envelope["Encrypt"]
    assert set(receiver[0].queries[0]) == {"msg_signature", "timestamp", "nonce"}

    selected = callbacks.card_event_xml("lilei", "T-2", "k1", "CODE-2", {"q1": ["a", "b"]})
    assert [o.text for o in ET.fromstring(selected).iter("OptionId")] == ["a", "b"]


async def test_forgeries_and_retries(receiver: tuple[Receiver, str], callbacks: WecomCallbacks) -> None:
    """A bad signature or another corp's message is caught by wechatpy; deliver() repeats one request."""
    document = callbacks.click_xml("lilei", "REPORT")
    assert await callbacks.post(document, sign_with="not-the-token") == (403, "bad signature")
    assert await callbacks.post(document, corp_id="ww_other_corp") == (403, "wrong corp")
    assert (await callbacks.post_raw(b"<xml><Encrypt>", {"msg_signature": "x"}))[0] == 400
    assert receiver[0].received == []

    assert await callbacks.deliver(document, times=3) == [200, 200, 200]
    assert receiver[0].received == [document] * 3
    retries = receiver[0].queries[-3:]
    assert retries[0] == retries[1] == retries[2]
    assert receiver[0].bodies[-3] == receiver[0].bodies[-1]


async def test_verify_echostr(receiver: tuple[Receiver, str], callbacks: WecomCallbacks) -> None:
    """verify() sends an echostr that check_signature accepts and decrypts to the plain string."""
    assert await callbacks.verify() == (200, DEFAULT_ECHOSTR)
    assert await callbacks.verify("plain+/=text") == (200, "plain+/=text")
    assert (await callbacks.verify(sign_with="wrong"))[0] == 403
    assert (await callbacks.verify(corp_id="ww_other"))[0] == 403


async def test_decrypt_reply_and_no_answer(callbacks: WecomCallbacks) -> None:
    """decrypt_reply() reads an encrypted passive reply; an unreachable URL reports status 0."""
    reply = WeChatCrypto(TOKEN, AES_KEY, CORP).encrypt_message(
        "<xml><Content>ok</Content></xml>", "123", "456"
    )
    assert callbacks.decrypt_reply(reply) == "<xml><Content>ok</Content></xml>"
    async with WecomCallbacks("http://127.0.0.1:9/nothing", TOKEN, AES_KEY, CORP, AGENT) as nowhere:
        nowhere.timeout = 1.0
        assert await nowhere.post(nowhere.enter_agent_xml("lilei")) == (0, "")


async def test_messages_reach_the_member_in_order(api: FakeWecomApi, http: aiohttp.ClientSession) -> None:
    """Concurrent sends all land; Delivered keeps the raw body."""
    access = await token(http, api)
    await asyncio.gather(*(send(http, api, access, **text("lilei", f"#{i}")) for i in range(10)))
    delivered: list[Delivered] = api.messages_to("lilei")
    assert sorted(m.text for m in delivered) == sorted(f"#{i}" for i in range(10))
    assert all(m.raw["msgtype"] == "text" and m.userid == "lilei" for m in delivered)
    await api.wait_until(lambda: len(api.messages_to("lilei")) == 10, within=1)
