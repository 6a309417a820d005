"""Between Telegram's updates and API calls and the channel-free messages."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.messages import Button, Buttons, Inbound, IncomingFile
from storage.enums import Channel

MAX_TEXT = 4096  # Telegram's limit for one message (UTF-16 code units)
MAX_BUTTONS = 100  # Telegram's limit for one inline keyboard


def inbound(update: Update, received_at: datetime) -> Inbound | None:
    """The Inbound of a message or a button press; None for anything else (edits, joins...)."""
    query = update.callback_query
    if query is not None:
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        return Inbound(
            Channel.TELEGRAM,
            str(chat_id),
            str(query.from_user.id),
            received_at,  # a press has no time of its own
            action=query.data or "",
            user_name=query.from_user.full_name,
            language=query.from_user.language_code,
            message_ref=None if message is None else str(message.message_id),
            answer_token=query.id,
            received_at=received_at,
        )
    message = update.message
    if message is None or message.from_user is None:
        return None
    sent = message.date.astimezone(UTC) if message.date else received_at
    return Inbound(
        Channel.TELEGRAM,
        str(message.chat.id),
        str(message.from_user.id),
        sent,
        text=message.text or message.caption,
        file=_file(update),
        user_name=message.from_user.full_name,
        language=message.from_user.language_code,
        received_at=received_at,
    )


def _file(update: Update) -> IncomingFile | None:
    message = update.message
    assert message is not None
    if message.photo:
        photo = message.photo[-1]  # the largest size
        return IncomingFile("photo", photo.file_id, "image/jpeg", photo.file_size or 0)
    if message.voice:
        voice = message.voice
        return IncomingFile("voice", voice.file_id, voice.mime_type or "audio/ogg", voice.file_size or 0)
    if message.document:
        document = message.document
        return IncomingFile(
            "document",
            document.file_id,
            document.mime_type or "application/octet-stream",
            document.file_size or 0,
            document.file_name or "",
        )
    return None


def keyboard(buttons: Buttons) -> InlineKeyboardMarkup | None:
    """Inline keyboard rows for our buttons."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.action) for b in row] for row in buttons]
    )


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def pieces(text: str, buttons: Buttons) -> list[tuple[str, Buttons]]:
    """The messages one Outbound takes: its text in pieces within 4,096, cut at line ends where
    possible, and its button rows in keyboards of at most 100 buttons (the buttons go under the
    last piece of text; more keyboards come with the text's first line)."""
    texts = _split(text or "…")
    keyboards: list[list[tuple[Button, ...]]] = [[]]
    for row in buttons:
        for start in range(0, len(row), MAX_BUTTONS):
            part = row[start : start + MAX_BUTTONS]
            if sum(len(r) for r in keyboards[-1]) + len(part) > MAX_BUTTONS:
                keyboards.append([])
            keyboards[-1].append(part)
    out: list[tuple[str, Buttons]] = [(piece, ()) for piece in texts[:-1]]
    out.append((texts[-1], tuple(keyboards[0])))
    title = texts[0].split("\n", 1)[0][:200]
    out += [(title, tuple(keyboard_rows)) for keyboard_rows in keyboards[1:]]
    return out


def _split(text: str) -> list[str]:
    found, current = [], ""
    for line in text.splitlines(keepends=True):
        while _units(line) > MAX_TEXT:  # one line too long: cut it by characters
            head = line[: MAX_TEXT // 2]
            if current:
                found.append(current)
                current = ""
            found.append(head)
            line = line[len(head) :]
        if current and _units(current + line) > MAX_TEXT:
            found.append(current)
            current = ""
        current += line
    found.append(current)
    return [piece.rstrip("\n") or "…" for piece in found if piece.strip()] or ["…"]
