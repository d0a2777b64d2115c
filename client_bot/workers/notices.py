"""The periodic retry of notices to admins that Telegram has not delivered yet (an owner who has
not opened the bot gets them at once when they write; this covers Telegram's bad moments)."""

from __future__ import annotations

from aiogram import Bot

from client_bot.context import TenantContext
from client_bot.notices import NoticeOutbox
from core.loops import run_every


class NoticeRetry:
    def __init__(self, ctx: TenantContext, bot: Bot, *, interval: float = 60.0) -> None:
        self.outbox = NoticeOutbox(ctx, bot)
        self.interval = interval

    async def tick(self) -> int:
        """One pass; how many notices were delivered."""
        return await self.outbox.flush_all()

    async def run(self) -> None:
        await run_every(self.interval, self.tick, "admin notices retry")
