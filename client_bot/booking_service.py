"""Booking and cancelling on behalf of a customer: one path for the menu flow and the assistant.

The rules themselves live in `client_bot.booking` (pure); this module applies them to the
tenant's current state and stores the result. Telegram is not touched here: callers tell the
customer and the admins (`client_bot.notices`).

Appointments are with a staff member: a chosen one, or (`staff_id=None`) "any available", who is
picked at confirmation among those free then, least loaded that day first. Group classes are
booked by the seat (`place_seat`).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from client_bot.booking import (
    OwnHours,
    SlotProblem,
    StaffOption,
    TimetableEntry,
    can_cancel,
    days_free_for_anyone,
    free_staff_at,
    offer_until,
    slots_free_for_anyone,
    staff_schedule,
    timetable_sessions,
)
from client_bot.context import TenantContext
from client_bot.store import (
    Booking,
    ClassSession,
    SeatRefused,
    Service,
    SlotTakenError,
    Staff,
    StaffOffer,
    WaitlistOffer,
)


@dataclass(frozen=True, slots=True)
class Booker:
    """The Telegram user a booking is for (always the one talking to the bot)."""

    id: int
    first_name: str
    username: str | None = None
    language: str | None = None


# --- staff ---------------------------------------------------------------------------------------
async def offers(ctx: TenantContext, service: Service) -> list[StaffOffer]:
    """The active staff members who perform `service`, in the business's order (cached in the
    context until the next change)."""
    return await ctx.offers(service.id)


async def _options(
    ctx: TenantContext,
    service: Service,
    staff_id: int | None,
    start: datetime,
    end: datetime,
    except_booking: int = 0,
) -> list[StaffOption]:
    """Who can do `service` (only `staff_id` when given), with their bookings in [start, end)
    (but `except_booking`, the one being moved)."""
    found = await ctx.offers(service.id)
    if staff_id is not None:
        found = [offer for offer in found if offer.staff.id == staff_id]
    if not found:
        return []
    business_schedule = await ctx.schedule()
    weeks = await ctx.store.staff_weeks([offer.staff.id for offer in found])
    busy = await ctx.store.busy_by_staff(start, end, except_booking=except_booking)
    options = []
    for position, offer in enumerate(found):
        week = weeks.get(offer.staff.id)
        own = OwnHours(week.hours, week.breaks) if week is not None and week.own_hours else None
        schedule = staff_schedule(business_schedule, own, week.days_off if week else ())
        options.append(
            StaffOption(
                offer.staff.id,
                schedule,
                offer.duration_min,
                busy.get(offer.staff.id, []),
                position,
            )
        )
    return options


async def _horizon(ctx: TenantContext) -> tuple[datetime, datetime]:
    business = await ctx.business()
    now = ctx.now()
    return now - timedelta(days=1), now + timedelta(days=business.horizon_days + 2)


async def free_days(
    ctx: TenantContext, service: Service, staff_id: int | None, *, moving: int = 0
) -> list[date]:
    """Days with a free time for `service` with `staff_id` (None: with anyone); `moving`: the
    booking being moved, whose own time counts as free."""
    options = await _options(ctx, service, staff_id, *await _horizon(ctx), moving)
    return days_free_for_anyone(options, ctx.now())


async def free_times(
    ctx: TenantContext, service: Service, staff_id: int | None, day: date, *, moving: int = 0
) -> list[datetime]:
    """Free starts on `day` for `service` with `staff_id` (None: with anyone), ascending."""
    business = await ctx.business()
    noon = datetime.combine(day, time(12), tzinfo=business.zone)
    options = await _options(
        ctx, service, staff_id, noon - timedelta(days=1), noon + timedelta(days=1), moving
    )
    return list(slots_free_for_anyone(options, day, ctx.now()))


async def slot_problem(
    ctx: TenantContext, service: Service, start: datetime, *, staff_id: int | None = None
) -> SlotProblem | None:
    """Why `start` cannot be booked for `service` with `staff_id` (None: with anyone) right
    now, or None when it is free."""
    options = await _options(
        ctx, service, staff_id, start - timedelta(days=1), start + timedelta(days=1)
    )
    if not options:
        return SlotProblem.NO_STAFF
    return free_staff_at(options, start, ctx.now())[1]


async def place_booking(
    ctx: TenantContext,
    booker: Booker,
    service: Service,
    start: datetime,
    *,
    name: str,
    phone: str,
    source: str = "menu",
    staff_id: int | None = None,
) -> Booking | SlotProblem:
    """Re-check the slot, record the customer (with the phone) and insert the booking with its
    due reminders. With `staff_id=None` the least loaded staff member free then gets it; when
    the database refuses one (someone else was faster), the next one free is tried. A slot
    nobody is free for any more comes back as `SlotProblem.TAKEN`."""
    options = await _options(
        ctx, service, staff_id, start - timedelta(days=1), start + timedelta(days=1)
    )
    if not options:
        return SlotProblem.NO_STAFF
    now = ctx.now()
    candidates, problem = free_staff_at(options, start, now)
    if problem is not None:
        return problem
    business = await ctx.business()
    await ctx.store.touch_customer(
        booker.id, booker.first_name, booker.username, booker.language, phone=phone
    )
    reminders = _reminders(business.reminder_offsets_min, start, now)
    durations = {option.staff_id: option.duration_min for option in options}
    for candidate in candidates:
        try:
            booking = await ctx.store.create_booking(
                customer_id=booker.id,
                service=service,
                starts_at=start,
                customer_name=name,
                phone=phone,
                reminders=reminders,
                source=source,
                staff_id=candidate,
                duration_min=durations[candidate],
            )
        except SlotTakenError:
            continue
        _wake_reminders(ctx, reminders)
        return booking
    return SlotProblem.TAKEN


def _reminders(
    offsets: tuple[int, ...], start: datetime, now: datetime
) -> list[tuple[int, datetime]]:
    return [
        (offset, start - timedelta(minutes=offset))
        for offset in offsets
        if start - timedelta(minutes=offset) > now
    ]


def _wake_reminders(ctx: TenantContext, reminders: list[tuple[int, datetime]]) -> None:
    if reminders:
        # The reminder worker sleeps until the next due reminder it knew of; this one may be
        # earlier. (A cancellation needs no wake-up: it only removes reminders, and a worker
        # waking for a removed one just finds nothing due.)
        ctx.reminders_changed.set()


async def move_to_others(ctx: TenantContext, staff_id: int) -> tuple[list[Booking], list[Booking]]:
    """Give each upcoming booking of the staff member to another one who performs the service
    and is free then (least loaded first): (moved, left with them)."""
    moved: list[Booking] = []
    stuck: list[Booking] = []
    services = {s.id: s for s in await ctx.store.services(include_hidden=True)}
    for booking in await ctx.store.upcoming_of_staff(staff_id, ctx.now()):
        service = services.get(booking.service_id)
        start = booking.starts_at
        options = [
            option
            for option in (
                await _options(
                    ctx, service, None, start - timedelta(days=1), start + timedelta(days=1)
                )
                if service is not None
                else []
            )
            if option.staff_id != staff_id
        ]
        # Is it a free time of theirs, however soon it is (the customer booked it long ago)?
        lead = (await ctx.business()).rules.lead_delta
        candidates, _problem = free_staff_at(options, start, start - lead - timedelta(minutes=1))
        for candidate in candidates:
            done = await ctx.store.move_booking(booking.id, candidate)
            if done is not None:
                moved.append(done)
                break
        else:
            stuck.append(booking)
    return moved, stuck


# --- group classes -------------------------------------------------------------------------------
class SeatProblem(enum.StrEnum):
    FULL = "full"  # every seat is taken
    GONE = "gone"  # the session was cancelled, removed, or is too close to its start
    ALREADY = "already"  # the customer has a seat in it


async def class_sessions(ctx: TenantContext, service: Service) -> list[ClassSession]:
    """The class's bookable sessions within the horizon (those of the weekly timetable are
    created as they come into the horizon), full ones included, by start."""
    business = await ctx.business()
    schedule = await ctx.schedule()
    now = ctx.now()
    first, last = schedule.horizon(now)
    entries = await ctx.store.timetable(service.id)
    occurrences = timetable_sessions(
        [TimetableEntry(e["id"], e["weekday"], e["starts"]) for e in entries],
        business.timezone,
        first,
        last,
    )
    by_id = {e["id"]: e for e in entries}
    duration = timedelta(minutes=service.duration_min)
    await ctx.store.ensure_sessions(
        [
            (
                service.id,
                start,
                start + duration,
                by_id[entry.id]["staff_id"],
                by_id[entry.id]["capacity"] or service.capacity or 1,
                entry.id,
            )
            for entry, start in occurrences
            if start > now
        ]
    )
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=business.zone)
    return await ctx.store.sessions(service.id, now + business.rules.lead_delta, end)


async def place_seat(
    ctx: TenantContext,
    booker: Booker,
    session_id: int,
    *,
    name: str,
    phone: str,
    source: str = "menu",
) -> Booking | SeatProblem:
    """Book one seat in the session for the customer; the database refuses an oversold class,
    so of concurrent confirmations for the last seat exactly one wins."""
    business = await ctx.business()
    now = ctx.now()
    not_before = now + business.rules.lead_delta
    session = await ctx.store.session(session_id)
    if session is None or session.cancelled or session.starts_at <= not_before:
        return SeatProblem.GONE
    await ctx.store.touch_customer(
        booker.id, booker.first_name, booker.username, booker.language, phone=phone
    )
    reminders = _reminders(business.reminder_offsets_min, session.starts_at, now)
    try:
        booking = await ctx.store.book_seat(
            customer_id=booker.id,
            session_id=session_id,
            not_before=not_before,
            customer_name=name,
            phone=phone,
            reminders=reminders,
            source=source,
        )
    except SeatRefused as refused:
        return SeatProblem(refused.reason)
    _wake_reminders(ctx, reminders)
    return booking


# --- the waitlist of full classes -----------------------------------------------------------------
async def join_waitlist(
    ctx: TenantContext, booker: Booker, session_id: int, *, name: str, phone: str
) -> int | SeatProblem:
    """Put the customer in the line of a session (their place, 1 = next), or why not: GONE
    (cancelled, started or past the booking cut-off), ALREADY (they have a seat)."""
    business = await ctx.business()
    session = await ctx.store.session(session_id)
    if (
        session is None
        or session.cancelled
        or session.starts_at <= ctx.now() + business.rules.lead_delta
    ):
        return SeatProblem.GONE
    await ctx.store.touch_customer(
        booker.id, booker.first_name, booker.username, booker.language, phone=phone
    )
    place = await ctx.store.join_waitlist(session_id, booker.id, name, phone)
    return SeatProblem.ALREADY if place is None else place


async def waitlist_offers(ctx: TenantContext) -> list[WaitlistOffer]:
    """Expire the offers whose time is up and offer every free seat to the first in line;
    the offers the customers have not been told of yet."""
    lead = (await ctx.business()).rules.lead_delta
    now = ctx.now()
    return await ctx.store.make_waitlist_offers(now, lambda start: offer_until(now, start, lead))


async def accept_offer(ctx: TenantContext, booker: Booker, entry_id: int) -> Booking | None:
    """The offered seat becomes the customer's booking, or None when the offer is over."""
    business = await ctx.business()
    now = ctx.now()
    booking = await ctx.store.accept_offer(
        entry_id,
        booker.id,
        now,
        lambda start: _reminders(business.reminder_offsets_min, start, now),
    )
    if booking is not None:
        ctx.reminders_changed.set()
    return booking


# --- cancelling ----------------------------------------------------------------------------------
class CancelRefusal(enum.StrEnum):
    NOT_FOUND = "not_found"  # no such booking, or another customer's
    INACTIVE = "inactive"  # cancelled already, done, or in the past
    TOO_LATE = "too_late"  # within the business's cancellation cut-off


async def cancel_for_customer(
    ctx: TenantContext, booking_id: int, customer_id: int
) -> Booking | CancelRefusal:
    """Cancel the customer's own booking if the rules allow it: the cancelled booking, or why
    not. Another customer's booking is NOT_FOUND, exactly like a booking that does not exist.
    A seat in a class goes back to the session."""
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


# --- rescheduling --------------------------------------------------------------------------------
class MoveRefusal(enum.StrEnum):
    NOT_FOUND = "not_found"  # no such booking, or another customer's
    INACTIVE = "inactive"  # cancelled, done, past, a class seat, or changed meanwhile
    TOO_LATE = "too_late"  # within the business's cancellation cut-off (customers only)


@dataclass(frozen=True, slots=True)
class Moved:
    """A booking moved: as it is now, and when and with whom it was before."""

    booking: Booking
    was: datetime
    was_staff_id: int | None


async def movable(
    ctx: TenantContext, booking_id: int, customer_id: int | None
) -> Booking | MoveRefusal:
    """The booking when it may be moved now: the customer's own (`customer_id`) outside the
    cut-off, or any confirmed upcoming appointment for an admin (`customer_id=None`)."""
    booking = await ctx.store.booking(booking_id)
    if booking is None or (customer_id is not None and booking.customer_id != customer_id):
        return MoveRefusal.NOT_FOUND
    now = ctx.now()
    if booking.status != "confirmed" or booking.starts_at <= now or booking.session_id is not None:
        return MoveRefusal.INACTIVE
    if customer_id is not None and not can_cancel(
        (await ctx.business()).rules, booking.starts_at, now
    ):
        return MoveRefusal.TOO_LATE
    return booking


async def move_staff(ctx: TenantContext, booking: Booking, service: Service) -> int | None:
    """Whom a customer's move is with: their staff member while they still perform the service,
    else anyone available (None)."""
    offered = {offer.staff.id for offer in await ctx.store.offers(service.id)}
    return booking.staff_id if booking.staff_id in offered else None


async def reschedule(
    ctx: TenantContext,
    booking_id: int,
    start: datetime,
    *,
    customer_id: int | None,
    staff_id: int | None,
) -> Moved | MoveRefusal | SlotProblem:
    """Move a booking to `start` with `staff_id` (None: whoever is free then, least loaded
    first), keeping its number; the customer's move only outside the cut-off. The old time is
    freed and the reminders re-armed in the same transaction. Of two moves into one slot the
    database lets one win: the other gets `SlotProblem.TAKEN`."""
    booking = await movable(ctx, booking_id, customer_id)
    if isinstance(booking, MoveRefusal):
        return booking
    service = await ctx.service(booking.service_id)
    if service is None:
        return SlotProblem.NO_STAFF
    options = await _options(
        ctx, service, staff_id, start - timedelta(days=1), start + timedelta(days=1), booking.id
    )
    if not options:
        return SlotProblem.NO_STAFF
    now = ctx.now()
    candidates, problem = free_staff_at(options, start, now)
    if problem is not None:
        return problem
    business = await ctx.business()
    reminders = _reminders(business.reminder_offsets_min, start, now)
    durations = {option.staff_id: option.duration_min for option in options}
    for candidate in candidates:
        try:
            moved = await ctx.store.reschedule_booking(
                booking.id,
                was=booking.starts_at,
                staff_id=candidate,
                starts_at=start,
                ends_at=start + timedelta(minutes=durations[candidate]),
                reminders=reminders,
                customer_id=customer_id,
            )
        except SlotTakenError:
            continue
        if moved is None:
            return MoveRefusal.INACTIVE
        _wake_reminders(ctx, reminders)
        return Moved(moved, booking.starts_at, booking.staff_id)
    return SlotProblem.TAKEN


# --- staff in Telegram ---------------------------------------------------------------------------
INVITE_TTL = timedelta(days=3)
INVITE_PREFIX = "staff_"


def invite_hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


async def create_invite(ctx: TenantContext, staff_id: int, created_by: int) -> str | None:
    """A new one-time invite code for the staff member (only its hash is kept), valid for
    `INVITE_TTL`; None when there is no such staff member."""
    code = secrets.token_urlsafe(18)  # 24 characters of [A-Za-z0-9_-]: a deep-link payload
    stored = await ctx.store.add_staff_invite(
        staff_id, invite_hash(code), created_by, ctx.now() + INVITE_TTL
    )
    return code if stored else None


async def redeem_invite(ctx: TenantContext, code: str, telegram_id: int) -> Staff | None:
    """Link the Telegram account to the invite's staff member, once; None for a code that is
    unknown, used, expired or of a deactivated staff member."""
    if not code or len(code) > 64:
        return None
    return await ctx.store.redeem_staff_invite(invite_hash(code), telegram_id, ctx.now())
