"""Between Telegram's updates and API calls and the channel-free messages."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.messages import Button, Buttons, Inbound, IncomingFile
from storage.enums import Channel

MAX_TEXT = 4096  # Telegram's limit for one message (UTF-16 code units)
MAX_BUTTONS = 100  # Telegram's limit for one inline keyboard


MAX_ID = 2**63  # Telegram's ids fit a signed 64-bit integer
MAX_FIELD = 4096


def _id(value: object) -> bool:
    return type(value) is int and -MAX_ID < value < MAX_ID


def _text(value: object, longest: int = MAX_FIELD) -> bool:
    return value is None or (type(value) is str and len(value) <= longest)


def _sane(update: Update) -> bool:
    """Whether what we read of an update has the types Telegram gives it: python-telegram-bot
    does not check, and a forged update may carry a list for a text or a 70-digit id."""
    query, message = update.callback_query, update.message
    if query is not None:
        user, shown = query.from_user, query.message
        chat = None if shown is None else shown.chat
        fields = type(query.id) is str and len(query.id) <= 128 and _text(query.data)
        fields = fields and (shown is None or _id(shown.message_id))
    elif message is not None and message.from_user is not None:
        user, chat = message.from_user, message.chat
        fields = _text(message.text) and _text(message.caption)
    else:
        return True  # nothing of it is read
    people = _id(user.id) and _text(user.first_name, 256) and _text(user.last_name, 256)
    return bool(fields and people and _text(user.language_code, 35) and (chat is None or _id(chat.id)))


def inbound(update: Update, received_at: datetime) -> Inbound | None:
    """The Inbound of a message or a button press; None for anything else (edits, joins...)."""
    if not _sane(update):
        return None
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
    if message is None or message.from_user is None or message.chat.type != "private":
        return None  # the bot talks with people one to one; a group is not for it
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
