"""Hourly housekeeping of one tenant's data: the assistant's conversations older than
ASSISTANT_HISTORY_DAYS are deleted (customers' messages are personal data; the assistant itself
only ever reads a customer's last 20 messages), and so are notices to admins delivered (or
abandoned) more than 30 days ago.

The first pass comes at a random moment within the first interval, not at start: a fleet (or a
hub) starting many tenants at once would otherwise clean them all at the same moment, each on a
PostgreSQL connection of its own."""

from __future__ import annotations

import asyncio
import logging
import random

from client_bot.context import TenantContext
from client_bot.store.notices import NoticeStore
from core.loops import run_every

log = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self, ctx: TenantContext, *, history_days: int, interval: float = 3600.0) -> None:
        self.ctx = ctx
        self.history_days = history_days
        self.interval = interval

    async def tick(self) -> int:
        """One pass; how many messages were deleted."""
        gone = await self.ctx.store.assistant.forget_messages(self.history_days)
        if gone:
            log.info("deleted %d assistant messages older than %d days", gone, self.history_days)
        notices = await NoticeStore(self.ctx.store.pool).forget_old()
        if notices:
            log.info("deleted %d old notices to admins", notices)
        return gone

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, self.interval))  # noqa: S311 - not a secret
        await run_every(self.interval, self.tick, "housekeeping pass")
