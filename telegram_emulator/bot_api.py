"""Bot API method implementations on top of :class:`EmulatorState` (transport independent)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from telegram_emulator.formatting import FormattingError, UnsupportedParseModeError, parse_text
from telegram_emulator.state import (
    MAX_DOWNLOAD_SIZE,
    ApiError,
    BotRecord,
    ChatActionRecord,
    ChatRecord,
    EmulatorState,
    FileRecord,
    StoredMessage,
    Upload,
    WebhookConfig,
)

__all__ = ["METHODS", "BotApi", "normalize_params"]

Handler = Callable[["BotApi", BotRecord, dict[str, Any], dict[str, Upload]], Awaitable[Any]]

_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "menu_button",
        "media",
        "reaction",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "duration",
        "max_connections",
        "cache_time",
        "message_thread_id",
        "reply_to_message_id",
        "from_chat_id",
        "width",
        "height",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "has_spoiler",
        "allow_sending_without_reply",
        "disable_content_type_detection",
        "show_caption_above_media",
        "allow_paid_broadcast",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
MAX_TEXT = 4096
MAX_CAPTION = 1024


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _to_int(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return value


def _to_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
    return value


def normalize_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Decode form-encoded values: JSON objects, integers and booleans by field name."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _JSON_FIELDS and isinstance(value, str):
            # On a parse error keep the string; the method then reports it.
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        elif key in _INT_FIELDS:
            value = _to_int(value)
        elif key in _BOOL_FIELDS:
            value = _to_bool(value)
        params[key] = value
    return params


def _int_param(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"invalid {name} specified")
    return value


def _str_param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _check_markup(value: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in value:
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad(
                "can't parse inline keyboard markup: inline_keyboard must be an array of arrays"
            )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad("can't parse inline keyboard button: Text must be a String")
                if len(button) == 1:
                    raise _bad(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _bad("BUTTON_DATA_INVALID")
        return value
    if inline_only:
        raise _bad("inline keyboard expected")
    if "keyboard" in value:
        rows = value["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad("can't parse reply keyboard markup JSON object")
        return value
    if value.get("remove_keyboard") or value.get("force_reply"):
        return value
    raise _bad("can't parse reply keyboard markup JSON object")


def _format(
    text: str, params: dict[str, Any], entities_field: str
) -> tuple[str, list[dict[str, Any]]]:
    parse_mode = _str_param(params, "parse_mode")
    entities = params.get(entities_field)
    if entities is not None and not isinstance(entities, list):
        raise _bad(f"can't parse {entities_field} JSON object")
    try:
        return parse_text(text, parse_mode, entities)
    except UnsupportedParseModeError:
        raise _bad("unsupported parse_mode") from None
    except FormattingError as exc:
        raise _bad(f"can't parse entities: {exc}") from None


class BotApi:
    """Executes Bot API calls against an :class:`EmulatorState`.

    ``on_webhook_change`` is called (synchronously) after setWebhook/deleteWebhook so the
    transport can start or stop the webhook delivery worker.
    """

    def __init__(
        self,
        state: EmulatorState,
        on_webhook_change: Callable[[BotRecord], None] | None = None,
    ) -> None:
        self.state = state
        self.on_webhook_change = on_webhook_change

    async def call(
        self,
        token: str,
        method: str,
        raw_params: dict[str, Any],
        uploads: dict[str, Upload] | None = None,
        *,
        source: str = "http",
    ) -> Any:
        """Run one Bot API method; return its result or raise :class:`ApiError`."""
        uploads = uploads or {}
        started = time.time()
        params = normalize_params(raw_params)
        entry = METHODS.get(method.lower())
        name = entry[0] if entry else method
        logged = dict(params)
        for key, upload in uploads.items():
            logged[key] = {
                "filename": upload.filename,
                "size": len(upload.data),
                "content_type": upload.content_type,
            }
        # Logged before running, so a long-polling getUpdates is visible while it waits.
        record = self.state.record_call(token, name, logged, started=started, source=source)
        try:
            bot = self.state.resolve_bot(token)
            if entry is None:
                raise ApiError(404, "Not Found: method not found")
            fault = self.state.take_fault(token, name, params.get("chat_id"))
            if fault is not None:
                raise fault.to_error()
            return await entry[1](self, bot, params, uploads)
        except ApiError as exc:
            record.ok = False
            record.error_code = exc.error_code
            record.description = exc.description
            self.state.mark_changed()
            raise

    # ------------------------------------------------------------------ helpers
    def _chat(
        self, bot: BotRecord, params: dict[str, Any], *, check_blocked: bool = True
    ) -> ChatRecord:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat = self.state.get_chat(bot.token, chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _bad("chat not found")
        if check_blocked and chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _reply_to(self, chat: ChatRecord, params: dict[str, Any]) -> int | None:
        reply = params.get("reply_parameters")
        allow = bool(params.get("allow_sending_without_reply"))
        message_id: Any = params.get("reply_to_message_id")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow = bool(reply.get("allow_sending_without_reply", allow))
        elif reply is not None:
            raise _bad("can't parse reply parameters JSON object")
        if message_id is None:
            return None
        target = chat.find(int(message_id)) if isinstance(message_id, int) else None
        if target is None or target.deleted:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return target.message_id

    def _new_outgoing(
        self, bot: BotRecord, chat: ChatRecord, params: dict[str, Any]
    ) -> tuple[StoredMessage, dict[str, Any] | None, int | None]:
        markup = _check_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat, params)
        return self.state.add_outgoing(bot, chat), markup, reply_to

    def _finish(
        self,
        chat: ChatRecord,
        message: StoredMessage,
        markup: dict[str, Any] | None,
        reply_to: int | None,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        message.reply_markup = markup
        message.reply_to = reply_to
        message.protect_content = bool(params.get("protect_content"))
        self.state.apply_keyboard(chat, markup)
        self.state.mark_changed()
        return self.state.message_to_api(chat, message)

    def _message_for_edit(
        self, bot: BotRecord, params: dict[str, Any]
    ) -> tuple[ChatRecord, StoredMessage]:
        if params.get("inline_message_id"):
            raise _bad("message to edit not found")
        chat = self._chat(bot, params)
        message_id = _int_param(params, "message_id")
        message = chat.find(message_id) if message_id is not None else None
        if message is None or message.deleted:
            raise _bad("message to edit not found")
        if not message.outgoing:
            raise _bad("message can't be edited")
        return chat, message

    def _resolve_file(
        self,
        bot: BotRecord,
        params: dict[str, Any],
        uploads: dict[str, Upload],
        field: str,
        kind: str,
    ) -> FileRecord:
        extra: dict[str, Any] = {}
        duration = params.get("duration")
        if isinstance(duration, int):
            extra["duration"] = duration
        if kind == "audio":
            extra["performer"] = _str_param(params, "performer")
            extra["title"] = _str_param(params, "title")
        upload = uploads.get(field)
        value = params.get(field)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value[len("attach://") :])
            if upload is None:
                raise _bad("wrong file identifier/HTTP URL specified")
        if upload is not None:
            return self.state.add_file(
                bot.token,
                kind,
                upload.data,
                file_name=upload.filename,
                mime_type=upload.content_type
                if upload.content_type not in (None, "application/octet-stream")
                else None,
                **extra,
            )
        if value is None or value == "":
            raise _bad(f"there is no {kind} in the request")
        if not isinstance(value, str):
            raise _bad("wrong file identifier/HTTP URL specified")
        if value.startswith(("http://", "https://")):
            name = urlsplit(value).path.rsplit("/", 1)[-1] or None
            return self.state.add_file(
                bot.token, kind, b"", file_name=name, source_url=value, **extra
            )
        known = self.state.find_file(bot.token, value)
        if known is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        return known

    async def _send_media(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload], kind: str
    ) -> dict[str, Any]:
        chat = self._chat(bot, params)
        caption = _str_param(params, "caption")
        plain_caption: str | None = None
        caption_entities: list[dict[str, Any]] = []
        if caption:
            plain_caption, caption_entities = _format(caption, params, "caption_entities")
            if len(plain_caption) > MAX_CAPTION:
                raise _bad("message caption is too long")
        record = self._resolve_file(bot, params, uploads, kind, kind)
        message, markup, reply_to = self._new_outgoing(bot, chat, params)
        message.file = record
        message.caption = caption
        message.plain_caption = plain_caption
        message.caption_entities = caption_entities
        message.parse_mode = _str_param(params, "parse_mode")
        return self._finish(chat, message, markup, reply_to, params)

    def _text(self, params: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
        text = _str_param(params, "text")
        if not text:
            raise _bad("message text is empty")
        plain, entities = _format(text, params, "entities")
        if not plain.strip():
            raise _bad("message text is empty")
        if len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        return text, plain, entities

    # ------------------------------------------------------------------ methods
    async def get_me(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return bot.to_api()

    async def get_updates(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        if bot.webhook is not None:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        offset = _int_param(params, "offset", 0) or 0
        limit = min(max(_int_param(params, "limit", 100) or 100, 1), 100)
        timeout = max(_int_param(params, "timeout", 0) or 0, 0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(kind) for kind in allowed] or None
        self.state.confirm_updates(bot, offset)
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.notifier.notify()  # an older long poll of this bot is terminated with 409
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if bot.poll_generation != generation:
                raise ApiError(409, _POLL_CONFLICT)
            if bot.revoked:
                raise ApiError(401, "Unauthorized")
            if bot.webhook is not None:
                raise ApiError(409, _WEBHOOK_CONFLICT)
            if bot.updates or self.state.closing:
                return bot.updates[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await bot.notifier.wait(remaining)

    async def set_webhook(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        url = (_str_param(params, "url") or "").strip()
        if not url:
            return await self.delete_webhook(bot, params, uploads)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise _bad("bad webhook: unsupported URL protocol")
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise _bad("bad webhook: the emulator only delivers to http://127.0.0.1 or localhost")
        secret = _str_param(params, "secret_token")
        if secret is not None and not _SECRET_RE.match(secret):
            raise _bad("secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise _bad("can't parse allowed updates JSON object")
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        bot.webhook_generation += 1
        bot.webhook = WebhookConfig(
            url=url,
            secret_token=secret or None,
            max_connections=_int_param(params, "max_connections", 40) or 40,
            allowed_updates=[str(kind) for kind in allowed] if allowed else None,
            generation=bot.webhook_generation,
        )
        bot.notifier.notify()
        self.state.mark_changed()
        if self.on_webhook_change is not None:
            self.on_webhook_change(bot)
        return True

    async def delete_webhook(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        if bot.webhook is not None:
            bot.webhook = None
            bot.webhook_generation += 1
            bot.notifier.notify()
            if self.on_webhook_change is not None:
                self.on_webhook_change(bot)
        self.state.mark_changed()
        return True

    async def get_webhook_info(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return bot.webhook_info()

    async def send_message(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        chat = self._chat(bot, params)
        text, plain, entities = self._text(params)
        preview = params.get("link_preview_options")
        message, markup, reply_to = self._new_outgoing(bot, chat, params)
        message.text = text
        message.plain_text = plain
        message.original_text = plain
        message.entities = entities
        message.parse_mode = _str_param(params, "parse_mode")
        message.link_preview_options = preview if isinstance(preview, dict) else None
        return self._finish(chat, message, markup, reply_to, params)

    async def send_document(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return await self._send_media(bot, params, uploads, "document")

    async def send_photo(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return await self._send_media(bot, params, uploads, "photo")

    async def send_voice(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return await self._send_media(bot, params, uploads, "voice")

    async def send_audio(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return await self._send_media(bot, params, uploads, "audio")

    async def edit_message_text(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        chat, message = self._message_for_edit(bot, params)
        if message.text is None:
            raise _bad("there is no text in the message to edit")
        text, plain, entities = self._text(params)
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        if (
            plain == message.plain_text
            and entities == message.entities
            and markup == message.inline_markup
        ):
            raise _bad(_NOT_MODIFIED)
        message.text = text
        message.plain_text = plain
        message.entities = entities
        message.parse_mode = _str_param(params, "parse_mode")
        preview = params.get("link_preview_options")
        if isinstance(preview, dict):
            message.link_preview_options = preview
        return self._edited(chat, message, markup)

    async def edit_message_caption(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        chat, message = self._message_for_edit(bot, params)
        if message.file is None:
            raise _bad("there is no caption in the message to edit")
        caption = _str_param(params, "caption") or ""
        plain, entities = _format(caption, params, "caption_entities") if caption else ("", [])
        if len(plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        if (
            plain == (message.plain_caption or "")
            and entities == message.caption_entities
            and markup == message.inline_markup
        ):
            raise _bad(_NOT_MODIFIED)
        message.caption = caption or None
        message.plain_caption = plain or None
        message.caption_entities = entities
        return self._edited(chat, message, markup)

    async def edit_message_reply_markup(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        chat, message = self._message_for_edit(bot, params)
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        if markup == message.inline_markup:
            raise _bad(_NOT_MODIFIED)
        return self._edited(chat, message, markup)

    def _edited(
        self, chat: ChatRecord, message: StoredMessage, markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        if markup is not None or message.inline_markup is not None:
            message.reply_markup = markup
        message.edit_date = int(time.time())
        message.edits.append(message.plain_text or message.plain_caption or "")
        self.state.mark_changed()
        return self.state.message_to_api(chat, message)

    async def delete_message(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        chat = self._chat(bot, params, check_blocked=False)
        message_id = _int_param(params, "message_id")
        message = chat.find(message_id) if message_id is not None else None
        if message is None or message.deleted:
            raise _bad("message to delete not found")
        message.deleted = True
        self.state.mark_changed()
        return True

    async def answer_callback_query(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        query_id = _str_param(params, "callback_query_id") or ""
        record = self.state.callback_queries.get(query_id)
        if record is None or record.token != bot.token or record.answered:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = _str_param(params, "text")
        if text is not None and len(text) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        record.answered = True
        record.text = text
        record.show_alert = params.get("show_alert") is True
        record.url = _str_param(params, "url")
        record.cache_time = _int_param(params, "cache_time", 0) or 0
        record.answered_at = time.time()
        self.state.mark_changed()
        return True

    async def send_chat_action(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        chat = self._chat(bot, params)
        action = _str_param(params, "action") or ""
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        chat.actions.append(ChatActionRecord(chat_id=chat.chat_id, action=action, time=time.time()))
        self.state.mark_changed()
        return True

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise _bad("can't parse BotCommandScope JSON object")
        language = _str_param(params, "language_code") or ""
        return json.dumps(scope, sort_keys=True), language

    async def set_my_commands(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        stored: list[dict[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad("can't parse BotCommand JSON object")
            command = str(item.get("command", "")).lstrip("/")
            description = str(item.get("description", ""))
            if not _COMMAND_RE.match(command):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad("command description is empty")
            stored.append({"command": command, "description": description})
        key = self._commands_key(params)
        if stored:
            bot.commands[key] = stored
        else:
            bot.commands.pop(key, None)
        self.state.mark_changed()
        return True

    async def get_my_commands(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return list(bot.commands.get(self._commands_key(params), []))

    async def delete_my_commands(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        bot.commands.pop(self._commands_key(params), None)
        self.state.mark_changed()
        return True

    async def get_file(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        file_id = _str_param(params, "file_id") or ""
        record = self.state.find_file(bot.token, file_id)
        if record is None:
            raise _bad("invalid file_id")
        if record.size > MAX_DOWNLOAD_SIZE:
            raise _bad("file is too big")
        return record.to_file()

    async def _setting(self, bot: BotRecord, params: dict[str, Any], key: str) -> Any:
        language = _str_param(params, "language_code") or ""
        value = params.get(key)
        bot.settings[f"{key}:{language}"] = value
        return True

    async def set_my_description(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return await self._setting(bot, params, "description")

    async def set_my_short_description(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return await self._setting(bot, params, "short_description")

    async def set_my_name(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return await self._setting(bot, params, "name")

    def _get_setting(self, bot: BotRecord, params: dict[str, Any], key: str) -> dict[str, Any]:
        language = _str_param(params, "language_code") or ""
        value = bot.settings.get(f"{key}:{language}") or ""
        return {key: value if isinstance(value, str) else json.dumps(value)}

    async def get_my_description(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return self._get_setting(bot, params, "description")

    async def get_my_short_description(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return self._get_setting(bot, params, "short_description")

    async def get_my_name(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        name = self._get_setting(bot, params, "name")
        return {"name": name["name"] or bot.first_name}

    async def set_chat_menu_button(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict):
            raise _bad("can't parse menu button JSON object")
        bot.settings[f"menu_button:{params.get('chat_id', '')}"] = button
        return True

    async def get_chat_menu_button(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return bot.settings.get(f"menu_button:{params.get('chat_id', '')}") or {"type": "default"}

    async def accept(
        self, bot: BotRecord, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Any:
        return True


METHODS: dict[str, tuple[str, Handler]] = {
    name.lower(): (name, handler)
    for name, handler in (
        ("getMe", BotApi.get_me),
        ("getUpdates", BotApi.get_updates),
        ("setWebhook", BotApi.set_webhook),
        ("deleteWebhook", BotApi.delete_webhook),
        ("getWebhookInfo", BotApi.get_webhook_info),
        ("sendMessage", BotApi.send_message),
        ("sendDocument", BotApi.send_document),
        ("sendPhoto", BotApi.send_photo),
        ("sendVoice", BotApi.send_voice),
        ("sendAudio", BotApi.send_audio),
        ("editMessageText", BotApi.edit_message_text),
        ("editMessageCaption", BotApi.edit_message_caption),
        ("editMessageReplyMarkup", BotApi.edit_message_reply_markup),
        ("deleteMessage", BotApi.delete_message),
        ("answerCallbackQuery", BotApi.answer_callback_query),
        ("sendChatAction", BotApi.send_chat_action),
        ("setMyCommands", BotApi.set_my_commands),
        ("getMyCommands", BotApi.get_my_commands),
        ("deleteMyCommands", BotApi.delete_my_commands),
        ("getFile", BotApi.get_file),
        ("setMyDescription", BotApi.set_my_description),
        ("getMyDescription", BotApi.get_my_description),
        ("setMyShortDescription", BotApi.set_my_short_description),
        ("getMyShortDescription", BotApi.get_my_short_description),
        ("setMyName", BotApi.set_my_name),
        ("getMyName", BotApi.get_my_name),
        ("setChatMenuButton", BotApi.set_chat_menu_button),
        ("getChatMenuButton", BotApi.get_chat_menu_button),
        ("close", BotApi.accept),
        ("logOut", BotApi.accept),
    )
}
