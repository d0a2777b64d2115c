"""The AI sales assistant: answers, books and captures leads through OpenAI tool calls.

Plain modules, testable without Telegram: `prompt` (the system prompt from the tenant's data),
`tools` (argument models and tenant-scoped actions), `model` (the OpenAI-compatible client with
retries), `limits` (token budget and rate limit in Redis), `turn` (one message in, one answer
out). The `openai` SDK is imported only when `build_assistant` finds a key (`OpenAIModel`'s
constructor), so an idle bot without one never loads it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from client_bot.assistant.limits import Limits, Refusal
from client_bot.assistant.model import ChatModel, ModelUnavailableError, OpenAIModel, RetryPolicy
from client_bot.assistant.turn import Assistant, CustomerNotifier, Outcome, Reply
from client_bot.context import TenantContext
from core.settings import ClientBotSettings

__all__ = [
    "Assistant",
    "ChatModel",
    "CustomerNotifier",
    "Limits",
    "ModelUnavailableError",
    "Outcome",
    "Refusal",
    "Reply",
    "RetryPolicy",
    "build_assistant",
]


def build_assistant(
    settings: ClientBotSettings, ctx: TenantContext, redis: Redis, notifier: CustomerNotifier
) -> Assistant | None:
    """The tenant's assistant, or None when no OPENAI_API_KEY is configured (assistant off)."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if not key:
        return None
    model = OpenAIModel(  # imports the SDK
        api_key=key,
        base_url=str(settings.openai_base_url),
        model=settings.openai_model,
        transcription_model=settings.openai_transcription_model,
        timeout=settings.openai_timeout,
        retry=RetryPolicy(
            attempts=settings.openai_max_retries + 1,
            base_delay=settings.openai_retry_delay,
            max_delay=settings.openai_retry_max_delay,
        ),
    )
    limits = Limits(
        redis,
        settings.redis_key_prefix,
        daily_tokens=settings.assistant_daily_tokens,
        rate_limit=settings.assistant_rate_limit,
        rate_window=settings.assistant_rate_window,
    )
    return Assistant(ctx, model, limits, notifier)
