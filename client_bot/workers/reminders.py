"""Sends due booking reminders. Due reminders live in the tenant schema, not in memory:
each is claimed in the database before it is sent, so it goes out once, also across restarts.
A temporary failure (Telegram down, 429) gives it back for the next pass.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError, TelegramNetworkError, TelegramRetryAfter
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.context import TenantContext
from core.loops import run_every

log = logging.getLogger(__name__)


class ReminderWorker:
    def __init__(self, ctx: TenantContext, bot: Bot, interval: float = 30.0) -> None:
        self.ctx = ctx
        self.bot = bot
        self.interval = interval

    async def tick(self) -> int:
        """One pass: send every due reminder; returns how many were delivered."""
        due = await self.ctx.store.claim_due_reminders(self.ctx.now())
        if not due:
            return 0
        business = await self.ctx.business()
        sent = 0
        with self.ctx.i18n.context(), self.ctx.i18n.use_locale(business.locale):
            for item in due:
                b = item.booking
                body = _("⏰ Reminder: <b>{service}</b>, {when}.\nBooking #{id}. See you!").format(
                    service=text.esc(b.service_name),
                    when=text.when(b.starts_at, business.timezone, business.locale),
                    id=b.id,
                )
                if business.address:
                    body += "\n" + _("Address: {address}").format(
                        address=text.esc(business.address)
                    )
                try:
                    await self.bot.send_message(b.customer_id, body)
                    sent += 1
                except TelegramForbiddenError:
                    await self.ctx.store.mark_blocked(b.customer_id)
                except (TelegramRetryAfter, TelegramNetworkError) as exc:
                    log.warning("reminder for booking %s postponed: %s", b.id, exc)
                    await self.ctx.store.release_reminder(b.id, item.offset_min)
        return sent

    async def run(self) -> None:
        await run_every(self.interval, self.tick, "reminder pass")
