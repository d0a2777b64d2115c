"""aiohttp application serving the emulated Bot API and the user-side control API."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import hdrs, web

from telegram_emulator.bot_api import BotApi
from telegram_emulator.state import (
    ApiError,
    BotRecord,
    ControlError,
    EmulatorState,
    Upload,
    WebhookConfig,
)

__all__ = ["EmulatorServer"]

log = logging.getLogger("telegram_emulator")

MAX_UPLOAD_SIZE = 50 * 1024 * 1024
_MAX_WAIT = 60.0
# The browser chat view (`GET /`): static files, no build step, nothing from a CDN.
_UI_DIR = Path(__file__).resolve().parent / "ui"
_UI_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _api_error(exc: ApiError) -> web.Response:
    return web.json_response(exc.to_json(), status=exc.error_code)


async def _read_multipart(
    reader: aiohttp.MultipartReader,
    params: dict[str, Any],
    uploads: dict[str, Upload],
    max_size: int,
) -> None:
    while True:
        part = await reader.next()
        if part is None:
            return
        if isinstance(part, aiohttp.MultipartReader):
            await part.release()
            continue
        name = part.name
        if not name:
            await part.release()
            continue
        if part.filename is None:
            params[name] = await part.text()
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            data.extend(chunk)
            if len(data) > max_size:
                raise ApiError(413, "Request Entity Too Large")
        uploads[name] = Upload(
            data=bytes(data),
            filename=part.filename,
            content_type=part.headers.get(hdrs.CONTENT_TYPE),
        )


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise ControlError(400, f"missing field {name!r}")
        return None
    if kind is int and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ControlError(400, f"field {name!r} must be {kind.__name__}")
    return value


def _query_int(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ControlError(400, f"missing query parameter {name!r}")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ControlError(400, f"query parameter {name!r} must be an integer") from None


def _query_str(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise ControlError(400, f"missing query parameter {name!r}")
    return value


def _user_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "first_name": _field(body, "first_name", str, required=False),
        "last_name": _field(body, "last_name", str, required=False),
        "username": _field(body, "username", str, required=False),
        "language_code": _field(body, "language_code", str, required=False),
    }


def _decode_data(body: dict[str, Any]) -> bytes:
    raw = _field(body, "data", str)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ControlError(400, "field 'data' must be base64") from None


class EmulatorServer:
    """A local Telegram Bot API + control API on one aiohttp server.

    ``state`` is the live :class:`EmulatorState` for in-process inspection. Webhook delivery
    retries ``webhook_max_attempts`` times, ``webhook_retry_delay`` seconds apart, then drops
    the update (both are plain attributes and may be changed at runtime).
    """

    def __init__(
        self,
        *,
        auto_register: bool = False,
        webhook_retry_delay: float = 0.2,
        webhook_max_attempts: int = 5,
        webhook_timeout: float = 10.0,
        max_upload_size: int = MAX_UPLOAD_SIZE,
        access_log: bool = False,
    ) -> None:
        self.state = EmulatorState(auto_register=auto_register)
        self.api = BotApi(self.state, on_webhook_change=self._on_webhook_change)
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_timeout = webhook_timeout
        self.max_upload_size = max_upload_size
        self.access_log = access_log
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._base_url: str | None = None
        self._webhook_tasks: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("EmulatorServer is not started")
        return self._base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            raise RuntimeError("EmulatorServer is already started")
        self.state.closing = False
        app = self.build_app()
        runner = web.AppRunner(
            app,
            shutdown_timeout=2.0,
            access_log=log if self.access_log else None,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._client = aiohttp.ClientSession()
        shown_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{shown_host}:{site.port}"
        for bot in self.state.bots.values():
            if bot.webhook is not None:
                self._on_webhook_change(bot)
        return self._base_url

    async def stop(self) -> None:
        self.state.close()
        tasks = list(self._webhook_tasks.values())
        self._webhook_tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        self._base_url = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def build_app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.max_upload_size + 1024 * 1024,
            middlewares=[self._control_errors],
        )
        router = app.router
        router.add_route("*", "/bot{token}/{method}", self._handle_bot)
        router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        router.add_get("/", self._ui_index)
        router.add_get("/ui/{name}", self._ui_file)
        control: list[tuple[str, str, _Handler]] = [
            ("GET", "/health", self._c_health),
            ("GET", "/bots", self._c_bots),
            ("POST", "/bots", self._c_register_bot),
            ("DELETE", "/bots/{token}", self._c_revoke_bot),
            ("POST", "/users/message", self._c_user_message),
            ("POST", "/users/contact", self._c_user_contact),
            ("POST", "/users/voice", self._c_user_voice),
            ("POST", "/users/document", self._c_user_document),
            ("POST", "/users/click", self._c_click),
            ("POST", "/users/click_reply", self._c_click_reply),
            ("POST", "/users/block", self._c_block),
            ("POST", "/users/unblock", self._c_unblock),
            ("GET", "/messages", self._c_messages),
            ("GET", "/chats", self._c_chats),
            ("GET", "/chat_actions", self._c_chat_actions),
            ("GET", "/callback_queries", self._c_callback_queries),
            ("GET", "/calls", self._c_calls),
            ("GET", "/commands", self._c_commands),
            ("GET", "/file", self._c_file),
            ("GET", "/webhook", self._c_webhook),
            ("POST", "/faults", self._c_inject_fault),
            ("GET", "/faults", self._c_faults),
            ("DELETE", "/faults", self._c_clear_faults),
            ("POST", "/reset", self._c_reset),
            ("GET", "/wait", self._c_wait),
        ]
        for method, path, handler in control:
            router.add_route(method, f"/_emulator{path}", handler)
        return app

    @web.middleware
    async def _control_errors(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ControlError as exc:
            body = {"ok": False, "error_code": exc.status, "description": exc.description}
            return web.json_response(body, status=exc.status)
        except ApiError as exc:
            return _api_error(exc)

    # ------------------------------------------------------------------ Bot API
    async def _read_request(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        params: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if not request.body_exists:
            return params, uploads
        content_type = request.content_type
        if content_type == "multipart/form-data":
            reader = await request.multipart()
            await _read_multipart(reader, params, uploads, self.max_upload_size)
        elif content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            params.update({key: value for key, value in form.items() if isinstance(value, str)})
        else:
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: can't parse JSON object")
                params.update(body)
        return params, uploads

    async def _handle_bot(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        method = request.match_info["method"]
        try:
            params, uploads = await self._read_request(request)
            result = await self.api.call(token, method, params, uploads)
        except ApiError as exc:
            return _api_error(exc)
        return _ok(result)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        try:
            self.state.resolve_bot(token)
        except ApiError as exc:
            return _api_error(exc)
        record = self.state.find_file_by_path(token, request.match_info["path"])
        if record is None:
            return _api_error(ApiError(404, "Not Found"))
        return web.Response(
            body=record.data,
            content_type=record.mime_type or "application/octet-stream",
        )

    # ------------------------------------------------------------------ browser view
    @staticmethod
    def _ui_response(name: str) -> web.Response:
        body = (_UI_DIR / name).read_bytes()
        return web.Response(
            body=body,
            content_type=_UI_FILES[name],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def _ui_index(self, request: web.Request) -> web.StreamResponse:
        return self._ui_response("index.html")

    async def _ui_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _UI_FILES:
            raise web.HTTPNotFound()
        return self._ui_response(name)

    # ------------------------------------------------------------------ webhooks
    def _on_webhook_change(self, bot: BotRecord) -> None:
        if self._runner is None or bot.webhook is None:
            return
        task = self._webhook_tasks.get(bot.token)
        if task is not None and not task.done():
            return
        task = asyncio.get_running_loop().create_task(
            self._webhook_worker(bot.token), name=f"webhook-{bot.id}"
        )
        self._webhook_tasks[bot.token] = task

        def forget(done: asyncio.Task[None], token: str = bot.token) -> None:
            if self._webhook_tasks.get(token) is done:
                del self._webhook_tasks[token]

        task.add_done_callback(forget)

    async def _webhook_worker(self, token: str) -> None:
        attempts = 0
        generation = -1
        while not self.state.closing:
            bot = self.state.bots.get(token)
            if bot is None or bot.webhook is None:
                return
            config = bot.webhook
            if config.generation != generation:
                generation = config.generation
                attempts = 0
            if not bot.updates:
                await bot.notifier.wait(None)
                continue
            update = bot.updates[0]
            delivered = await self._deliver(bot, config, update)
            attempts += 1
            if delivered or attempts >= self.webhook_max_attempts:
                if not delivered:
                    log.warning("dropping update %s after %d failed attempts", update, attempts)
                if bot.updates and bot.updates[0]["update_id"] == update["update_id"]:
                    bot.updates.pop(0)
                    self.state.mark_changed()
                attempts = 0
                continue
            await asyncio.sleep(self.webhook_retry_delay)

    async def _deliver(self, bot: BotRecord, config: WebhookConfig, update: dict[str, Any]) -> bool:
        assert self._client is not None
        headers = {}
        if config.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = config.secret_token
        error: str
        try:
            async with self._client.post(
                config.url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:
                if 200 <= response.status < 300:
                    await self._webhook_reply(bot, response)
                    return True
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientConnectorError:
            error = "Connection refused"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        bot.last_error_date = int(time.time())
        bot.last_error_message = error
        self.state.mark_changed()
        return False

    async def _webhook_reply(self, bot: BotRecord, response: aiohttp.ClientResponse) -> None:
        """Execute a method call returned in the webhook response body, if any."""
        params: dict[str, Any] = {}
        uploads: dict[str, Upload] = {}
        try:
            if response.content_type == "multipart/form-data":
                reader = aiohttp.MultipartReader(response.headers, response.content)
                await _read_multipart(reader, params, uploads, self.max_upload_size)
            else:
                raw = await response.read()
                if not raw.strip():
                    return
                body = json.loads(raw)
                if not isinstance(body, dict):
                    return
                params = body
        except (ValueError, ApiError, aiohttp.ClientError) as exc:
            log.warning("unreadable webhook reply from %s: %s", bot.username, exc)
            return
        method = params.pop("method", None)
        if not isinstance(method, str) or not method:
            return
        with contextlib.suppress(ApiError):  # recorded in the call log like any failed call
            await self.api.call(bot.token, method, params, uploads, source="webhook-reply")

    # ------------------------------------------------------------------ control API
    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if not request.body_exists:
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise ControlError(400, "request body must be a JSON object") from None
        if not isinstance(body, dict):
            raise ControlError(400, "request body must be a JSON object")
        return body

    async def _c_health(self, request: web.Request) -> web.StreamResponse:
        return _ok({"version": self.state.version})

    async def _c_bots(self, request: web.Request) -> web.StreamResponse:
        return _ok([{**bot.to_api(), "token": bot.token} for bot in self.state.bots.values()])

    async def _c_register_bot(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        bot = self.state.register_bot(
            _field(body, "token", str),
            _field(body, "username", str, required=False),
            _field(body, "first_name", str, required=False) or "Bot",
        )
        return _ok(bot.to_api())

    async def _c_revoke_bot(self, request: web.Request) -> web.StreamResponse:
        self.state.revoke_bot(request.match_info["token"])
        return _ok(True)

    async def _c_user_message(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        update = self.state.user_text(
            _field(body, "token", str),
            _field(body, "user_id", int),
            _field(body, "text", str),
            reply_to_message_id=_field(body, "reply_to_message_id", int, required=False),
            **_user_fields(body),
        )
        return _ok(update)

    async def _c_user_contact(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        update = self.state.user_contact(
            _field(body, "token", str),
            _field(body, "user_id", int),
            _field(body, "phone_number", str),
            contact_first_name=_field(body, "contact_first_name", str, required=False),
            contact_last_name=_field(body, "contact_last_name", str, required=False),
            contact_user_id=_field(body, "contact_user_id", int, required=False),
            **_user_fields(body),
        )
        return _ok(update)

    async def _c_user_voice(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        update = self.state.user_file(
            _field(body, "token", str),
            _field(body, "user_id", int),
            "voice",
            _decode_data(body),
            mime_type=_field(body, "mime_type", str, required=False) or "audio/ogg",
            duration=_field(body, "duration", int, required=False) or 0,
            caption=_field(body, "caption", str, required=False),
            **_user_fields(body),
        )
        return _ok(update)

    async def _c_user_document(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        update = self.state.user_file(
            _field(body, "token", str),
            _field(body, "user_id", int),
            "document",
            _decode_data(body),
            file_name=_field(body, "filename", str, required=False),
            mime_type=_field(body, "mime_type", str, required=False),
            caption=_field(body, "caption", str, required=False),
            **_user_fields(body),
        )
        return _ok(update)

    async def _c_click(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        query_id, update = self.state.click(
            _field(body, "token", str),
            _field(body, "user_id", int),
            _field(body, "message_id", int),
            text=_field(body, "text", str, required=False),
            callback_data=_field(body, "callback_data", str, required=False),
        )
        return _ok({"callback_query_id": query_id, "update": update})

    async def _c_click_reply(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        update = self.state.click_reply(
            _field(body, "token", str), _field(body, "user_id", int), _field(body, "text", str)
        )
        return _ok(update)

    async def _c_block(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        self.state.block(_field(body, "token", str), _field(body, "user_id", int))
        return _ok(True)

    async def _c_unblock(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        self.state.unblock(_field(body, "token", str), _field(body, "user_id", int))
        return _ok(True)

    async def _c_messages(self, request: web.Request) -> web.StreamResponse:
        version = self.state.version
        token = _query_str(request, "token")
        self.state.control_bot(token)
        chat = self.state.get_chat(token, _query_int(request, "chat_id"))
        include_incoming = request.query.get("include_incoming", "") in ("1", "true")
        messages = [
            self.state.message_to_control(message)
            for message in (chat.messages if chat else [])
            if message.outgoing or include_incoming
        ]
        return _ok(
            {
                "version": version,
                "messages": messages,
                "reply_keyboard": chat.reply_keyboard if chat else None,
            }
        )

    async def _c_chats(self, request: web.Request) -> web.StreamResponse:
        """The users who have a chat with the bot, most recently active first."""
        token = _query_str(request, "token")
        self.state.control_bot(token)
        chats = [chat for (owner, _), chat in self.state.chats.items() if owner == token]
        chats.sort(key=lambda chat: chat.messages[-1].date if chat.messages else 0, reverse=True)
        return _ok(
            [
                {
                    "user_id": chat.user.id,
                    "first_name": chat.user.first_name,
                    "username": chat.user.username,
                    "messages": len(chat.messages),
                }
                for chat in chats
            ]
        )

    async def _c_chat_actions(self, request: web.Request) -> web.StreamResponse:
        chat = self.state.get_chat(_query_str(request, "token"), _query_int(request, "chat_id"))
        actions = chat.actions if chat else []
        return _ok([{"chat_id": a.chat_id, "action": a.action, "time": a.time} for a in actions])

    async def _c_callback_queries(self, request: web.Request) -> web.StreamResponse:
        version = self.state.version
        token = _query_str(request, "token")
        queries = [q.to_json() for q in self.state.callback_queries.values() if q.token == token]
        return _ok({"version": version, "queries": queries})

    async def _c_calls(self, request: web.Request) -> web.StreamResponse:
        version = self.state.version
        calls = self.state.calls_for(request.query.get("token"), request.query.get("method"))
        return _ok({"version": version, "calls": [call.to_json() for call in calls]})

    async def _c_commands(self, request: web.Request) -> web.StreamResponse:
        bot = self.state.control_bot(_query_str(request, "token"))
        scope_raw = request.query.get("scope")
        try:
            scope = json.loads(scope_raw) if scope_raw else {"type": "default"}
        except ValueError:
            raise ControlError(400, "scope must be JSON") from None
        key = (json.dumps(scope, sort_keys=True), request.query.get("language_code", ""))
        return _ok(list(bot.commands.get(key, [])))

    async def _c_file(self, request: web.Request) -> web.StreamResponse:
        record = self.state.find_file(_query_str(request, "token"), _query_str(request, "file_id"))
        if record is None:
            raise ControlError(404, "file not found for this bot")
        return web.Response(body=record.data, content_type="application/octet-stream")

    async def _c_webhook(self, request: web.Request) -> web.StreamResponse:
        bot = self.state.control_bot(_query_str(request, "token"))
        return _ok(bot.webhook_info())

    async def _c_inject_fault(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        fault = self.state.inject_fault(
            _field(body, "token", str),
            _field(body, "method", str),
            error_code=_field(body, "error_code", int),
            description=_field(body, "description", str),
            retry_after=_field(body, "retry_after", int, required=False),
            chat_id=_field(body, "chat_id", int, required=False),
            count=_field(body, "count", int, required=False) or 1,
        )
        return _ok(fault.to_json())

    async def _c_faults(self, request: web.Request) -> web.StreamResponse:
        return _ok([fault.to_json() for fault in self.state.faults])

    async def _c_clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.state.clear_faults(request.query.get("token") or None)
        return _ok(True)

    async def _c_reset(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        keep = body.get("keep_bots", True)
        self.state.reset(keep_bots=bool(keep))
        return _ok(True)

    async def _c_wait(self, request: web.Request) -> web.StreamResponse:
        since = _query_int(request, "since")
        try:
            timeout = float(request.query.get("timeout", "10"))
        except ValueError:
            raise ControlError(400, "timeout must be a number") from None
        version = await self.state.wait_changed(since, min(max(timeout, 0.0), _MAX_WAIT))
        return _ok({"version": version})
