"""The seam between platforms and logic: what comes in from a chat and what goes out.

An adapter (bot/telegram, bot/webchat, ...) turns a platform update into an ``Inbound``;
handlers answer with outbox rows (handlers/outgoing.py), which the sender turns into
``Outbound`` messages for the channel. Handlers never call a platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.enums import Channel

#: Telegram's limit for callback_data; every action code must fit it.
MAX_ACTION_BYTES = 64


@dataclass(frozen=True)
class IncomingFile:
    """A photo, voice note or document sent with a message (the bytes stay on the platform)."""

    kind: str  # "photo", "voice", "document"
    file_id: str
    mime_type: str = "application/octet-stream"
    size: int = 0
    name: str = ""


@dataclass(frozen=True)
class Inbound:
    """One thing a person did in a chat: typed text, sent a file, or pressed a button."""

    channel: Channel
    chat_id: str
    user_id: str
    #: When the person sent it (the platform's own time, never later than ``received_at``):
    #: the clocks of a report count from here.
    at: datetime
    text: str | None = None
    action: str | None = None
    file: IncomingFile | None = None
    user_name: str = ""
    language: str | None = None  # the platform's language hint ("zh-hans", "en", ...)
    #: The platform's reference to the message whose button was pressed (Telegram message id,
    #: WeCom task id, web chat line id).
    message_ref: str | None = None
    #: The press must be answered with this (Telegram's callback query id).
    answer_token: str | None = None
    #: A one-time right to change the pressed card (WeCom's response code).
    card_token: str | None = None
    #: When the service received it (None: the same as ``at``).
    received_at: datetime | None = None

    @property
    def address(self) -> Address:
        """The chat it came from."""
        return Address(self.channel, self.chat_id)


@dataclass(frozen=True)
class Button:
    """A choice under a message; ``action`` is a short code (at most 64 bytes)."""

    label: str
    action: str

    def __post_init__(self) -> None:
        if len(self.action.encode()) > MAX_ACTION_BYTES:
            raise ValueError(f"action code too long for a button: {self.action!r}")


@dataclass(frozen=True)
class Address:
    """Where a message goes: a chat on a channel."""

    channel: Channel
    chat_id: str


Buttons = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Outbound:
    """A message for a channel to send: text with optional rows of buttons.

    ``kind`` is "text" (a new message), "card" (a ticket's card, sent anew), "edit" (the sent
    message ``handle`` gets this content) or "answer" (the answer to a press: ``token``).
    """

    to: Address
    text: str
    buttons: Buttons = ()
    #: Who it is for, when known: a refused delivery is reported to that person's supervisors.
    person_id: int | None = None
    kind: str = "text"
    handle: str | None = None
    token: str | None = None
