"""State of the fake Telegram Bot API and its methods other than getUpdates.

:class:`BotApiState` keeps chats, messages, files, commands, the webhook and the update queue, and
carries out the Bot API methods synchronously (the server calls them under its lock).
:class:`tests.fakes.telegram_api.FakeBotApi` adds the HTTP server and the test-side controls.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.telegram_objects import (
    MAX_CALLBACK_ANSWER,
    MAX_CAPTION,
    MAX_DOWNLOAD,
    MAX_TEXT,
    NOT_MODIFIED,
    QUERY_INVALID,
    AnsweredCallback,
    ApiError,
    ChatMessage,
    JsonDict,
    Sent,
    StoredFile,
    Upload,
    Webhook,
    bad_request,
    check_commands,
    check_language_code,
    parse_reply_markup,
    scope_key,
    visible_text,
)

BOT_USERNAME = "dutydesk_test_bot"
DEFAULT_TOKEN = "123456789:AAF-dutydesk-test-token"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_UPDATE_TYPES_BY_DEFAULT = frozenset({"message", "callback_query"})


@dataclass(frozen=True)
class Described:
    """A result that comes with a ``description`` (setWebhook, deleteWebhook)."""

    result: object
    description: str


class BotApiState:
    """What the fake Bot API knows, and the methods that read and change it."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, clock: Callable[[], float] = time.time) -> None:
        bot_id, colon, _ = token.partition(":")
        if not colon or not bot_id.isdigit():
            raise ValueError("a bot token looks like '123456:ABC-...'")
        self.token = token
        self.clock = clock
        #: The getMe answer.
        self.bot: JsonDict = {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": "DutyDesk Test",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._sender: JsonDict = {k: self.bot[k] for k in ("id", "is_bot", "first_name", "username")}
        self._wakeup = asyncio.Event()
        self._users: dict[int, JsonDict] = {}
        self._chats: dict[int, JsonDict] = {}
        self._messages: dict[int, dict[int, ChatMessage]] = {}
        self._last_message_id: dict[int, int] = {}
        self._updates: list[JsonDict] = []
        self._update_ids = itertools.count(1)
        self._allowed_updates: list[str] = []
        self._files: dict[str, StoredFile] = {}
        self._file_numbers = itertools.count(1)
        self._open_queries: set[str] = set()
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._webhook: Webhook | None = None
        #: Lower-case name → (canonical name, method); the API's method names are case-insensitive.
        self._methods: dict[str, tuple[str, Callable[[JsonDict], object]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": lambda _: self.bot,
                "getUpdates": lambda _: [],  # the server answers it itself (long polling)
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "sendMessage": self._send_message,
                "sendPhoto": lambda p: self._send_file(p, "photo"),
                "sendDocument": lambda p: self._send_file(p, "document"),
                "sendChatAction": self._send_chat_action,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "getFile": self._get_file,
            }.items()
        }
        #: Every successful send*, edit* and deleteMessage.
        self.sent: list[Sent] = []
        #: Every successful answerCallbackQuery.
        self.answered_callbacks: list[AnsweredCallback] = []

    def add_file(self, file_id: str, content: bytes, *, file_path: str | None = None) -> str:
        """Make a file_id known with its bytes (getFile, then download); return its file_path."""
        number = next(self._file_numbers)
        path = file_path or f"documents/file_{number}"
        unique = "AQAD" + hashlib.sha1(file_id.encode()).hexdigest()[:12]
        self._files[file_id] = StoredFile(file_id, unique, path, content)
        return path

    def _wake(self) -> None:
        """Wake every waiter (getUpdates, wait_until): a new Event per round, so none misses one."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    # ------------------------------------------------------------------ state helpers

    def _require_webhook(self) -> Webhook:
        if self._webhook is None:
            raise RuntimeError("no webhook is set (setWebhook)")
        return self._webhook

    def _enqueue(self, kind: str, payload: JsonDict) -> JsonDict:
        update = {"update_id": next(self._update_ids), kind: payload}
        allowed = self._allowed_updates or _UPDATE_TYPES_BY_DEFAULT
        if kind in allowed:  # Telegram does not even create updates of types not allowed
            self._updates.append(update)
            self._wake()
        return update

    def _new_message(self, chat: JsonDict, sender: JsonDict, **fields: Any) -> ChatMessage:
        chat_id: int = chat["id"]
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        message = ChatMessage(message_id, chat, sender, int(self.clock()), **fields)
        self._messages.setdefault(chat_id, {})[message_id] = message
        return message

    def _known_file(self, file_id: str, folder: str, suffix: str) -> StoredFile:
        if file_id not in self._files:
            self.add_file(file_id, b"", file_path=f"{folder}/file_{next(self._file_numbers)}{suffix}")
        return self._files[file_id]

    def _photo_size(self, file_id: str) -> JsonDict:
        stored = self._known_file(file_id, "photos", ".jpg")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": 1280,
            "height": 960,
            "file_size": len(stored.content),
        }

    def _record(self, method: str, message: ChatMessage) -> None:
        text = message.text if message.text is not None else message.caption
        self.sent.append(
            Sent(
                method,
                message.chat_id,
                message.message_id,
                text,
                message.buttons,
                message.parse_mode,
                message.file_id,
            )
        )

    def _chat(self, p: JsonDict) -> JsonDict:
        chat_id = p.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        chat = None
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            chat = self._chats.get(chat_id)
        elif isinstance(chat_id, str) and chat_id.startswith("@"):
            chat = next((c for c in self._chats.values() if c.get("username") == chat_id[1:]), None)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _own_message(self, p: JsonDict, missing: str) -> ChatMessage:
        if p.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._chat(p)
        message_id = p.get("message_id")
        message = self._messages.get(chat["id"], {}).get(message_id) if isinstance(message_id, int) else None
        if message is None:
            raise bad_request(missing)
        return message

    def _checked_text(self, p: JsonDict, name: str = "text") -> tuple[str | None, str | None]:
        """(text, parse_mode) of a text or caption, validated as the API does."""
        text, parse_mode = p.get(name), p.get("parse_mode") or None
        if text is None and name == "caption":
            return None, None
        shown = visible_text(text, parse_mode) if isinstance(text, str) else ""
        if not isinstance(text, str) or not shown.strip():
            raise bad_request("message text is empty" if name == "text" else "message caption is empty")
        if name == "text" and len(shown) > MAX_TEXT:
            raise bad_request("message is too long")
        if name == "caption" and len(shown) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        return text, parse_mode

    def _reply_target(self, chat: JsonDict, p: JsonDict) -> ChatMessage | None:
        reply = p.get("reply_parameters")
        if not isinstance(reply, dict):
            reply = {k: p.get(k) for k in ("allow_sending_without_reply",)}
            reply["message_id"] = p.get("reply_to_message_id")
        if reply.get("message_id") is None:
            return None
        target = self._messages.get(chat["id"], {}).get(reply["message_id"])
        if target is None and not reply.get("allow_sending_without_reply"):
            raise bad_request("message to be replied not found")
        return target

    # ------------------------------------------------------------------ methods

    def _set_webhook(self, p: JsonDict) -> Described:
        url = p.get("url") or ""
        if not url:
            return self._delete_webhook(p)
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token") or None
        if secret is not None and not (isinstance(secret, str) and _SECRET.fullmatch(secret)):
            raise bad_request("secret token contains unallowed characters")
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        if p.get("drop_pending_updates"):
            self._updates.clear()
        previous = self._webhook
        unchanged = previous is not None and (previous.url, previous.secret_token) == (url, secret)
        max_connections = p.get("max_connections")
        self._webhook = Webhook(
            url=url,
            secret_token=secret,
            max_connections=max_connections if isinstance(max_connections, int) else 40,
            allowed_updates=list(self._allowed_updates) or None,
            ip_address=p.get("ip_address"),
            has_custom_certificate="certificate" in p,
        )
        self._wake()  # a pending getUpdates now conflicts
        return Described(True, "Webhook is already set" if unchanged else "Webhook was set")

    def _delete_webhook(self, p: JsonDict) -> Described:
        if p.get("drop_pending_updates"):
            self._updates.clear()
        existed, self._webhook = self._webhook is not None, None
        return Described(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    def _get_webhook_info(self, _: JsonDict) -> JsonDict:
        if self._webhook is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}
        return self._webhook.info(len(self._updates))

    def _set_my_commands(self, p: JsonDict) -> bool:
        commands = check_commands(p.get("commands"))
        key = (scope_key(p.get("scope")), check_language_code(p.get("language_code")))
        if commands:
            self._commands[key] = commands
        else:
            self._commands.pop(key, None)
        return True

    def _get_my_commands(self, p: JsonDict) -> list[JsonDict]:
        key = (scope_key(p.get("scope")), check_language_code(p.get("language_code")))
        return self._commands.get(key, [])

    def _delete_my_commands(self, p: JsonDict) -> bool:
        self._commands.pop((scope_key(p.get("scope")), check_language_code(p.get("language_code"))), None)
        return True

    def _send_message(self, p: JsonDict) -> JsonDict:
        markup = parse_reply_markup(p.get("reply_markup"))
        text, parse_mode = self._checked_text(p)
        chat = self._chat(p)
        reply_to = self._reply_target(chat, p)
        message = self._new_message(
            chat, self._sender, text=text, parse_mode=parse_mode, reply_markup=markup, reply_to=reply_to
        )
        self._record("sendMessage", message)
        return message.to_api()

    def _send_file(self, p: JsonDict, kind: str) -> JsonDict:
        markup = parse_reply_markup(p.get("reply_markup"))
        caption, parse_mode = self._checked_text(p, "caption")
        chat = self._chat(p)
        reply_to = self._reply_target(chat, p)
        value = p.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value.removeprefix("attach://"))
        if isinstance(value, Upload):
            file_id = f"BQACAgIAAxkBAAI-{kind}-{next(self._file_numbers)}"
            folder, suffix = ("photos", ".jpg") if kind == "photo" else ("documents", "")
            self.add_file(
                file_id, value.content, file_path=f"{folder}/file_{next(self._file_numbers)}{suffix}"
            )
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            file_id = f"BQACAgIAAxkBAAI-url-{next(self._file_numbers)}"
            self.add_file(file_id, b"")
        elif isinstance(value, str) and value in self._files:
            file_id = value
        elif not value:
            raise bad_request(f"there is no {kind} in the request")
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        message = self._new_message(
            chat, self._sender, caption=caption, parse_mode=parse_mode, reply_markup=markup, reply_to=reply_to
        )
        stored = self._files[file_id]
        message.media_kind = kind
        if kind == "photo":
            message.media = [self._photo_size(file_id)]
        else:
            name = value.filename if isinstance(value, Upload) else stored.file_path.rsplit("/", 1)[-1]
            message.media = {
                "file_id": file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": name,
                "file_size": len(stored.content),
            }
        self._record(f"send{kind.capitalize()}", message)
        return message.to_api()

    def _send_chat_action(self, p: JsonDict) -> bool:
        self._chat(p)
        if not p.get("action"):
            raise bad_request("action is empty")
        return True

    def _edit_message_text(self, p: JsonDict) -> JsonDict:
        markup = parse_reply_markup(p.get("reply_markup"))
        text, parse_mode = self._checked_text(p)
        message = self._own_message(p, "message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        if (message.text, message.reply_markup) == (text, markup):
            raise ApiError(400, NOT_MODIFIED)
        message.text, message.parse_mode, message.reply_markup = text, parse_mode, markup
        return self._edited("editMessageText", message)

    def _edit_message_reply_markup(self, p: JsonDict) -> JsonDict:
        markup = parse_reply_markup(p.get("reply_markup"))
        message = self._own_message(p, "message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        if message.reply_markup == markup:
            raise ApiError(400, NOT_MODIFIED)
        message.reply_markup = markup
        return self._edited("editMessageReplyMarkup", message)

    def _edited(self, method: str, message: ChatMessage) -> JsonDict:
        message.edited += 1
        message.edit_date = int(self.clock())
        self._record(method, message)
        return message.to_api()

    def _delete_message(self, p: JsonDict) -> bool:
        message = self._own_message(p, "message to delete not found")
        del self._messages[message.chat_id][message.message_id]
        self.sent.append(Sent("deleteMessage", message.chat_id, message.message_id, None))
        return True

    def _answer_callback_query(self, p: JsonDict) -> bool:
        query_id = str(p.get("callback_query_id") or "")
        text = p.get("text") or None
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        if query_id not in self._open_queries:
            raise bad_request(QUERY_INVALID.removeprefix("Bad Request: "))
        self._open_queries.discard(query_id)
        cache_time = p.get("cache_time")
        self.answered_callbacks.append(
            AnsweredCallback(
                query_id,
                None if text is None else str(text),
                bool(p.get("show_alert")),
                p.get("url"),
                cache_time if isinstance(cache_time, int) else None,
            )
        )
        return True

    def _get_file(self, p: JsonDict) -> JsonDict:
        stored = self._files.get(str(p.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        if len(stored.content) > MAX_DOWNLOAD:
            raise bad_request("file is too big")
        return stored.to_api()
