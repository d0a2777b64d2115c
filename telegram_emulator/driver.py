"""User-side driver: acts as Telegram users and inspects what bots did, over HTTP only."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

__all__ = [
    "ApiCall",
    "CallbackAnswer",
    "ChatAction",
    "EmulatorClient",
    "EmulatorControlError",
    "SentMessage",
]


class EmulatorControlError(Exception):
    """The control API refused a request (unknown bot, missing button, ...)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description


@dataclass(frozen=True)
class SentMessage:
    """A message in a chat as the emulator stores it (normally one the bot sent)."""

    message_id: int
    chat_id: int
    text: str | None  # raw text as sent, HTML tags included (None for media messages)
    plain_text: str  # text (or caption) with markup stripped and entities unescaped
    reply_markup: dict[str, Any] | None
    edits: list[str]  # plain text after each edit, in order
    deleted: bool
    original_text: str | None = None  # plain text as first sent
    parse_mode: str | None = None
    entities: list[dict[str, Any]] | None = None
    caption: str | None = None  # raw caption
    document: dict[str, Any] | None = None
    photo: list[dict[str, Any]] | None = None
    voice: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    contact: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    outgoing: bool = True  # False for the user's own messages (see ``history``)
    date: int = 0
    edit_date: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SentMessage:
        plain = data.get("plain_text")
        if plain is None:
            plain = data.get("plain_caption") or ""
        return cls(
            message_id=data["message_id"],
            chat_id=data["chat_id"],
            text=data.get("text"),
            plain_text=plain,
            reply_markup=data.get("reply_markup"),
            edits=list(data.get("edits") or []),
            deleted=bool(data.get("deleted")),
            original_text=data.get("original_text"),
            parse_mode=data.get("parse_mode"),
            entities=data.get("entities") or None,
            caption=data.get("caption"),
            document=data.get("document"),
            photo=data.get("photo"),
            voice=data.get("voice"),
            audio=data.get("audio"),
            contact=data.get("contact"),
            reply_to_message_id=data.get("reply_to_message_id"),
            outgoing=bool(data.get("outgoing", True)),
            date=int(data.get("date") or 0),
            edit_date=data.get("edit_date"),
        )

    def _inline_rows(self) -> list[list[dict[str, Any]]]:
        if not self.reply_markup:
            return []
        rows: list[list[dict[str, Any]]] = self.reply_markup.get("inline_keyboard") or []
        return rows

    def buttons(self) -> list[list[str]]:
        """Texts of the inline keyboard buttons, row by row."""
        return [[str(button.get("text")) for button in row] for row in self._inline_rows()]

    def button_data(self, text: str) -> str | None:
        """callback_data of the inline button labelled ``text`` (None for url buttons etc.)."""
        for row in self._inline_rows():
            for button in row:
                if button.get("text") == text:
                    data = button.get("callback_data")
                    return None if data is None else str(data)
        raise KeyError(f"no inline button {text!r}; buttons: {self.buttons()!r}")

    def reply_buttons(self) -> list[list[str]]:
        """Texts of a reply keyboard sent with this message, row by row."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("keyboard") or []
        return [
            [button if isinstance(button, str) else str(button.get("text")) for button in row]
            for row in rows
        ]

    def describe(self) -> str:
        flags = " (deleted)" if self.deleted else ""
        edits = f" edits={self.edits!r}" if self.edits else ""
        media = next(
            (kind for kind in ("document", "photo", "voice", "audio") if getattr(self, kind)), ""
        )
        media = f" [{media}]" if media else ""
        buttons = f" buttons={self.buttons()!r}" if self.buttons() else ""
        return f"#{self.message_id}{flags}{media}: {self.plain_text!r}{edits}{buttons}"


@dataclass(frozen=True)
class CallbackAnswer:
    """A callback query and the bot's answerCallbackQuery for it (if answered)."""

    callback_query_id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answered: bool
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallbackAnswer:
        return cls(
            callback_query_id=data["callback_query_id"],
            user_id=data["user_id"],
            chat_id=data["chat_id"],
            message_id=data["message_id"],
            data=data["data"],
            answered=bool(data["answered"]),
            text=data.get("text"),
            show_alert=bool(data.get("show_alert")),
            url=data.get("url"),
            cache_time=int(data.get("cache_time") or 0),
        )


@dataclass(frozen=True)
class ApiCall:
    """One Bot API call a bot made."""

    token: str
    method: str
    params: dict[str, Any]
    time: float
    ok: bool
    error_code: int | None
    description: str | None
    source: str = "http"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApiCall:
        return cls(
            token=data["token"],
            method=data["method"],
            params=data.get("params") or {},
            time=float(data["time"]),
            ok=bool(data["ok"]),
            error_code=data.get("error_code"),
            description=data.get("description"),
            source=data.get("source", "http"),
        )


@dataclass(frozen=True)
class ChatAction:
    chat_id: int
    action: str
    time: float


class EmulatorClient:
    """Drive the emulator as Telegram users, over the HTTP control API.

    Use as ``async with EmulatorClient(base_url) as client: ...`` (or call ``close()``).
    """

    def __init__(self, base_url: str, *, request_timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EmulatorClient:
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._request_timeout)
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        total_timeout: float | None = None,
    ) -> Any:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"params": query}
        if json_body is not None:
            kwargs["json"] = {k: v for k, v in json_body.items() if v is not None}
        if total_timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=total_timeout)
        session = self._get_session()
        async with session.request(method, f"{self.base_url}/_emulator{path}", **kwargs) as resp:
            if resp.content_type != "application/json":
                if resp.status >= 400:
                    raise EmulatorControlError(resp.status, await resp.text())
                return await resp.read()
            body = await resp.json()
        if not body.get("ok"):
            raise EmulatorControlError(
                int(body.get("error_code") or resp.status), str(body.get("description"))
            )
        return body.get("result")

    async def _wait_change(self, since: int, seconds: float) -> int:
        result = await self._request(
            "GET",
            "/wait",
            params={"since": since, "timeout": f"{seconds:.3f}"},
            total_timeout=seconds + 10.0,
        )
        return int(result["version"])

    # ------------------------------------------------------------------ bots
    async def register_bot(
        self, token: str, username: str | None = None, first_name: str = "Bot"
    ) -> dict[str, Any]:
        """Register a bot token; returns its getMe User object."""
        body = {"token": token, "username": username, "first_name": first_name}
        result: dict[str, Any] = await self._request("POST", "/bots", json_body=body)
        return result

    async def revoke_bot(self, token: str) -> None:
        """Revoke a token: every Bot API call with it answers 401 afterwards."""
        await self._request("DELETE", f"/bots/{token}")

    async def webhook_info(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", "/webhook", params={"token": token})
        return result

    # ------------------------------------------------------------------ user actions
    @staticmethod
    def _user(
        first_name: str, last_name: str | None, username: str | None, language_code: str | None
    ) -> dict[str, Any]:
        return {
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
        }

    async def send_message(
        self,
        token: str,
        user_id: int,
        text: str,
        *,
        first_name: str = "User",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """The user writes ``text`` to the bot. Returns the Update the bot will receive."""
        body = {
            "token": token,
            "user_id": user_id,
            "text": text,
            "reply_to_message_id": reply_to_message_id,
            **self._user(first_name, last_name, username, language_code),
        }
        result: dict[str, Any] = await self._request("POST", "/users/message", json_body=body)
        return result

    async def send_contact(
        self,
        token: str,
        user_id: int,
        phone_number: str,
        *,
        first_name: str = "User",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        contact_user_id: int | None = None,
    ) -> dict[str, Any]:
        """The user shares a contact (by default their own: contact.user_id == user_id)."""
        body = {
            "token": token,
            "user_id": user_id,
            "phone_number": phone_number,
            "contact_user_id": contact_user_id,
            **self._user(first_name, last_name, username, language_code),
        }
        result: dict[str, Any] = await self._request("POST", "/users/contact", json_body=body)
        return result

    async def send_voice(
        self,
        token: str,
        user_id: int,
        data: bytes,
        duration: int,
        mime_type: str = "audio/ogg",
        *,
        first_name: str = "User",
        username: str | None = None,
        language_code: str | None = "ru",
    ) -> dict[str, Any]:
        """The user records a voice message; the bot can getFile + download ``data``."""
        body = {
            "token": token,
            "user_id": user_id,
            "data": base64.b64encode(data).decode(),
            "duration": duration,
            "mime_type": mime_type,
            **self._user(first_name, None, username, language_code),
        }
        result: dict[str, Any] = await self._request("POST", "/users/voice", json_body=body)
        return result

    async def send_document(
        self,
        token: str,
        user_id: int,
        data: bytes,
        filename: str,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        first_name: str = "User",
        username: str | None = None,
        language_code: str | None = "ru",
    ) -> dict[str, Any]:
        """The user sends a file; the bot can getFile + download ``data``."""
        body = {
            "token": token,
            "user_id": user_id,
            "data": base64.b64encode(data).decode(),
            "filename": filename,
            "mime_type": mime_type,
            "caption": caption,
            **self._user(first_name, None, username, language_code),
        }
        result: dict[str, Any] = await self._request("POST", "/users/document", json_body=body)
        return result

    async def click(
        self,
        token: str,
        user_id: int,
        message_id: int,
        *,
        text: str | None = None,
        callback_data: str | None = None,
    ) -> str:
        """Press an inline button of a bot message; returns the callback query id."""
        body = {
            "token": token,
            "user_id": user_id,
            "message_id": message_id,
            "text": text,
            "callback_data": callback_data,
        }
        result = await self._request("POST", "/users/click", json_body=body)
        return str(result["callback_query_id"])

    async def click_reply(self, token: str, user_id: int, text: str) -> dict[str, Any]:
        """Press a button of the reply keyboard currently shown (sends its text)."""
        body = {"token": token, "user_id": user_id, "text": text}
        result: dict[str, Any] = await self._request("POST", "/users/click_reply", json_body=body)
        return result

    async def block(self, token: str, user_id: int) -> None:
        await self._request("POST", "/users/block", json_body={"token": token, "user_id": user_id})

    async def unblock(self, token: str, user_id: int) -> None:
        body = {"token": token, "user_id": user_id}
        await self._request("POST", "/users/unblock", json_body=body)

    # ------------------------------------------------------------------ inspection
    async def _messages(
        self, token: str, chat_id: int, *, include_incoming: bool = False
    ) -> tuple[int, list[SentMessage]]:
        params = {"token": token, "chat_id": chat_id, "include_incoming": int(include_incoming)}
        result = await self._request("GET", "/messages", params=params)
        return int(result["version"]), [SentMessage.from_json(m) for m in result["messages"]]

    async def messages(self, token: str, chat_id: int) -> list[SentMessage]:
        """Everything the bot sent to the chat, in order (deleted ones flagged)."""
        return (await self._messages(token, chat_id))[1]

    async def history(self, token: str, chat_id: int) -> list[SentMessage]:
        """The whole chat, the user's messages included (``outgoing`` is False for those)."""
        return (await self._messages(token, chat_id, include_incoming=True))[1]

    async def last_message(self, token: str, chat_id: int) -> SentMessage | None:
        """The most recent message from the bot that is not deleted."""
        alive = [m for m in await self.messages(token, chat_id) if not m.deleted]
        return alive[-1] if alive else None

    async def wait_for_message(
        self,
        token: str,
        chat_id: int,
        *,
        predicate: Callable[[SentMessage], bool] | None = None,
        contains: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait, by design
        after_message_id: int | None = None,
        count: int = 1,
    ) -> SentMessage:
        """Wait until the bot has sent (or edited a message into) a match; return the latest.

        A match is a non-deleted bot message with ``message_id > after_message_id`` (if
        given) whose plain or raw text contains ``contains`` and that satisfies ``predicate``.
        Waits until at least ``count`` messages match. Raises ``TimeoutError`` listing the
        chat's messages otherwise.
        """

        def matches(message: SentMessage) -> bool:
            if message.deleted:
                return False
            if after_message_id is not None and message.message_id <= after_message_id:
                return False
            if (
                contains is not None
                and contains not in message.plain_text
                and (message.text is None or contains not in message.text)
            ):
                return False
            return predicate is None or predicate(message)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            version, found = await self._messages(token, chat_id)
            matching = [m for m in found if matches(m)]
            if len(matching) >= count:
                return matching[-1]
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = "\n  ".join(m.describe() for m in found) or "(nothing)"
                wanted = []
                if contains is not None:
                    wanted.append(f"containing {contains!r}")
                if predicate is not None:
                    wanted.append("matching the predicate")
                if after_message_id is not None:
                    wanted.append(f"after #{after_message_id}")
                raise TimeoutError(
                    f"bot {token.split(':')[0]} sent no message "
                    f"{' '.join(wanted) or ''} (need {count}, have {len(matching)}) "
                    f"to chat {chat_id} within {timeout}s; the chat has:\n  {seen}"
                )
            await self._wait_change(version, min(remaining, 10.0))

    async def _queries(self, token: str) -> tuple[int, list[CallbackAnswer]]:
        result = await self._request("GET", "/callback_queries", params={"token": token})
        return int(result["version"]), [CallbackAnswer.from_json(q) for q in result["queries"]]

    async def callback_answers(self, token: str) -> list[CallbackAnswer]:
        """Callback queries the bot has answered, in order of the clicks."""
        return [q for q in (await self._queries(token))[1] if q.answered]

    async def wait_for_callback_answer(
        self,
        token: str,
        callback_query_id: str,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> CallbackAnswer:
        """Wait until the bot answers the callback query ``callback_query_id``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            version, queries = await self._queries(token)
            for query in queries:
                if query.callback_query_id == callback_query_id and query.answered:
                    return query
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"callback query {callback_query_id} was not answered within {timeout}s"
                )
            await self._wait_change(version, min(remaining, 10.0))

    async def _calls(self, token: str | None, method: str | None) -> tuple[int, list[ApiCall]]:
        result = await self._request("GET", "/calls", params={"token": token, "method": method})
        return int(result["version"]), [ApiCall.from_json(c) for c in result["calls"]]

    async def calls(self, token: str, method: str | None = None) -> list[ApiCall]:
        """Bot API calls made with ``token`` (optionally one method, case-insensitive)."""
        return (await self._calls(token, method))[1]

    async def wait_for_calls(
        self,
        token: str,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[ApiCall]:
        """Wait until the bot has called ``method`` at least ``count`` times."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            version, found = await self._calls(token, method)
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{method} was called {len(found)} times, expected {count}, within {timeout}s"
                )
            await self._wait_change(version, min(remaining, 10.0))

    async def chat_actions(self, token: str, chat_id: int) -> list[ChatAction]:
        result = await self._request(
            "GET", "/chat_actions", params={"token": token, "chat_id": chat_id}
        )
        return [ChatAction(a["chat_id"], a["action"], float(a["time"])) for a in result]

    async def commands(
        self,
        token: str,
        *,
        scope: dict[str, Any] | None = None,
        language_code: str = "",
    ) -> list[dict[str, str]]:
        """Commands set with setMyCommands for ``scope`` (default scope) and language."""
        params = {
            "token": token,
            "scope": json.dumps(scope) if scope is not None else None,
            "language_code": language_code,
        }
        result: list[dict[str, str]] = await self._request("GET", "/commands", params=params)
        return result

    async def download(self, token: str, file_id: str) -> bytes:
        """Bytes of a file the bot uploaded (or received) under ``file_id``."""
        result = await self._request("GET", "/file", params={"token": token, "file_id": file_id})
        if not isinstance(result, bytes):
            raise EmulatorControlError(500, "expected file bytes")
        return result

    # ------------------------------------------------------------------ faults & reset
    async def inject_fault(
        self,
        token: str,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        chat_id: int | None = None,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` calls of ``method`` ("*" = any but getUpdates) fail."""
        body = {
            "token": token,
            "method": method,
            "error_code": error_code,
            "description": description,
            "retry_after": retry_after,
            "chat_id": chat_id,
            "count": count,
        }
        await self._request("POST", "/faults", json_body=body)

    async def clear_faults(self, token: str | None = None) -> None:
        await self._request("DELETE", "/faults", params={"token": token})

    async def reset(self, *, keep_bots: bool = True) -> None:
        """Forget chats, files, calls, faults (and bots unless ``keep_bots``)."""
        await self._request("POST", "/reset", json_body={"keep_bots": keep_bots})
