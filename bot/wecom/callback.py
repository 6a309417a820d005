"""WeCom's callback: URL verification and encrypted messages, checked and opened with wechatpy.

Everything a forger or a broken proxy could send is refused here, before anything is stored:
a body over MAX_BODY (413), a signature that does not match (403), a message encrypted for
another corp (403), XML or ciphertext that does not parse (400).
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot.clean import clean_text

#: WeCom's callbacks are a few hundred bytes; anything this large is not from WeCom.
MAX_BODY = 64 * 1024
SIGNED = ("msg_signature", "timestamp", "nonce")


class Rejected(Exception):
    """A callback refused: the HTTP status and a short reason for the answer's body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class CallbackCrypto:
    """The app's callback token and EncodingAESKey, for one corp."""

    token: str
    aes_key: str
    corp_id: str

    def __post_init__(self) -> None:
        self._crypto = WeChatCrypto(self.token, self.aes_key, self.corp_id)

    def verify_url(self, query: dict[str, str]) -> str:
        """The decrypted echostr of a URL verification GET."""
        signature, timestamp, nonce, echo = (
            query.get(name, "") for name in ("msg_signature", "timestamp", "nonce", "echostr")
        )
        if not (signature and timestamp and nonce and echo):
            raise Rejected(400, "msg_signature, timestamp, nonce and echostr are required")
        return str(self._open(lambda: self._crypto.check_signature(signature, timestamp, nonce, echo)))

    def open(self, query: dict[str, str], body: bytes) -> dict[str, Any]:
        """The plaintext fields of an encrypted POST (FromUserName, MsgType, Event, ...)."""
        signature, timestamp, nonce = (
            query.get(name, "") for name in ("msg_signature", "timestamp", "nonce")
        )
        if not (signature and timestamp and nonce):
            raise Rejected(400, "msg_signature, timestamp and nonce are required")
        if len(body) > MAX_BODY:
            raise Rejected(413, "body too large")
        try:
            outer = xmltodict.parse(body)["xml"]
            encrypted = str(outer["Encrypt"])
        except (ExpatError, KeyError, TypeError, ValueError) as error:
            raise Rejected(400, "not a WeCom callback (XML with Encrypt)") from error
        plain = self._open(
            lambda: self._crypto.decrypt_message({"Encrypt": encrypted}, signature, timestamp, nonce)
        )
        plain = clean_text(str(plain))  # XML refuses NUL and the C0 controls a member may type
        try:
            fields = xmltodict.parse(plain)["xml"]
            if not isinstance(fields, dict) or not fields.get("MsgType"):
                raise ValueError("no MsgType")
            parse_message(plain)  # wechatpy's own parsing must accept it too
        except (ExpatError, KeyError, TypeError, ValueError) as error:
            raise Rejected(400, "the decrypted message is not WeCom XML") from error
        return {key: value for key, value in fields.items() if isinstance(value, str | type(None))}

    def _open(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except InvalidSignatureException as error:
            raise Rejected(403, "bad signature") from error
        except InvalidCorpIdException as error:
            raise Rejected(403, "wrong corp id") from error
        except (binascii.Error, struct.error, ValueError, UnicodeDecodeError, IndexError) as error:
            raise Rejected(400, "cannot decrypt") from error
