"""Cost and flood limits of the assistant, counted in Redis under the tenant's prefix.

- Per customer: at most `rate_limit` messages to the assistant in `rate_window` seconds
  (`<tenant_id>:ai:rate:<customer_id>`, a fixed window: INCR + EXPIRE NX).
- Per tenant: at most `daily_tokens` tokens a day (`<tenant_id>:ai:tokens:<YYYY-MM-DD>`, the
  business's local day; INCRBY after each turn; kept two days). 0 = no budget.

One round trip before the model is called, one after. A Redis failure lets the turn through
(the assistant must not go silent because a counter is unavailable).
"""

from __future__ import annotations

import enum
import logging
from datetime import date

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
DAY_SECONDS = 24 * 3600


class Refusal(enum.StrEnum):
    RATE = "rate"
    BUDGET = "budget"


class Limits:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        *,
        daily_tokens: int,
        rate_limit: int,
        rate_window: int,
    ) -> None:
        self.redis = redis
        self.prefix = f"{key_prefix}ai:"
        self.daily_tokens = daily_tokens
        self.rate_limit = rate_limit
        self.rate_window = rate_window

    def rate_key(self, customer_id: int) -> str:
        return f"{self.prefix}rate:{customer_id}"

    def tokens_key(self, day: date) -> str:
        return f"{self.prefix}tokens:{day.isoformat()}"

    async def admit(self, customer_id: int, day: date) -> Refusal | None:
        """Count this message; why the model must not be called now, or None."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(self.rate_key(customer_id))
                pipe.expire(self.rate_key(customer_id), self.rate_window, nx=True)
                pipe.get(self.tokens_key(day))
                count, _, spent = await pipe.execute()
        except RedisError as exc:
            log.warning("assistant limits unavailable: %s", exc)
            return None
        if self.daily_tokens and int(spent or 0) >= self.daily_tokens:
            return Refusal.BUDGET
        if int(count) > self.rate_limit:
            return Refusal.RATE
        return None

    async def spend(self, day: date, tokens: int) -> None:
        if tokens <= 0:
            return
        key = self.tokens_key(day)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(key, tokens)
                pipe.expire(key, 2 * DAY_SECONDS)
                await pipe.execute()
        except RedisError as exc:
            log.warning("assistant token usage not counted: %s", exc)

    async def spent(self, day: date) -> int:
        try:
            return int(await self.redis.get(self.tokens_key(day)) or 0)
        except RedisError:
            return 0
