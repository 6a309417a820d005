"""WeChat Work (WeCom, 企业微信) servers calling the product's callback URL, over real HTTP.

:class:`WecomCallbacks` builds the plaintext XML of messages and events in WeCom's published formats,
encrypts and signs them with wechatpy exactly as WeCom does (AES-CBC with the EncodingAESKey, the
corp id appended; signature = sha1 of the sorted token, timestamp, nonce and ciphertext) and POSTs
them to the callback URL. It also performs the URL verification GET (echostr) and can forge bad
signatures, another corp's messages and malformed bodies.

WeCom waits 5 seconds for an answer and retries a message it got no answer for; :meth:`deliver`
repeats one encrypted message (same signature, timestamp and nonce) to play such retries.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Self

import aiohttp
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

#: The plaintext echostr verify() sends unless told otherwise (WeCom sends a random number string).
DEFAULT_ECHOSTR = "4986302051178539023"


def cdata(text: str) -> str:
    """``text`` as a CDATA section (a "]]>" inside is split across two sections)."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(fields: Sequence[tuple[str, str | int]]) -> str:
    """``<xml>`` with one element per field: strings as CDATA, integers bare (WeCom's layout)."""
    parts = [
        f"<{name}>{cdata(value) if isinstance(value, str) else value}</{name}>" for name, value in fields
    ]
    return "<xml>" + "".join(parts) + "</xml>"


def _field(xml_text: str, name: str) -> str:
    """The text of the top-level element ``name`` of an ``<xml>`` document."""
    found = ET.fromstring(xml_text).findtext(name)
    if found is None:
        raise ValueError(f"no <{name}> in {xml_text[:200]!r}")
    return found


class WecomCallbacks:
    """Plays WeCom's servers posting to the callback ``url`` of one app (``agent_id``) of one corp.

    ``token`` and ``aes_key`` (the 43-character EncodingAESKey) are the callback settings the product
    was configured with. One aiohttp session is opened on first use; ``await close()`` (or
    ``async with``) closes it.
    """

    def __init__(self, url: str, token: str, aes_key: str, corp_id: str, agent_id: int) -> None:
        self.url = url
        self.token = token
        self.aes_key = aes_key
        self.corp_id = corp_id
        self.agent_id = agent_id
        #: Seconds to wait for the product's answer (WeCom gives up after 5 s).
        self.timeout = 5.0
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ plaintext XML builders

    def _head(self, userid: str, msgtype: str, create_time: int | None) -> list[tuple[str, str | int]]:
        when = int(time.time()) if create_time is None else create_time
        return [
            ("ToUserName", self.corp_id),
            ("FromUserName", userid),
            ("CreateTime", when),
            ("MsgType", msgtype),
        ]

    def text_xml(
        self, userid: str, content: str, msg_id: int | str, *, create_time: int | None = None
    ) -> str:
        """A text message from a member."""
        fields = [*self._head(userid, "text", create_time), ("Content", content)]
        return _xml([*fields, ("MsgId", int(msg_id)), ("AgentID", self.agent_id)])

    def image_xml(
        self,
        userid: str,
        media_id: str,
        msg_id: int | str,
        pic_url: str = "",
        *,
        create_time: int | None = None,
    ) -> str:
        """A photo from a member (the product fetches it with media/get?media_id=...)."""
        fields = [*self._head(userid, "image", create_time), ("PicUrl", pic_url), ("MediaId", media_id)]
        return _xml([*fields, ("MsgId", int(msg_id)), ("AgentID", self.agent_id)])

    def voice_xml(
        self, userid: str, media_id: str, msg_id: int | str, *, create_time: int | None = None
    ) -> str:
        """A voice message from a member (AMR, fetched with media/get)."""
        fields = [*self._head(userid, "voice", create_time), ("MediaId", media_id), ("Format", "amr")]
        return _xml([*fields, ("MsgId", int(msg_id)), ("AgentID", self.agent_id)])

    def location_xml(
        self,
        userid: str,
        lat: float,
        lng: float,
        label: str,
        msg_id: int | str,
        *,
        scale: int = 15,
        create_time: int | None = None,
    ) -> str:
        """A location a member shared (Location_X is the latitude, Location_Y the longitude)."""
        fields = [*self._head(userid, "location", create_time), ("Location_X", repr(lat))]
        fields += [("Location_Y", repr(lng)), ("Scale", scale), ("Label", label)]
        return _xml([*fields, ("MsgId", int(msg_id)), ("AgentID", self.agent_id), ("AppType", "wxwork")])

    def _event(
        self, userid: str, event: str, key: str, create_time: int | None
    ) -> list[tuple[str, str | int]]:
        return [*self._head(userid, "event", create_time), ("Event", event), ("EventKey", key)]

    def click_xml(self, userid: str, key: str, *, create_time: int | None = None) -> str:
        """A member tapped a menu button of type click with this key."""
        return _xml([*self._event(userid, "click", key, create_time), ("AgentID", self.agent_id)])

    def enter_agent_xml(self, userid: str, *, create_time: int | None = None) -> str:
        """A member opened the app (enter_agent; EventKey is empty)."""
        return _xml([*self._event(userid, "enter_agent", "", create_time), ("AgentID", self.agent_id)])

    def card_event_xml(
        self,
        userid: str,
        task_id: str,
        key: str,
        response_code: str,
        selected: Mapping[str, Sequence[str]] | None = None,
        *,
        create_time: int | None = None,
    ) -> str:
        """A member pressed button ``key`` of the button_interaction card ``task_id``
        (template_card_event); ``response_code`` is the code :meth:`FakeWecomApi.press` returned.

        ``selected`` (question key -> option ids) adds SelectedItems, as choice cards carry.
        """
        fields = self._event(userid, "template_card_event", key, create_time)
        fields += [("TaskId", task_id), ("CardType", "button_interaction"), ("ResponseCode", response_code)]
        document = _xml([*fields, ("AgentID", self.agent_id)])
        if not selected:
            return document
        items = "".join(
            f"<SelectedItem><QuestionKey>{cdata(question)}</QuestionKey><OptionIds>"
            + "".join(f"<OptionId>{cdata(option)}</OptionId>" for option in options)
            + "</OptionIds></SelectedItem>"
            for question, options in selected.items()
        )
        return document.removesuffix("</xml>") + f"<SelectedItems>{items}</SelectedItems></xml>"

    # ------------------------------------------------------------------ encryption

    def encrypt(
        self, plain_xml: str, *, sign_with: str | None = None, corp_id: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and query parameters WeCom would POST for this plaintext.

        ``corp_id`` encrypts for another corp (a forged message); ``sign_with`` signs with another
        token (a bad signature).
        """
        corp = self.corp_id if corp_id is None else corp_id
        crypto = WeChatCrypto(self.token if sign_with is None else sign_with, self.aes_key, corp)
        nonce = str(secrets.randbelow(9_000_000_000) + 1_000_000_000)
        envelope = str(crypto.encrypt_message(plain_xml, nonce, str(int(time.time()))))
        encrypted = _field(envelope, "Encrypt")
        params = {
            "msg_signature": _field(envelope, "MsgSignature"),
            "timestamp": _field(envelope, "TimeStamp"),
            "nonce": _field(envelope, "Nonce"),
        }
        body = _xml([("ToUserName", corp), ("AgentID", str(self.agent_id)), ("Encrypt", encrypted)])
        return body.encode("utf-8"), params

    def decrypt_reply(self, reply: str) -> str:
        """The plaintext of an encrypted passive reply the product answered with (checks its signature;
        wechatpy's InvalidSignatureException when it is wrong)."""
        signature, timestamp = _field(reply, "MsgSignature"), _field(reply, "TimeStamp")
        return str(self.crypto.decrypt_message(reply, signature, timestamp, _field(reply, "Nonce")))

    # ------------------------------------------------------------------ HTTP

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.timeout)

    async def post(
        self, plain_xml: str, *, sign_with: str | None = None, corp_id: str | None = None
    ) -> tuple[int, str]:
        """Encrypt, sign and POST one message or event; return (HTTP status, body text).

        Status 0 means no answer (connection refused or no answer within :attr:`timeout`).
        """
        body, params = self.encrypt(plain_xml, sign_with=sign_with, corp_id=corp_id)
        return await self.post_raw(body, params)

    async def post_raw(self, body: bytes, params: dict[str, str]) -> tuple[int, str]:
        """POST any body with any query parameters (malformed or oversized requests)."""
        try:
            async with self._client().post(
                self.url,
                params=params,
                data=body,
                headers={"Content-Type": "text/xml"},
                timeout=self._timeout(),
            ) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return 0, ""

    async def deliver(self, plain_xml: str, times: int = 1) -> list[int]:
        """POST the same encrypted message ``times`` times (same signature, timestamp and nonce), as
        WeCom's retries do; return the statuses."""
        body, params = self.encrypt(plain_xml)
        return [(await self.post_raw(body, params))[0] for _ in range(times)]

    async def verify(
        self,
        echostr_plain: str = DEFAULT_ECHOSTR,
        *,
        sign_with: str | None = None,
        corp_id: str | None = None,
    ) -> tuple[int, str]:
        """The URL verification WeCom performs when the callback URL is saved: GET with msg_signature,
        timestamp, nonce and the encrypted echostr; the product must answer the plain echostr.
        Return (HTTP status, body text)."""
        corp = self.corp_id if corp_id is None else corp_id
        echostr = PrpCrypto(self.crypto.key).encrypt(echostr_plain, corp)
        echostr = echostr.decode("ascii") if isinstance(echostr, bytes) else str(echostr)
        timestamp = str(int(time.time()))
        nonce = str(secrets.randbelow(9_000_000_000) + 1_000_000_000)
        signature = str(
            _get_signature(self.token if sign_with is None else sign_with, timestamp, nonce, echostr)
        )
        params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
        try:
            async with self._client().get(self.url, params=params, timeout=self._timeout()) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return 0, ""


__all__ = ["DEFAULT_ECHOSTR", "WecomCallbacks", "cdata"]
