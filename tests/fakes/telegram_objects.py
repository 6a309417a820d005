"""Objects, request decoding and validation rules of the fake Telegram Bot API.

Everything here is plain data and pure functions; :mod:`tests.fakes.telegram_api` holds the
server and its state. Error texts are the ones the real Bot API answers with.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]
#: Rows of inline buttons as (label, callback_data); callback_data is None for URL and other buttons.
Buttons = list[list[tuple[str, str | None]]]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
#: Most buttons an inline keyboard may have in total, over all its rows.
MAX_INLINE_BUTTONS = 100
MAX_CALLBACK_ANSWER = 200
MAX_DOWNLOAD = 20 * 1024 * 1024

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
#: More than MAX_INLINE_BUTTONS buttons in an inline keyboard.
MARKUP_TOO_LONG = "Bad Request: reply markup is too long"
#: Descriptions of injected failures when the test gives none.
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, status: int, description: str, parameters: JsonDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JsonDict:
        """The JSON body the real API sends for this error."""
        body: JsonDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> ApiError:
    """A 400 answer with the API's "Bad Request: " prefix."""
    return ApiError(400, f"Bad Request: {reason}")


def too_many_requests(retry_after: int) -> ApiError:
    """A 429 flood-control answer."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


@dataclass(frozen=True)
class Upload:
    """A file uploaded in a multipart request."""

    filename: str
    content_type: str
    content: bytes


@dataclass
class Call:
    """One request to the API, successful or not; ``params`` are decoded (ints, bools, JSON)."""

    method: str
    params: JsonDict
    status: int | None = None
    description: str | None = None


@dataclass
class Sent:
    """One successful bot action on a message: send*, edit* or deleteMessage."""

    method: str
    chat_id: int
    message_id: int
    text: str | None
    buttons: Buttons = field(default_factory=list)
    parse_mode: str | None = None
    file_id: str | None = None


@dataclass
class AnsweredCallback:
    """One successful answerCallbackQuery."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass
class Webhook:
    """The webhook as set with setWebhook."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    ip_address: str | None = None
    has_custom_certificate: bool = False
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending: int) -> JsonDict:
        """The WebhookInfo object of getWebhookInfo."""
        info: JsonDict = {
            "url": self.url,
            "has_custom_certificate": self.has_custom_certificate,
            "pending_update_count": pending,
            "max_connections": self.max_connections,
        }
        if self.ip_address:
            info["ip_address"] = self.ip_address
        if self.allowed_updates:
            info["allowed_updates"] = self.allowed_updates
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        return info


@dataclass
class ChatMessage:
    """A message in a chat, as the fake stores it; edits change it in place."""

    message_id: int
    chat: JsonDict
    sender: JsonDict
    date: int
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    entities: list[JsonDict] = field(default_factory=list)
    #: "photo" (a list of PhotoSize), "voice" or "document" (one object), or None for text.
    media_kind: str | None = None
    media: Any = None
    reply_markup: JsonDict | None = None
    reply_to: ChatMessage | None = None
    edited: int = 0
    edit_date: int | None = None

    @property
    def chat_id(self) -> int:
        """The id of the chat the message is in."""
        chat_id: int = self.chat["id"]
        return chat_id

    @property
    def from_bot(self) -> bool:
        """Whether the bot sent this message."""
        return bool(self.sender.get("is_bot"))

    @property
    def buttons(self) -> Buttons:
        """The inline keyboard as (label, callback_data) rows."""
        return buttons_of(self.reply_markup)

    @property
    def file_id(self) -> str | None:
        """The file_id of the photo (largest size), voice or document, if any."""
        if self.media is None:
            return None
        media = self.media[-1] if isinstance(self.media, list) else self.media
        return str(media["file_id"])

    def to_api(self, *, with_reply: bool = True) -> JsonDict:
        """The Message object of the Bot API."""
        message: JsonDict = {
            "message_id": self.message_id,
            "from": self.sender,
            "chat": self.chat,
            "date": self.date,
        }
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        if with_reply and self.reply_to is not None:
            message["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        optional: JsonDict = {
            "text": self.text,
            "caption": self.caption,
            "reply_markup": self.reply_markup,
        }
        if self.media_kind is not None:
            optional[self.media_kind] = self.media
        message.update({k: v for k, v in optional.items() if v is not None})
        if self.entities:
            message["caption_entities" if self.text is None else "entities"] = self.entities
        return message


@dataclass(frozen=True)
class StoredFile:
    """A file the fake can serve: registered by the test, sent by a user or uploaded by the bot."""

    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes

    def to_api(self) -> JsonDict:
        """The File object of getFile."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.content),
            "file_path": self.file_path,
        }


@dataclass
class FailureRule:
    """An injected answer for the next call(s) of one method."""

    status: int | None
    description: str | None
    retry_after: int | None
    delay: float
    remaining: int

    def error(self) -> ApiError | None:
        """The error to answer with; None when the rule only delays a normal answer."""
        if self.status is None:
            return None
        if self.status == 429:
            return too_many_requests(self.retry_after or 1)
        description = self.description or DEFAULT_DESCRIPTIONS.get(self.status, "Error")
        parameters = {"retry_after": self.retry_after} if self.retry_after else None
        return ApiError(self.status, description, parameters)


# ---------------------------------------------------------------- request decoding


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_INT_PARAMS = _words(
    "message_id offset limit max_connections cache_time message_thread_id reply_to_message_id user_id"
)
_FLOAT_PARAMS = frozenset({"timeout"})
_BOOL_PARAMS = _words(
    "drop_pending_updates show_alert disable_notification protect_content allow_sending_without_reply"
    " disable_web_page_preview has_spoiler show_caption_above_media allow_paid_broadcast"
)
_JSON_PARAMS = _words(
    "reply_markup allowed_updates commands scope reply_parameters link_preview_options entities"
    " caption_entities media"
)
_INTEGER = re.compile(r"-?\d+")


def _as_int(value: object) -> object:
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return value


def _as_bool(value: object) -> object:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value


def decode_params(raw: Mapping[str, object]) -> JsonDict:
    """Decode form fields the way the API does: JSON-typed fields parsed, ints and bools converted.

    Values already typed (a JSON request body) are kept; undecodable ints stay strings, so that
    the method answers as the API does (e.g. "chat not found").
    """
    params: JsonDict = {}
    for name, value in raw.items():
        if name in _JSON_PARAMS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                what = "reply keyboard markup" if name == "reply_markup" else name
                raise bad_request(f"can't parse {what} JSON object") from None
        elif name == "chat_id" or name in _INT_PARAMS:
            value = _as_int(value)
        elif name in _BOOL_PARAMS:
            value = _as_bool(value)
        elif name in _FLOAT_PARAMS and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                value = 0.0
        params[name] = value
    return params


# ---------------------------------------------------------------- reply markup

_INLINE_ACTIONS = _words(
    "url callback_data web_app login_url switch_inline_query switch_inline_query_current_chat"
    " switch_inline_query_chosen_chat copy_text callback_game pay"
)
_URL_SCHEMES = ("http://", "https://", "tg://")


def _check_inline_button(button: object) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
    if not _INLINE_ACTIONS & button.keys():
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not url.startswith(_URL_SCHEMES):
            raise bad_request("BUTTON_URL_INVALID")


def _check_inline_size(rows: list[list[object]]) -> None:
    """At most :data:`MAX_INLINE_BUTTONS` buttons over all rows (a row has no limit of its own).

    Telegram is also reported to refuse markup over about 10 KB with this error; that is not
    checked, as what it measures (Telegram's internal encoding, not the JSON sent) is not published.
    """
    if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS:
        raise ApiError(400, MARKUP_TOO_LONG)


def parse_reply_markup(value: object) -> JsonDict | None:
    """Validate a decoded reply_markup; return it when it is an inline keyboard (the only kind
    a Message echoes back), None for reply keyboards, ReplyKeyboardRemove and ForceReply."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in value:
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                _check_inline_button(button)
        _check_inline_size(rows)
        return {"inline_keyboard": rows}
    if {"keyboard", "remove_keyboard", "force_reply"} & value.keys():
        return None
    raise bad_request("can't parse reply keyboard markup JSON object")


def buttons_of(markup: JsonDict | None) -> Buttons:
    """The (label, callback_data) rows of an inline keyboard."""
    if not markup:
        return []
    return [
        [(str(button["text"]), button.get("callback_data")) for button in row]
        for row in markup.get("inline_keyboard", [])
    ]


# ---------------------------------------------------------------- text and formatting

_HTML_TAGS = _words("b strong i em u ins s strike del span tg-spoiler a tg-emoji code pre blockquote")
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(\s[^<>]*)?>")
_MARKDOWN_V2_RESERVED = frozenset("#+-={}.!()")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _entities_error(reason: str) -> ApiError:
    return bad_request(f"can't parse entities: {reason}")


def html_plain_text(text: str) -> str:
    """Check Telegram HTML markup and return the text without it (entities unescaped)."""
    out: list[str] = []
    open_tags: list[str] = []
    pos = 0
    while (start := text.find("<", pos)) >= 0:
        out.append(text[pos:start])
        match = _TAG.match(text, start)
        offset = _byte_offset(text, start)
        if match is None:
            raise _entities_error(f'Unsupported start tag "" at byte offset {offset}')
        name = match.group(2).lower()
        if match.group(1):
            if not open_tags:
                raise _entities_error(f'Unexpected end tag "{name}" at byte offset {offset}')
            expected = open_tags.pop()
            if expected != name:
                raise _entities_error(
                    f'Unmatched end tag at byte offset {offset}, expected "</{expected}>", found "</{name}>"'
                )
        elif name in _HTML_TAGS:
            open_tags.append(name)
        else:
            raise _entities_error(f'Unsupported start tag "{name}" at byte offset {offset}')
        pos = match.end()
    if open_tags:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    out.append(text[pos:])
    return html.unescape("".join(out))


def check_markdown_v2(text: str) -> None:
    """Reject the MarkdownV2 mistake the API rejects most: a reserved character left unescaped.

    Markup pairs (``*bold*``, ``_italic_``, links, code) are not checked for balance.
    """
    i, code, in_url = 0, "", False
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
        elif code and text.startswith(code, i):
            i += len(code)
            code = ""
        elif code:
            i += 1
        elif in_url:
            in_url = char != ")"
            i += 1
        elif char == "`":
            code = "```" if text.startswith("```", i) else "`"
            i += len(code)
        elif text.startswith("](", i):
            in_url = True
            i += 2
        elif char == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
        elif text.startswith("||", i):
            i += 2
        elif char in _MARKDOWN_V2_RESERVED or char in ">|":
            raise _entities_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            i += 1


def visible_text(text: str, parse_mode: str | None) -> str:
    """Validate formatting and return the text as a user sees it (used for length checks)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return html_plain_text(text)
    if mode == "markdownv2":
        check_markdown_v2(text)
    return text


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


_COMMAND_ENTITY = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@])")


def command_entities(text: str) -> list[JsonDict]:
    """The bot_command entities Telegram marks in an incoming text."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match.group()),
        }
        for match in _COMMAND_ENTITY.finditer(text)
    ]


# ---------------------------------------------------------------- bot commands

_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE = re.compile(r"[a-z]{2}")


def check_commands(value: object) -> list[JsonDict]:
    """Validate the commands of setMyCommands."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise bad_request("can't parse commands JSON object")
    if len(value) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    commands: list[JsonDict] = []
    for item in value:
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not _COMMAND_NAME.fullmatch(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        commands.append({"command": command, "description": description})
    return commands


def check_language_code(value: object) -> str:
    """The language_code of the *MyCommands methods: empty or two ISO 639-1 letters."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise bad_request("invalid language code specified")
    return value


def scope_key(scope: object) -> str:
    """A canonical key for a BotCommandScope (default scope when absent)."""
    if scope is None:
        return json.dumps({"type": "default"})
    if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
        raise bad_request("can't parse BotCommandScope JSON object")
    return json.dumps(scope, sort_keys=True)
