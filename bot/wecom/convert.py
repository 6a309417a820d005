"""Between WeCom's callback messages and API bodies and the channel-free messages."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from handlers.messages import Button, Inbound, IncomingFile, Outbound
from storage.enums import Channel

MAX_BYTES = 2048  # a text or markdown message
MAX_CARD_BUTTONS = 6  # a button_interaction card
#: The app menu's click keys and the command each one stands for.
MENU = {"report": "/report", "my": "/my", "help": "/help"}


def inbox_key(message: dict[str, Any]) -> str:
    """What makes a callback unique across WeCom's retries: MsgId for a message; for an event
    (they have none) the member, the second it happened, the event, its key and — for a card
    press — its response code, so two quick presses of one button are two presses."""
    if message.get("MsgId"):
        return f"msg:{message['MsgId']}"
    names = ("FromUserName", "CreateTime", "Event", "EventKey", "ResponseCode")
    identity = "\0".join(str(message.get(name) or "") for name in names)
    return "ev:" + hashlib.sha256(identity.encode()).hexdigest()  # fits the key column whatever the key


def inbound(message: dict[str, Any], received_at: datetime) -> Inbound | None:
    """The Inbound of a decrypted callback; None for what needs no answer (entering the app...)."""
    user = str(message.get("FromUserName") or "")
    if not user:
        return None
    kind = str(message.get("MsgType") or "").lower()
    sent = _created(message.get("CreateTime"), received_at)

    def of(**values: Any) -> Inbound:
        return Inbound(Channel.WECOM, user, user, sent, received_at=received_at, **values)

    if kind == "text":
        return of(text=str(message.get("Content") or ""))
    if kind == "image":
        return of(file=IncomingFile("photo", str(message.get("MediaId") or ""), "image/jpeg"))
    if kind == "voice":
        return of(file=IncomingFile("voice", str(message.get("MediaId") or ""), "audio/amr"))
    if kind == "location":  # the place, as the reporter would type it
        return of(
            text=str(message.get("Label") or f"{message.get('Location_X')},{message.get('Location_Y')}")
        )
    if kind != "event":
        return None
    event, key = str(message.get("Event") or "").lower(), str(message.get("EventKey") or "")
    if event == "click" and key in MENU:
        return of(text=MENU[key])
    if event == "template_card_event" and key:
        return of(
            action=key,
            message_ref=str(message.get("TaskId") or "") or None,
            card_token=str(message.get("ResponseCode") or "") or None,
        )
    return None


def _created(value: object, fallback: datetime) -> datetime:
    """CreateTime (seconds since 1970) as a UTC time; ``fallback`` when it is missing or absurd."""
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback


def split_text(text: str, limit: int = MAX_BYTES) -> list[str]:
    """Pieces of at most ``limit`` UTF-8 bytes, cut at line ends where possible."""
    pieces, current = [], ""
    for line in _short_lines(text, limit):
        if current and len((current + line).encode()) > limit:
            pieces.append(current)
            current = ""
        current += line
    pieces.append(current)
    return [piece.rstrip("\n") for piece in pieces if piece.strip()] or [text]


def _short_lines(text: str, limit: int) -> Iterator[str]:
    """The lines of ``text`` (ends kept), a line longer than ``limit`` bytes cut by characters."""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > limit:
            head = line.encode()[:limit].decode(errors="ignore")  # never half a character
            yield head
            line = line[len(head) :]
        if line:
            yield line


def bodies(message: Outbound, task_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The (msgtype, body) pairs that carry an Outbound: text pieces, or cards of six buttons
    (``task_id``: the first card's, when it replaces a sent card)."""
    if not message.buttons:
        return [("text", {"content": piece}) for piece in split_text(message.text)]
    title, _, rest = message.text.partition("\n")
    buttons = [button for row in message.buttons for button in row]
    group = uuid.uuid4().hex  # the cards of one message share it: task ids dd-GROUP-1, dd-GROUP-2...
    cards = []
    for first in range(0, len(buttons), MAX_CARD_BUTTONS):
        number = first // MAX_CARD_BUTTONS + 1
        card: dict[str, Any] = {
            "card_type": "button_interaction",
            "task_id": task_id if task_id and number == 1 else f"dd-{group}-{number}",
            "main_title": {"title": title},
            "button_list": [_button(b) for b in buttons[first : first + MAX_CARD_BUTTONS]],
        }
        if rest and first == 0:  # the text once; further cards carry the title with more choices
            card["sub_title_text"] = rest
        cards.append(("template_card", card))
    return cards


def _button(button: Button) -> dict[str, Any]:
    return {"text": button.label, "style": 1, "key": button.action}


def menu() -> list[dict[str, Any]]:
    """The app menu: 报修 / 我的工单 / 帮助."""
    return [
        {"type": "click", "name": "报修", "key": "report"},
        {"type": "click", "name": "我的工单", "key": "my"},
        {"type": "click", "name": "帮助", "key": "help"},
    ]
