"""The seam between platforms and logic: what comes in from a chat and what goes out.

An adapter (bot/telegram, bot/webchat, ...) turns a platform update into an ``Inbound``
and delivers each ``Outbound`` the handlers return. Handlers never call a platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    at: datetime
    text: str | None = None
    action: str | None = None
    file: IncomingFile | None = None
    user_name: str = ""
    language: str | None = None  # the platform's language hint ("zh-hans", "en", ...)
    #: The platform's handle on the message whose button was pressed, when the platform lets
    #: a bot update that message in place afterwards (WeCom's response code).
    card: str | None = None


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


@dataclass(frozen=True)
class Outbound:
    """A message to send: text with optional rows of buttons."""

    to: Address
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    #: Who it is for, when known: a refused delivery is reported to that person's supervisors.
    person_id: int | None = None
    #: Set: not a new message but the new caption of the pressed card with this handle
    #: (``Inbound.card``): what was done, by whom, when.
    replaces: str | None = None


@dataclass
class Reply:
    """What handling one inbound produced: messages, and a short notice for a pressed button."""

    messages: list[Outbound] = field(default_factory=list)
    notice: str | None = None

    def say(
        self,
        to: Address,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
        person_id: int | None = None,
        replaces: str | None = None,
    ) -> None:
        """Add a message (or, with ``replaces``, a new caption for a pressed card)."""
        self.messages.append(Outbound(to, text, buttons, person_id, replaces))
