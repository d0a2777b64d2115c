"""The language model behind the assistant: chat completions with tools, and speech to text.

`OpenAIModel` uses the official `openai` SDK (`AsyncOpenAI`) against any OpenAI-compatible
server (OPENAI_BASE_URL). The SDK is imported in its constructor only, so a bot without a key
never loads it. Retries are ours (the SDK's are switched off): 429 and 5xx, timeouts and
connection errors are retried with exponential backoff (a server's Retry-After is honoured up to
the cap), then `ModelUnavailableError`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelUnavailableError(Exception):
    """The model did not answer (after the retries, or with an error not worth retrying)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it (validated by the tool, not here)


@dataclass(frozen=True, slots=True)
class Completion:
    content: str | None
    tool_calls: Sequence[ToolCall]
    prompt_tokens: int
    completion_tokens: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatModel(Protocol):
    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
    ) -> Completion: ...

    async def transcribe(self, audio: bytes, filename: str) -> str: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # in all, the first one included
    base_delay: float = 0.5  # seconds before the first retry; doubles each time
    max_delay: float = 8.0  # cap of one wait, a server's Retry-After included

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_delay)
        backoff = min(self.base_delay * 2.0**retry, self.max_delay)
        return backoff * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not a secret


def retry_after_seconds(headers: Any) -> float | None:
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if not isinstance(value, str):
            continue
        try:
            seconds: float = float(value) / divisor
            return seconds
        except ValueError:
            continue
    return None


def estimate_tokens(chars: int) -> int:
    """About four characters a token: used when a server does not report usage."""
    return max(1, chars // 4)


class OpenAIModel:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        model: str,
        transcription_model: str,
        timeout: float,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        import openai  # lazy: only a bot with a key pays for the SDK

        self._openai = openai
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )
        self.model = model
        self.transcription_model = transcription_model
        self.retry = retry
        self._sleep = sleep

    async def close(self) -> None:
        await self._client.close()

    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
    ) -> Completion:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        if tools:
            body["tools"] = list(tools)
        chat_completion = self._openai.types.chat.ChatCompletion

        async def call() -> openai.types.chat.ChatCompletion:
            # The SDK's documented `client.post` with a body we built and validated ourselves:
            # the typed `chat.completions.create()` walks every message and tool schema through
            # its TypedDict transforms first, ~10 ms of CPU per call here — more than the rest
            # of a turn. Auth, timeouts, errors and response parsing are the SDK's all the same.
            return await self._client.post("/chat/completions", cast_to=chat_completion, body=body)

        response = await self._with_retries(call, "chat")
        if not response.choices:
            raise ModelUnavailableError("the model returned no choices")
        message = response.choices[0].message
        calls = [
            ToolCall(c.id, c.function.name, c.function.arguments)
            for c in message.tool_calls or ()
            if c.type == "function"
        ]
        usage = response.usage
        if usage is not None:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
        else:
            prompt = estimate_tokens(sum(len(str(m.get("content") or "")) for m in messages))
            completion = estimate_tokens(len(message.content or ""))
        return Completion(message.content, calls, prompt, completion)

    async def transcribe(self, audio: bytes, filename: str) -> str:
        async def call() -> openai.types.audio.Transcription:
            return await self._client.audio.transcriptions.create(
                file=(filename, audio, "audio/ogg"), model=self.transcription_model
            )

        result = await self._with_retries(call, "transcription")
        return result.text.strip()

    async def _with_retries(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        openai = self._openai
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            retry_after: float | None = None
            try:
                return await call()
            except (openai.RateLimitError, openai.InternalServerError) as exc:
                last = exc
                retry_after = retry_after_seconds(exc.response.headers)
                log.warning("%s: %s (attempt %d)", what, exc.status_code, attempt + 1)
            except openai.APIConnectionError as exc:  # timeouts included
                last = exc
                log.warning("%s: %s (attempt %d)", what, type(exc).__name__, attempt + 1)
            except openai.OpenAIError as exc:  # 400, 401, 404...: retrying will not help
                log.error("%s failed: %s", what, type(exc).__name__)
                raise ModelUnavailableError(str(exc)) from exc
            if attempt + 1 < self.retry.attempts:
                await self._sleep(self.retry.delay(attempt, retry_after))
        raise ModelUnavailableError(
            f"{what}: no answer after {self.retry.attempts} attempts"
        ) from last
