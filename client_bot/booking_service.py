"""Booking and cancelling on behalf of a customer: one path for the menu flow and the assistant.

The rules themselves live in `client_bot.booking` (pure); this module applies them to the
tenant's current state and stores the result. Telegram is not touched here: callers tell the
customer and the admins (`client_bot.notices`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from client_bot.booking import SlotProblem, can_cancel, validate_slot
from client_bot.context import TenantContext
from client_bot.store import Booking, Service, SlotTakenError


@dataclass(frozen=True, slots=True)
class Booker:
    """The Telegram user a booking is for (always the one talking to the bot)."""

    id: int
    first_name: str
    username: str | None = None
    language: str | None = None


async def slot_problem(
    ctx: TenantContext, service: Service, start: datetime, *, before_insert: bool = False
) -> SlotProblem | None:
    """Why `start` cannot be booked for `service` right now, or None when it is free.

    `before_insert`: the caller inserts next. Without a buffer between bookings an overlap is then
    exactly what the database's exclusion constraint refuses, so existing bookings are not read."""
    business = await ctx.business()
    read_busy = not before_insert or business.buffer_min > 0
    busy = await ctx.busy_around(start) if read_busy else []
    return validate_slot(await ctx.schedule(), service.duration_min, start, busy, ctx.now())


async def place_booking(
    ctx: TenantContext,
    booker: Booker,
    service: Service,
    start: datetime,
    *,
    name: str,
    phone: str,
    source: str = "menu",
) -> Booking | SlotProblem:
    """Re-check the slot, record the customer (with the phone) and insert the booking with its
    due reminders. A slot someone else took first comes back as `SlotProblem.TAKEN`."""
    problem = await slot_problem(ctx, service, start, before_insert=True)
    if problem is not None:
        return problem
    business = await ctx.business()
    now = ctx.now()
    await ctx.store.touch_customer(
        booker.id, booker.first_name, booker.username, booker.language, phone=phone
    )
    reminders = [
        (offset, start - timedelta(minutes=offset))
        for offset in business.reminder_offsets_min
        if start - timedelta(minutes=offset) > now
    ]
    try:
        booking = await ctx.store.create_booking(
            customer_id=booker.id,
            service=service,
            starts_at=start,
            customer_name=name,
            phone=phone,
            reminders=reminders,
            source=source,
        )
    except SlotTakenError:
        return SlotProblem.TAKEN
    if reminders:
        # The reminder worker sleeps until the next due reminder it knew of; this one may be
        # earlier. (A cancellation needs no wake-up: it only removes reminders, and a worker
        # waking for a removed one just finds nothing due.)
        ctx.reminders_changed.set()
    return booking


class CancelRefusal(enum.StrEnum):
    NOT_FOUND = "not_found"  # no such booking, or another customer's
    INACTIVE = "inactive"  # cancelled already, done, or in the past
    TOO_LATE = "too_late"  # within the business's cancellation cut-off


async def cancel_for_customer(
    ctx: TenantContext, booking_id: int, customer_id: int
) -> Booking | CancelRefusal:
    """Cancel the customer's own booking if the rules allow it: the cancelled booking, or why
    not. Another customer's booking is NOT_FOUND, exactly like a booking that does not exist."""
    booking = await ctx.store.booking(booking_id)
    if booking is None or booking.customer_id != customer_id:
        return CancelRefusal.NOT_FOUND
    business = await ctx.business()
    now = ctx.now()
    if booking.status != "confirmed" or booking.starts_at <= now:
        return CancelRefusal.INACTIVE
    if not can_cancel(business.rules, booking.starts_at, now):
        return CancelRefusal.TOO_LATE
    cancelled = await ctx.store.cancel_booking(booking.id, by="customer", customer_id=customer_id)
    return cancelled if cancelled is not None else CancelRefusal.INACTIVE
