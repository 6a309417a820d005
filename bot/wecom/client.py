"""A small async client for the WeChat Work (企业微信) server API, on aiohttp.

wechatpy's client is blocking and hard-codes the token URL; this one takes the API base from
the settings (tests point it at a fake), keeps one access token for every concurrent caller
(fetched once, kept until 60 s before it expires, one fetch at a time) and fetches a new one
when WeCom says the token is invalid or expired.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from bot.settings import Settings

log = logging.getLogger("dutydesk.wecom")

#: The token is invalid (40014), missing (41001) or expired (42001): fetch a new one, retry once.
TOKEN_ERRORS = frozenset({40014, 41001, 42001})
JSON_TYPES = frozenset({"application/json", "text/plain"})  # WeCom answers errors as text/plain too
EARLY = 60.0  # seconds before its expiry a token is replaced
TIMEOUT = aiohttp.ClientTimeout(total=10)


class WecomError(Exception):
    """WeCom answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class WecomClient:
    """The calls dutydesk makes: messages, card updates, the app menu and media."""

    def __init__(self, api_url: str, corp_id: str, secret: str, agent_id: int) -> None:
        self.base = api_url.rstrip("/") + "/cgi-bin"
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self._http: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._expires = 0.0
        self._fetching = asyncio.Lock()
        self.token_fetches = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> WecomClient:
        """The client of the configured app (``settings.wecom_enabled`` must be true)."""
        assert settings.wecom_corp_id and settings.wecom_secret and settings.wecom_agent_id is not None
        return cls(
            settings.wecom_api_url,
            settings.wecom_corp_id,
            settings.wecom_secret.get_secret_value(),
            settings.wecom_agent_id,
        )

    @property
    def http(self) -> aiohttp.ClientSession:
        """The HTTP session (opened on first use, inside the running loop)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._http

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()

    async def token(self, *, stale: str | None = None) -> str:
        """A valid access token; ``stale`` is one WeCom just refused (replace it, once)."""
        loop = asyncio.get_running_loop()
        async with self._fetching:  # concurrent callers wait for one fetch instead of each fetching
            if self._token is not None and self._token != stale and loop.time() < self._expires:
                return self._token
            params = {"corpid": self.corp_id, "corpsecret": self.secret}
            async with self.http.get(f"{self.base}/gettoken", params=params) as response:
                body = await _json(response)
            _check(body)
            self.token_fetches += 1
            self._token = str(body["access_token"])
            self._expires = loop.time() + float(body.get("expires_in", 7200)) - EARLY
            return self._token

    async def call(self, path: str, payload: dict[str, Any] | None = None, **params: str) -> dict[str, Any]:
        """POST ``payload`` (or GET without one) to /cgi-bin/``path``; the answer, errcode 0."""
        body, _file = await self._exchange(path, payload, params)
        if body is None:
            raise WecomError(-1, f"{path} answered a file, not JSON")
        return body

    async def send(self, userid: str, msgtype: str, body: dict[str, Any]) -> dict[str, Any]:
        """message/send to one member: ``msgtype`` "text", "markdown" or "template_card"."""
        payload = {"touser": userid, "msgtype": msgtype, "agentid": self.agent_id, msgtype: body}
        answer = await self.call("message/send", payload)
        if answer.get("invaliduser"):
            raise WecomError(81013, f"invalid user {answer['invaliduser']}")
        return answer

    async def update_card(self, userid: str, response_code: str, replace_name: str) -> None:
        """Turn the buttons of a pressed card into one disabled line (response code: once, 72 h)."""
        payload = {
            "userids": [userid],
            "agentid": self.agent_id,
            "response_code": response_code,
            "button": {"replace_name": replace_name},
        }
        await self.call("message/update_template_card", payload)

    async def replace_card(self, userid: str, response_code: str, card: dict[str, Any]) -> None:
        """Replace a sent card with a new one (response code: once, 72 h)."""
        payload = {
            "userids": [userid],
            "agentid": self.agent_id,
            "response_code": response_code,
            "template_card": card,
        }
        await self.call("message/update_template_card", payload)

    async def create_menu(self, buttons: list[dict[str, Any]]) -> None:
        """Install the app's menu."""
        await self.call("menu/create", {"button": buttons}, agentid=str(self.agent_id))

    async def media(self, media_id: str) -> tuple[bytes, str]:
        """A media file a member sent (photo, voice): its bytes and content type."""
        _body, file = await self._exchange("media/get", None, {"media_id": media_id})
        if file is None:
            raise WecomError(-1, "media/get answered no file")
        return file

    async def _exchange(
        self, path: str, payload: dict[str, Any] | None, params: dict[str, str]
    ) -> tuple[dict[str, Any] | None, tuple[bytes, str] | None]:
        """One call with the shared token, once more with a new token if WeCom refused it:
        the JSON answer (errcode 0), or a file's bytes and content type."""
        token = await self.token()
        for attempt in (1, 2):
            query = {"access_token": token, **params}
            url = f"{self.base}/{path}"
            request = (
                self.http.get(url, params=query)
                if payload is None
                else self.http.post(url, params=query, json=payload)
            )
            async with request as response:
                if response.status < 300 and response.content_type not in JSON_TYPES:
                    return None, (await response.read(), response.content_type)
                body = await _json(response)
            if body.get("errcode") in TOKEN_ERRORS and attempt == 1:
                log.info("wecom: token refused (%s), fetching a new one", body.get("errcode"))
                token = await self.token(stale=token)
                continue
            _check(body)
            return body, None
        raise AssertionError("unreachable")


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    if response.status >= 500:
        raise aiohttp.ClientResponseError(
            response.request_info, response.history, status=response.status, message="server error"
        )
    body = await response.json(content_type=None)
    if not isinstance(body, dict):
        raise WecomError(-1, "not a JSON object")
    return body


def _check(body: dict[str, Any]) -> None:
    code = int(body.get("errcode", 0) or 0)
    if code != 0:
        raise WecomError(code, str(body.get("errmsg", "")))
