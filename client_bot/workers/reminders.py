"""Sends due booking reminders. Due reminders live in the tenant schema, not in memory:
each is claimed in the database before it is sent, so it goes out once, also across restarts.
A temporary failure (Telegram down, 429) gives it back for a pass `RETRY_SECONDS` later.

The worker does not poll: after a pass it reads when the next reminder is due and sleeps until
then (at most `interval`, a safety net), so a quiet tenant touches PostgreSQL rarely and holds no
connection in between. A booking written in this process sets `ctx.reminders_changed`, which
wakes the worker at once to read the new next due time: a new booking's reminder is never late.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import datetime

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.context import TenantContext
from client_bot.notices import staff_reminder, tell_staff
from client_bot.store import Booking, Business

log = logging.getLogger(__name__)

# Seconds before reminders given back after a temporary failure (or a failed pass) are retried.
RETRY_SECONDS = 30.0
# Seconds added to a due time before waking, so the reminder is due when the pass runs.
LATE_MARGIN = 0.05
# Reminders one claim hands out at most (Store.claim_due_reminders' default).
CLAIM_LIMIT = 50


class ReminderWorker:
    def __init__(self, ctx: TenantContext, bot: Bot, interval: float = 900.0) -> None:
        self.ctx = ctx
        self.bot = bot
        self.interval = interval  # the longest sleep between two passes
        self.claimed = 0  # reminders the last pass claimed
        self.postponed = 0  # of them, given back after a temporary failure
        self.passes = 0  # passes made by `run`
        self.first_pass_done = asyncio.Event()

    async def tick(self) -> int:
        """One pass: send every due reminder; returns how many were delivered."""
        self.postponed = 0
        due = await self.ctx.store.claim_due_reminders(self.ctx.now(), CLAIM_LIMIT)
        self.claimed = len(due)
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
                except TelegramBadRequest as exc:  # e.g. a web customer: no chat, not ever
                    log.warning("reminder for booking %s not sent: %s", b.id, exc)
                except (TelegramRetryAfter, TelegramNetworkError) as exc:
                    log.warning("reminder for booking %s postponed: %s", b.id, exc)
                    await self.ctx.store.release_reminder(b.id, item.offset_min)
                    self.postponed += 1
                    continue  # the staff member hears of it with the retry
                # The staff member it is with hears of it too (when linked in Telegram);
                # best-effort, never retried: the customer's reminder is what is claimed.
                await self._tell_staff(b, business)
        return sent

    async def _tell_staff(self, booking: Booking, business: Business) -> None:
        try:
            await tell_staff(
                self.ctx,
                self.bot,
                booking.staff_id,
                staff_reminder(booking, business),
                admins_too=True,
            )
        except Exception:  # the customer's reminder must go out whatever happens here
            log.exception("staff reminder of booking %s not sent", booking.id)

    async def next_due(self) -> datetime | None:
        """When the earliest unsent reminder is due (None: there is none)."""
        due: datetime | None = await self.ctx.store.pool.fetchval(
            "SELECT min(due_at) FROM reminders WHERE sent_at IS NULL"
        )
        return due

    async def pass_and_delay(self) -> float:
        """One pass; then how many seconds to sleep before the next one."""
        started = self.ctx.now()
        await self.tick()
        due = await self.next_due()
        if due is None:
            return self.interval
        delay = (due - self.ctx.now()).total_seconds()
        if delay <= 0 and due <= started and (self.postponed or self.claimed < CLAIM_LIMIT):
            # Due before this pass and still unsent: given back after a temporary failure, or
            # being sent by another runtime right now (claimed rows are skipped, not waited
            # for). Retry a little later rather than in a loop. (A full batch: go on at once.)
            delay = RETRY_SECONDS
        return min(max(delay, 0.0) + LATE_MARGIN, self.interval)

    async def run(self) -> None:
        """Passes until cancelled: one now, then one whenever the next reminder is due or a
        booking was written (`ctx.reminders_changed`). A failed pass is logged and retried."""
        wake = self.ctx.reminders_changed
        while True:
            wake.clear()  # before reading: a booking written during the pass wakes the next wait
            try:
                delay = await self.pass_and_delay()
            except Exception:
                log.exception("reminder pass failed")
                delay = min(RETRY_SECONDS, self.interval)
            self.passes += 1
            self.first_pass_done.set()
            if delay > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
