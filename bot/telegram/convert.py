"""Between PTB objects and the channel-free messages."""

from __future__ import annotations

from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.messages import Button, Inbound, IncomingFile
from storage.enums import Channel

MAX_TEXT = 4096  # Telegram's limit for one message


def inbound(update: Update, now: datetime) -> Inbound | None:
    """The Inbound of a message or a button press; None for anything else (edits, joins...)."""
    query = update.callback_query
    if query is not None:
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        return Inbound(
            Channel.TELEGRAM,
            str(chat_id),
            str(query.from_user.id),
            now,
            action=query.data or "",
            user_name=query.from_user.full_name,
            language=query.from_user.language_code,
        )
    message = update.message
    if message is None or message.from_user is None:
        return None
    return Inbound(
        Channel.TELEGRAM,
        str(message.chat.id),
        str(message.from_user.id),
        now,
        text=message.text or message.caption,
        file=_file(update),
        user_name=message.from_user.full_name,
        language=message.from_user.language_code,
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


def keyboard(buttons: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    """Inline keyboard rows for our buttons."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.action) for b in row] for row in buttons]
    )


def fit(text: str) -> str:
    """Cut a text to Telegram's limit (our texts are short; descriptions are capped earlier)."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
