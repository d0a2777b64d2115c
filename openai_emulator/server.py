"""`OpenAIEmulator`: `POST /v1/chat/completions` and `POST /v1/audio/transcriptions`."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CHAT = "chat"
TRANSCRIPTION = "transcription"


@dataclass(frozen=True)
class ScriptedReply:
    """A successful answer: chat content and/or tool calls, or a transcript."""

    content: str | None = None
    tool_calls: tuple[tuple[str, str], ...] = ()  # (name, JSON arguments)
    prompt_tokens: int | None = None  # None: estimated from the request
    completion_tokens: int | None = None
    delay: float = 0.0  # seconds before answering (to provoke client timeouts)


@dataclass(frozen=True)
class ScriptedError:
    status: int
    message: str = "scripted error"
    retry_after: float | None = None
    delay: float = 0.0


Scripted = ScriptedReply | ScriptedError


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages

    @property
    def system(self) -> str:
        return next((str(m["content"]) for m in self.messages if m["role"] == "system"), "")

    @property
    def tool_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["role"] == "tool"]

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools", [])]

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool messages' contents, decoded from JSON."""
        return [json.loads(m["content"]) for m in self.tool_messages]


@dataclass(frozen=True)
class TranscriptionRequest:
    model: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class OpenAIEmulator:
    api_key: str | None = "test-key"  # None: any key (or none) is accepted
    default_reply: str = "OK"
    default_transcript: str = ""
    chat_requests: list[ChatRequest] = field(default_factory=list)
    transcription_requests: list[TranscriptionRequest] = field(default_factory=list)
    _queues: dict[str, deque[Scripted]] = field(
        default_factory=lambda: {CHAT: deque(), TRANSCRIPTION: deque()}
    )
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _port: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcription)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._port = sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OpenAIEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    # --- scripting --------------------------------------------------------------------------
    def reply(self, content: str, **kwargs: Any) -> None:
        """The next chat completion answers `content`."""
        self._queues[CHAT].append(ScriptedReply(content=content, **kwargs))

    def call_tools(self, *calls: tuple[str, dict[str, Any] | str], **kwargs: Any) -> None:
        """The next chat completion asks for these tool calls (arguments as a dict or raw text)."""
        encoded = tuple(
            (name, args if isinstance(args, str) else json.dumps(args, ensure_ascii=False))
            for name, args in calls
        )
        self._queues[CHAT].append(ScriptedReply(tool_calls=encoded, **kwargs))

    def fail(self, status: int, *, times: int = 1, endpoint: str = CHAT, **kwargs: Any) -> None:
        """The next `times` requests to `endpoint` get HTTP `status`."""
        for _ in range(times):
            self._queues[endpoint].append(ScriptedError(status, **kwargs))

    def transcript(self, content: str, **kwargs: Any) -> None:
        self._queues[TRANSCRIPTION].append(ScriptedReply(content=content, **kwargs))

    def pending(self, endpoint: str = CHAT) -> int:
        return len(self._queues[endpoint])

    async def wait_for_chat(
        self,
        count: int,
        timeout: float = 10,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> list[ChatRequest]:
        """Until at least `count` chat requests arrived."""
        async with asyncio.timeout(timeout):
            while len(self.chat_requests) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.chat_requests

    # --- endpoints --------------------------------------------------------------------------
    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Incorrect API key provided.", "invalid_request_error")

    def _next(self, endpoint: str) -> Scripted | None:
        queue = self._queues[endpoint]
        return queue.popleft() if queue else None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        body = await request.json()
        self.chat_requests.append(ChatRequest(body, dict(request.headers)))
        self._changed.set()
        scripted = self._next(CHAT) or ScriptedReply(content=self.default_reply)
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        if isinstance(scripted, ScriptedError):
            return _scripted_error(scripted)
        n = next(self._ids)
        tool_calls = [
            {
                "id": f"call_{n}_{i}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for i, (name, arguments) in enumerate(scripted.tool_calls)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": scripted.content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        prompt = scripted.prompt_tokens
        if prompt is None:
            prompt = max(1, len(json.dumps(body.get("messages", []), ensure_ascii=False)) // 4)
        completion = scripted.completion_tokens
        if completion is None:
            completion = max(1, len(scripted.content or "") // 4) + 10 * len(tool_calls)
        return web.json_response(
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "emulated"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if tool_calls else "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )

    async def _transcription(self, request: web.Request) -> web.StreamResponse:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return _error(400, "file is required", "invalid_request_error")
        self.transcription_requests.append(
            TranscriptionRequest(
                model=str(form.get("model", "")),
                filename=upload.filename,
                content_type=upload.content_type,
                data=upload.file.read(),
            )
        )
        self._changed.set()
        scripted = self._next(TRANSCRIPTION) or ScriptedReply(content=self.default_transcript)
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        if isinstance(scripted, ScriptedError):
            return _scripted_error(scripted)
        return web.json_response({"text": scripted.content or ""})


def _error(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": None}},
        status=status,
        headers=headers,
    )


def _scripted_error(scripted: ScriptedError) -> web.Response:
    headers = {}
    if scripted.retry_after is not None:
        headers["Retry-After"] = f"{scripted.retry_after:g}"
    kind = "rate_limit_exceeded" if scripted.status == 429 else "server_error"
    return _error(scripted.status, scripted.message, kind, headers)
