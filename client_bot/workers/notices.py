"""The periodic retry of notices to admins that Telegram has not delivered yet (an owner who has
not opened the bot gets them at once when they write; this covers Telegram's bad moments).

Every `interval` while notices wait; while none do, the pause doubles up to `max_interval`, so
a quiet tenant opens a PostgreSQL connection for it every 15 minutes rather than every minute
(a hub of 1,000 tenants held ~167 idle backends with a pass a minute: bench_fleet). A notice this
process keeps for later (`ctx.notices_waiting`) brings the pace back at once; one written by
another process (the web) waits for the next pass or for the admin's next message."""

from __future__ import annotations

from aiogram import Bot

from client_bot.context import TenantContext
from client_bot.notices import NoticeOutbox
from core.loops import run_every


class NoticeRetry:
    def __init__(
        self,
        ctx: TenantContext,
        bot: Bot,
        *,
        interval: float = 60.0,
        max_interval: float = 900.0,
    ) -> None:
        self.outbox = NoticeOutbox(ctx, bot, wake_retry=False)
        self.interval = interval
        self.max_interval = max(max_interval, interval)
        self.delay = interval

    async def tick(self) -> int:
        """One pass; how many notices were delivered."""
        return await self.outbox.flush_all()

    async def pass_and_delay(self) -> float:
        """One pass; then the pause before the next: `interval` while notices still wait,
        else twice the last pause, up to `max_interval`."""
        self.outbox.ctx.notices_waiting.clear()
        await self.tick()
        waiting = await self.outbox.store.pending_admins()
        self.delay = self.interval if waiting else min(self.delay * 2, self.max_interval)
        return self.delay

    async def run(self) -> None:
        await run_every(self.interval, self.tick, "admin notices retry")
