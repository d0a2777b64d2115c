"""In-memory state of the Telegram emulator: bots, users, chats, messages, updates, files.

Everything here is plain Python plus asyncio primitives (no aiohttp). All mutations are
synchronous, so they are atomic with respect to other coroutines on the same event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import mimetypes
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from telegram_emulator.formatting import bot_command_entities

__all__ = [
    "MAX_DOWNLOAD_SIZE",
    "TOKEN_RE",
    "ApiError",
    "BotRecord",
    "CallRecord",
    "CallbackQueryRecord",
    "ChatActionRecord",
    "ChatRecord",
    "ControlError",
    "EmulatorState",
    "Fault",
    "FileRecord",
    "Notifier",
    "StoredMessage",
    "Upload",
    "UserRecord",
    "WebhookConfig",
]

TOKEN_RE = re.compile(r"^(\d+):[A-Za-z0-9_-]{20,}$")
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
# Update types Telegram does not send unless explicitly requested via allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class ApiError(Exception):
    """A Bot API error, answered as ``{"ok": false, "error_code": ..., ...}``."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{error_code}: {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


class ControlError(Exception):
    """A misuse of the control (user-side) API, e.g. clicking a button that does not exist."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class Notifier:
    """Wake every coroutine currently waiting. Check your condition, then ``await wait()``."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, seconds: float | None) -> bool:
        """Return True when notified, False after ``seconds`` (None = no limit)."""
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        if seconds is None:
            await event.wait()
            return True
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                await event.wait()
        except TimeoutError:
            return False
        return True


@dataclass
class Upload:
    """A file part received in a multipart request."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass
class UserRecord:
    id: int
    first_name: str = "User"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def to_api(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    generation: int


@dataclass
class BotRecord:
    token: str
    id: int
    username: str
    first_name: str
    revoked: bool = False
    updates: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 1
    allowed_updates: list[str] | None = None
    webhook: WebhookConfig | None = None
    webhook_generation: int = 0
    last_error_date: int | None = None
    last_error_message: str | None = None
    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    poll_generation: int = 0
    notifier: Notifier = field(default_factory=Notifier)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def sender(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def webhook_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            info["ip_address"] = "127.0.0.1"
            if self.webhook.allowed_updates:
                info["allowed_updates"] = list(self.webhook.allowed_updates)
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message or ""
        return info


@dataclass
class FileRecord:
    file_id: str
    file_unique_id: str
    owner_token: str
    kind: str  # document | photo | voice | audio
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    source_url: str | None = None
    duration: int | None = None
    width: int = 0
    height: int = 0
    performer: str | None = None
    title: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def to_api(self) -> Any:
        base: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.data:
            base["file_size"] = self.size
        if self.kind == "photo":
            return [{**base, "width": self.width, "height": self.height}]
        if self.kind in ("voice", "audio"):
            base["duration"] = self.duration or 0
        if self.kind == "audio":
            if self.performer:
                base["performer"] = self.performer
            if self.title:
                base["title"] = self.title
        if self.kind in ("document", "audio") and self.file_name:
            base["file_name"] = self.file_name
        if self.mime_type:
            base["mime_type"] = self.mime_type
        return base

    def to_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }


@dataclass
class StoredMessage:
    message_id: int
    chat_id: int
    outgoing: bool  # sent by the bot
    date: int
    sender: dict[str, Any]
    text: str | None = None  # raw text as sent (HTML tags included)
    plain_text: str | None = None
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    plain_caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    original_text: str | None = None
    edits: list[str] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False
    file: FileRecord | None = None
    contact: dict[str, Any] | None = None
    reply_to: int | None = None
    link_preview_options: dict[str, Any] | None = None
    protect_content: bool = False

    @property
    def inline_markup(self) -> dict[str, Any] | None:
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            return self.reply_markup
        return None


@dataclass
class ChatActionRecord:
    chat_id: int
    action: str
    time: float


@dataclass
class ChatRecord:
    token: str
    user: UserRecord
    blocked: bool = False
    messages: list[StoredMessage] = field(default_factory=list)
    next_message_id: int = 1
    actions: list[ChatActionRecord] = field(default_factory=list)
    reply_keyboard: dict[str, Any] | None = None

    @property
    def chat_id(self) -> int:
        return self.user.id

    def chat_dict(self) -> dict[str, Any]:
        chat: dict[str, Any] = {
            "id": self.user.id,
            "type": "private",
            "first_name": self.user.first_name,
        }
        if self.user.last_name:
            chat["last_name"] = self.user.last_name
        if self.user.username:
            chat["username"] = self.user.username
        return chat

    def find(self, message_id: int) -> StoredMessage | None:
        for message in reversed(self.messages):
            if message.message_id == message_id:
                return message
        return None


@dataclass
class Fault:
    token: str  # or "*"
    method: str  # lower-case method name or "*" (every method except getUpdates)
    error_code: int
    description: str
    retry_after: int | None = None
    chat_id: int | None = None
    remaining: int = 1

    def to_error(self) -> ApiError:
        return ApiError(self.error_code, self.description, self.retry_after)

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "method": self.method,
            "error_code": self.error_code,
            "description": self.description,
            "retry_after": self.retry_after,
            "chat_id": self.chat_id,
            "remaining": self.remaining,
        }


@dataclass
class CallRecord:
    seq: int
    token: str
    method: str
    params: dict[str, Any]
    time: float
    ok: bool
    error_code: int | None = None
    description: str | None = None
    source: str = "http"  # or "webhook-reply"

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "token": self.token,
            "method": self.method,
            "params": self.params,
            "time": self.time,
            "ok": self.ok,
            "error_code": self.error_code,
            "description": self.description,
            "source": self.source,
        }


@dataclass
class CallbackQueryRecord:
    id: str
    token: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None
    cache_time: int = 0
    answered_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "callback_query_id": self.id,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "data": self.data,
            "answered": self.answered,
            "text": self.text,
            "show_alert": self.show_alert,
            "url": self.url,
            "cache_time": self.cache_time,
        }


def _guess_mime(filename: str | None, default: str | None) -> str | None:
    if filename:
        guessed, _ = mimetypes.guess_type(filename)
        if guessed:
            return guessed
    return default


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 0, 0


class EmulatorState:
    """All emulator data. Safe to use from any coroutine of the owning event loop."""

    def __init__(self, *, auto_register: bool = False, max_calls: int = 50_000) -> None:
        self.auto_register = auto_register
        self.max_calls = max_calls
        self.bots: dict[str, BotRecord] = {}
        self.revoked: set[str] = set()
        self.users: dict[int, UserRecord] = {}
        self.chats: dict[tuple[str, int], ChatRecord] = {}
        self.files: dict[str, FileRecord] = {}
        self.faults: list[Fault] = []
        self.calls: list[CallRecord] = []
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.version = 0
        self.changes = Notifier()
        self.closing = False
        self._call_seq = itertools.count(1)
        self._file_seq = itertools.count(1)

    # ------------------------------------------------------------------ bookkeeping
    def mark_changed(self) -> None:
        self.version += 1
        self.changes.notify()

    async def wait_changed(self, since: int, seconds: float) -> int:
        """Wait until ``version > since`` (at most ``seconds``); return the current version."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.version <= since and not self.closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self.changes.wait(remaining)
        return self.version

    def close(self) -> None:
        """Wake every long poll so the server can shut down promptly."""
        self.closing = True
        self.changes.notify()
        for bot in self.bots.values():
            bot.notifier.notify()

    def reset(self, *, keep_bots: bool = True) -> None:
        """Forget chats, users, files, calls, faults; keep (or drop) registered bots.

        Update ids keep growing so a running bot's offset stays valid.
        """
        self.users.clear()
        self.chats.clear()
        self.files.clear()
        self.faults.clear()
        self.calls.clear()
        self.callback_queries.clear()
        if keep_bots:
            for bot in self.bots.values():
                bot.updates.clear()
                bot.commands.clear()
                bot.settings.clear()
                bot.last_error_date = None
                bot.last_error_message = None
                bot.notifier.notify()
        else:
            for bot in self.bots.values():
                bot.revoked = True
                bot.webhook = None
                bot.notifier.notify()
            self.bots.clear()
            self.revoked.clear()
        self.mark_changed()

    # ------------------------------------------------------------------ bots
    def register_bot(
        self, token: str, username: str | None = None, first_name: str = "Bot"
    ) -> BotRecord:
        match = TOKEN_RE.match(token)
        if not match:
            raise ControlError(400, f"malformed bot token {token!r} (expected <digits>:<secret>)")
        bot_id = int(match.group(1))
        self.revoked.discard(token)
        existing = self.bots.get(token)
        if existing is not None:
            if username:
                existing.username = username
            existing.first_name = first_name
            return existing
        bot = BotRecord(
            token=token,
            id=bot_id,
            username=username or f"bot{bot_id}_bot",
            first_name=first_name,
        )
        self.bots[token] = bot
        self.mark_changed()
        return bot

    def revoke_bot(self, token: str) -> None:
        bot = self.bots.pop(token, None)
        if bot is None:
            raise ControlError(404, "bot not registered")
        bot.revoked = True
        bot.webhook = None
        bot.notifier.notify()
        self.revoked.add(token)
        self.mark_changed()

    def resolve_bot(self, token: str) -> BotRecord:
        """Bot for a Bot API call, or ApiError 401."""
        bot = self.bots.get(token)
        if bot is not None:
            return bot
        if self.auto_register and token not in self.revoked and TOKEN_RE.match(token):
            return self.register_bot(token)
        raise ApiError(401, "Unauthorized")

    def control_bot(self, token: str) -> BotRecord:
        """Bot for a control-API call, or ControlError 404."""
        try:
            return self.resolve_bot(token)
        except ApiError:
            raise ControlError(404, f"bot {token.split(':')[0]} is not registered") from None

    # ------------------------------------------------------------------ updates
    def enqueue_update(self, bot: BotRecord, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update: dict[str, Any] = {"update_id": bot.next_update_id, kind: payload}
        bot.next_update_id += 1
        allowed = bot.webhook.allowed_updates if bot.webhook is not None else bot.allowed_updates
        wanted = kind in allowed if allowed else kind not in _OPT_IN_UPDATES
        if wanted:
            bot.updates.append(update)
            bot.notifier.notify()
        self.mark_changed()
        return update

    def confirm_updates(self, bot: BotRecord, offset: int) -> None:
        """getUpdates ``offset`` semantics: forget updates with id < offset (or by tail)."""
        if offset > 0:
            before = len(bot.updates)
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
            if len(bot.updates) != before:
                self.mark_changed()
        elif offset < 0:
            bot.updates = bot.updates[offset:]
            self.mark_changed()

    # ------------------------------------------------------------------ users & chats
    def upsert_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> UserRecord:
        user = self.users.get(user_id)
        if user is None:
            user = UserRecord(id=user_id)
            self.users[user_id] = user
        if first_name:
            user.first_name = first_name
        if last_name is not None:
            user.last_name = last_name or None
        if username is not None:
            user.username = username or None
        if language_code is not None:
            user.language_code = language_code or None
        return user

    def ensure_chat(self, bot: BotRecord, user: UserRecord) -> ChatRecord:
        key = (bot.token, user.id)
        chat = self.chats.get(key)
        if chat is None:
            chat = ChatRecord(token=bot.token, user=user)
            self.chats[key] = chat
        return chat

    def get_chat(self, token: str, chat_id: int) -> ChatRecord | None:
        return self.chats.get((token, chat_id))

    def control_chat(self, token: str, chat_id: int) -> ChatRecord:
        chat = self.chats.get((token, chat_id))
        if chat is None:
            raise ControlError(404, f"user {chat_id} has no chat with this bot")
        return chat

    def _new_message(
        self, chat: ChatRecord, *, outgoing: bool, sender: dict[str, Any]
    ) -> StoredMessage:
        message = StoredMessage(
            message_id=chat.next_message_id,
            chat_id=chat.chat_id,
            outgoing=outgoing,
            date=int(time.time()),
            sender=sender,
        )
        chat.next_message_id += 1
        chat.messages.append(message)
        return message

    def message_to_api(
        self, chat: ChatRecord, message: StoredMessage, *, include_reply: bool = True
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "from": message.sender,
            "chat": chat.chat_dict(),
            "date": message.date,
        }
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.protect_content:
            data["has_protected_content"] = True
        if message.reply_to is not None and include_reply:
            replied = chat.find(message.reply_to)
            if replied is not None and not replied.deleted:
                data["reply_to_message"] = self.message_to_api(chat, replied, include_reply=False)
        if message.plain_text is not None:
            data["text"] = message.plain_text
            if message.entities:
                data["entities"] = message.entities
        if message.link_preview_options:
            data["link_preview_options"] = message.link_preview_options
        if message.file is not None:
            data[message.file.kind] = message.file.to_api()
        if message.plain_caption:
            data["caption"] = message.plain_caption
            if message.caption_entities:
                data["caption_entities"] = message.caption_entities
        if message.contact is not None:
            data["contact"] = message.contact
        if message.inline_markup is not None:
            data["reply_markup"] = message.inline_markup
        return data

    def message_to_control(self, message: StoredMessage) -> dict[str, Any]:
        media: dict[str, Any] = {}
        if message.file is not None:
            media[message.file.kind] = message.file.to_api()
        return {
            "message_id": message.message_id,
            "chat_id": message.chat_id,
            "outgoing": message.outgoing,
            "date": message.date,
            "text": message.text,
            "plain_text": message.plain_text,
            "parse_mode": message.parse_mode,
            "entities": message.entities,
            "caption": message.caption,
            "plain_caption": message.plain_caption,
            "reply_markup": message.reply_markup,
            "original_text": message.original_text,
            "edits": list(message.edits),
            "edit_date": message.edit_date,
            "deleted": message.deleted,
            "document": media.get("document"),
            "photo": media.get("photo"),
            "voice": media.get("voice"),
            "audio": media.get("audio"),
            "contact": message.contact,
            "reply_to_message_id": message.reply_to,
        }

    # ------------------------------------------------------------------ files
    def add_file(
        self,
        owner_token: str,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        source_url: str | None = None,
        duration: int | None = None,
        performer: str | None = None,
        title: str | None = None,
    ) -> FileRecord:
        number = next(self._file_seq)
        prefix = {"document": "BQAC", "photo": "AgAC", "voice": "AwAC", "audio": "CQAC"}.get(
            kind, "BQAC"
        )
        digest_source = data if data else (source_url or "").encode()
        digest = hashlib.sha256(digest_source).hexdigest()[:16]
        extension = {"photo": ".jpg", "voice": ".oga", "audio": ".mp3"}.get(kind, "")
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1][:10]
        folder = {"document": "documents", "photo": "photos", "voice": "voice", "audio": "music"}
        defaults = {"photo": "image/jpeg", "voice": "audio/ogg", "audio": "audio/mpeg"}
        width, height = _png_size(data) if kind == "photo" else (0, 0)
        record = FileRecord(
            file_id=f"{prefix}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{digest}",
            owner_token=owner_token,
            kind=kind,
            data=data,
            file_path=f"{folder.get(kind, 'documents')}/file_{number}{extension}",
            file_name=file_name,
            mime_type=mime_type or _guess_mime(file_name, defaults.get(kind)),
            source_url=source_url,
            duration=duration,
            width=width,
            height=height,
            performer=performer,
            title=title,
        )
        self.files[record.file_id] = record
        return record

    def find_file(self, token: str, file_id: str) -> FileRecord | None:
        record = self.files.get(file_id)
        if record is None or record.owner_token != token:
            return None
        return record

    def find_file_by_path(self, token: str, file_path: str) -> FileRecord | None:
        for record in self.files.values():
            if record.owner_token == token and record.file_path == file_path:
                return record
        return None

    # ------------------------------------------------------------------ faults & calls
    def inject_fault(
        self,
        token: str,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        chat_id: int | None = None,
        count: int = 1,
    ) -> Fault:
        if count < 1:
            raise ControlError(400, "count must be >= 1")
        if not 400 <= error_code <= 599:
            raise ControlError(400, "error_code must be an HTTP error status (400..599)")
        fault = Fault(
            token=token,
            method=method.lower(),
            error_code=error_code,
            description=description,
            retry_after=retry_after,
            chat_id=chat_id,
            remaining=count,
        )
        self.faults.append(fault)
        return fault

    def take_fault(self, token: str, method: str, chat_id: Any) -> Fault | None:
        name = method.lower()
        for fault in self.faults:
            if fault.token not in ("*", token):
                continue
            if fault.method != name and not (fault.method == "*" and name != "getupdates"):
                continue
            if fault.chat_id is not None and fault.chat_id != chat_id:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
            return fault
        return None

    def clear_faults(self, token: str | None = None) -> None:
        self.faults = [f for f in self.faults if token is not None and f.token != token]

    def record_call(
        self,
        token: str,
        method: str,
        params: dict[str, Any],
        *,
        started: float,
        error: ApiError | None = None,
        source: str = "http",
    ) -> CallRecord:
        record = CallRecord(
            seq=next(self._call_seq),
            token=token,
            method=method,
            params=params,
            time=started,
            ok=error is None,
            error_code=error.error_code if error else None,
            description=error.description if error else None,
            source=source,
        )
        self.calls.append(record)
        if len(self.calls) > self.max_calls:
            del self.calls[: len(self.calls) - self.max_calls]
        self.mark_changed()
        return record

    def calls_for(self, token: str | None = None, method: str | None = None) -> list[CallRecord]:
        name = method.lower() if method else None
        return [
            c
            for c in self.calls
            if (token is None or c.token == token) and (name is None or c.method.lower() == name)
        ]

    # ------------------------------------------------------------------ user actions
    def _incoming(
        self,
        token: str,
        user_id: int,
        user_fields: dict[str, Any],
    ) -> tuple[BotRecord, ChatRecord, StoredMessage]:
        bot = self.control_bot(token)
        user = self.upsert_user(user_id, **user_fields)
        chat = self.ensure_chat(bot, user)
        if chat.blocked:
            # Writing to a blocked bot means the user pressed "Restart": unblock first.
            self.unblock(token, user_id)
        message = self._new_message(chat, outgoing=False, sender=user.to_api())
        return bot, chat, message

    def _emit_message(
        self, bot: BotRecord, chat: ChatRecord, message: StoredMessage
    ) -> dict[str, Any]:
        return self.enqueue_update(bot, "message", self.message_to_api(chat, message))

    def user_text(
        self,
        token: str,
        user_id: int,
        text: str,
        *,
        reply_to_message_id: int | None = None,
        **user_fields: Any,
    ) -> dict[str, Any]:
        if not text:
            raise ControlError(400, "text must not be empty")
        bot, chat, message = self._incoming(token, user_id, user_fields)
        message.text = text
        message.plain_text = text
        message.original_text = text
        message.entities = bot_command_entities(text)
        if reply_to_message_id is not None:
            message.reply_to = reply_to_message_id
        return self._emit_message(bot, chat, message)

    def user_contact(
        self,
        token: str,
        user_id: int,
        phone_number: str,
        *,
        contact_first_name: str | None = None,
        contact_last_name: str | None = None,
        contact_user_id: int | None = None,
        **user_fields: Any,
    ) -> dict[str, Any]:
        bot, chat, message = self._incoming(token, user_id, user_fields)
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": contact_first_name or chat.user.first_name,
            "user_id": contact_user_id if contact_user_id is not None else user_id,
        }
        last_name = contact_last_name if contact_first_name else chat.user.last_name
        if last_name:
            contact["last_name"] = last_name
        message.contact = contact
        return self._emit_message(bot, chat, message)

    def user_file(
        self,
        token: str,
        user_id: int,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        duration: int | None = None,
        caption: str | None = None,
        **user_fields: Any,
    ) -> dict[str, Any]:
        bot, chat, message = self._incoming(token, user_id, user_fields)
        message.file = self.add_file(
            bot.token,
            kind,
            data,
            file_name=file_name,
            mime_type=mime_type,
            duration=duration,
        )
        if caption:
            message.caption = caption
            message.plain_caption = caption
        return self._emit_message(bot, chat, message)

    def click(
        self,
        token: str,
        user_id: int,
        message_id: int,
        *,
        text: str | None = None,
        callback_data: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        if text is None and callback_data is None:
            raise ControlError(400, "pass the button's text or its callback_data")
        bot = self.control_bot(token)
        chat = self.control_chat(token, user_id)
        message = chat.find(message_id)
        if message is None or not message.outgoing or message.deleted:
            raise ControlError(404, f"bot message {message_id} not found in chat {user_id}")
        markup = message.inline_markup
        if markup is None:
            raise ControlError(400, f"message {message_id} has no inline keyboard")
        available: list[str] = []
        for row in markup["inline_keyboard"]:
            for button in row:
                available.append(f"{button.get('text')!r} ({button.get('callback_data')!r})")
                if text is not None and button.get("text") != text:
                    continue
                if callback_data is not None and button.get("callback_data") != callback_data:
                    continue
                data = button.get("callback_data")
                if data is None:
                    raise ControlError(400, f"button {button.get('text')!r} has no callback_data")
                return self._callback(bot, chat, message, str(data))
        wanted = text if text is not None else callback_data
        raise ControlError(
            400,
            f"no button {wanted!r} on message {message_id}; buttons: {', '.join(available)}",
        )

    def _callback(
        self, bot: BotRecord, chat: ChatRecord, message: StoredMessage, data: str
    ) -> tuple[str, dict[str, Any]]:
        query_id = str(secrets.randbits(63))
        record = CallbackQueryRecord(
            id=query_id,
            token=bot.token,
            user_id=chat.user.id,
            chat_id=chat.chat_id,
            message_id=message.message_id,
            data=data,
            created=time.time(),
        )
        self.callback_queries[query_id] = record
        instance = hashlib.sha256(f"{bot.token}:{chat.chat_id}".encode()).hexdigest()[:16]
        payload = {
            "id": query_id,
            "from": chat.user.to_api(),
            "message": self.message_to_api(chat, message),
            "chat_instance": str(int(instance, 16)),
            "data": data,
        }
        return query_id, self.enqueue_update(bot, "callback_query", payload)

    def click_reply(self, token: str, user_id: int, text: str) -> dict[str, Any]:
        chat = self.control_chat(token, user_id)
        keyboard = chat.reply_keyboard
        if keyboard is None:
            raise ControlError(400, "no reply keyboard is shown in this chat")
        labels = [
            button if isinstance(button, str) else str(button.get("text"))
            for row in keyboard.get("keyboard", [])
            for button in row
        ]
        if text not in labels:
            raise ControlError(400, f"no reply button {text!r}; buttons: {labels!r}")
        if keyboard.get("one_time_keyboard"):
            chat.reply_keyboard = None
        return self.user_text(token, user_id, text)

    def _member_update(self, bot: BotRecord, chat: ChatRecord, old: str, new: str) -> None:
        def member(status: str) -> dict[str, Any]:
            data: dict[str, Any] = {"status": status, "user": bot.sender()}
            if status == "kicked":
                data["until_date"] = 0
            return data

        payload = {
            "chat": chat.chat_dict(),
            "from": chat.user.to_api(),
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        self.enqueue_update(bot, "my_chat_member", payload)

    def block(self, token: str, user_id: int) -> None:
        bot = self.control_bot(token)
        chat = self.ensure_chat(bot, self.upsert_user(user_id))
        if not chat.blocked:
            chat.blocked = True
            self._member_update(bot, chat, "member", "kicked")

    def unblock(self, token: str, user_id: int) -> None:
        bot = self.control_bot(token)
        chat = self.ensure_chat(bot, self.upsert_user(user_id))
        if chat.blocked:
            chat.blocked = False
            self._member_update(bot, chat, "kicked", "member")

    # ------------------------------------------------------------------ bot-side helpers
    def add_outgoing(self, bot: BotRecord, chat: ChatRecord) -> StoredMessage:
        return self._new_message(chat, outgoing=True, sender=bot.sender())

    @staticmethod
    def apply_keyboard(chat: ChatRecord, markup: dict[str, Any] | None) -> None:
        if markup is None:
            return
        if "keyboard" in markup:
            chat.reply_keyboard = markup
        elif markup.get("remove_keyboard"):
            chat.reply_keyboard = None
