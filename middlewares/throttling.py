"""Flood protection per user, counted in Redis under the tenant's prefix.

A fixed window per user: more than `limit` events in `window` seconds and further events are
dropped (the first dropped one gets a short answer). Handlers can set their own policy with the
flag `throttling`: `@router.message(..., flags={"throttling": {"limit": 3, "window": 10}})`,
or `flags={"throttling": False}` to be exempt.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.types import CallbackQuery, Message, TelegramObject
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class ThrottlingMiddleware(BaseMiddleware):
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        *,
        limit: int = 20,
        window: int = 10,
        on_throttled: Callable[[TelegramObject], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = f"{key_prefix}throttle:"
        self.limit = limit
        self.window = window
        self.on_throttled = on_throttled

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = data.get("event_from_user")
        policy = get_flag(data, "throttling", default=None)
        if user is None or policy is False:
            return await handler(event, data)
        limit = policy.get("limit", self.limit) if isinstance(policy, dict) else self.limit
        window = policy.get("window", self.window) if isinstance(policy, dict) else self.window
        key = f"{self.prefix}{user.id}"
        try:
            # One round trip, no MULTI/EXEC: both commands go in one write and Redis runs them
            # in order; the update is handled one way or the other anyway.
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
                count, _ = await pipe.execute()
        except RedisError as exc:  # fail open: a Redis hiccup must not silence the bot
            log.warning("throttling unavailable: %s", exc)
            return await handler(event, data)
        if count <= limit:
            return await handler(event, data)
        if count == limit + 1 and self.on_throttled is not None:
            await self.on_throttled(event)
        elif isinstance(event, CallbackQuery):
            await event.answer()
        return None


async def polite_refusal(event: TelegramObject, text: str) -> None:
    if isinstance(event, Message):
        await event.answer(text)
    elif isinstance(event, CallbackQuery):
        await event.answer(text, show_alert=False)
