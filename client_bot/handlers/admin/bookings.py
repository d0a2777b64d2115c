"""Bookings of a day; done, no-show, cancel with a note to the customer; a month as CSV."""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, timedelta

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.callbacks import MoveAdminCb
from client_bot.context import TenantContext
from client_bot.handlers import reschedule
from client_bot.handlers.admin import keyboards, parse
from client_bot.handlers.admin.callbacks import (
    AdminCb,
    BookingAction,
    BookingAdminCb,
    Screen,
    unpack_day,
)
from client_bot.handlers.admin.screen import (
    TYPED,
    admin_router,
    day_start,
    local_today,
    prompt,
    show,
)
from client_bot.handlers.admin.states import AdminInput
from client_bot.store import Booking, Business

log = logging.getLogger(__name__)
NOTE_MAX = 500


ICONS = {"confirmed": "🕒", "done": "✅", "no_show": "🚫", "cancelled": "✖️"}


def status_name(status: str) -> str:
    names = {
        "confirmed": _("booked"),
        "done": _("done"),
        "no_show": _("no-show"),
        "cancelled": _("cancelled"),
    }
    return names.get(status, status)


def status_label(status: str) -> str:
    return f"{ICONS.get(status, '')} {status_name(status)}"


def _local_day(b: Booking, business: Business) -> date:
    return b.starts_at.astimezone(business.zone).date()


async def show_day(event: Message | CallbackQuery, ctx: TenantContext, day: date | None) -> None:
    business = await ctx.business()
    day = day or local_today(ctx, business.zone)
    start = day_start(day, business.zone)
    items = await ctx.store.bookings_between(
        start, start + timedelta(days=1), include_cancelled=True
    )
    lines = [_("<b>📅 Bookings · {day}</b>").format(day=text.day_long(day, business.locale))]
    several = len(await ctx.store.staff()) > 1
    for b in items:
        lines.append(
            f"{text.hhmm(b.starts_at.astimezone(business.zone))}–"
            f"{text.hhmm(b.ends_at.astimezone(business.zone))} · {text.esc(b.service_name)} · "
            + (f"{text.esc(b.staff_name)} · " if several and b.staff_name else "")
            + f"{text.esc(b.customer_name)}, {text.esc(b.phone)} — {status_label(b.status)}"
        )
    if not items:
        lines.append(_("No bookings on this day."))
    await show(
        event, "\n".join(lines), keyboards.bookings_day(day, items, business.zone, business.locale)
    )


async def open_bookings(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_day(query, ctx, None)


async def open_day(
    query: CallbackQuery, callback_data: BookingAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    await show_day(query, ctx, unpack_day(callback_data.day) if callback_data.day else None)


async def ask_date(query: CallbackQuery, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.booking_date,
        _("Send a date, like <code>31.12.2026</code> or <code>2026-12-31</code>. /cancel to stop."),
        AdminCb(screen=Screen.bookings),
    )


async def got_date(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    business = await ctx.business()
    try:
        day = parse.day(message.text, local_today(ctx, business.zone))
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    await show_day(message, ctx, day)


async def show_booking(
    event: Message | CallbackQuery, ctx: TenantContext, b: Booking, note: str = ""
) -> None:
    business = await ctx.business()
    body = _(
        "<b>Booking #{id}</b>\nService: {service}\nWhen: {when}\nCustomer: {name}, {phone}\n"
        "Status: {status}"
    ).format(
        id=b.id,
        service=text.esc(b.service_name),
        when=text.when(b.starts_at, business.timezone, business.locale),
        name=text.esc(b.customer_name),
        phone=text.esc(b.phone),
        status=status_label(b.status),
    )
    if b.staff_name and len(await ctx.store.staff(include_inactive=True)) > 1:
        body += "\n" + _("Specialist: {staff}").format(staff=text.esc(b.staff_name))
    if b.cancel_note:
        body += "\n" + _("Note: {note}").format(note=text.esc(b.cancel_note))
    markup = keyboards.booking(b, _local_day(b, business))
    await show(event, (note + "\n\n" if note else "") + body, markup)


async def _booking_or_day(
    query: CallbackQuery, ctx: TenantContext, booking_id: int
) -> Booking | None:
    b = await ctx.store.booking(booking_id)
    if b is None:
        await query.answer(_("Booking not found."), show_alert=True)
    return b


async def view_booking(
    query: CallbackQuery, callback_data: BookingAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    b = await _booking_or_day(query, ctx, callback_data.booking_id)
    if b is not None:
        await show_booking(query, ctx, b)


async def set_status(
    query: CallbackQuery, callback_data: BookingAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    status = {
        BookingAction.done: "done",
        BookingAction.no_show: "no_show",
        BookingAction.restore: "confirmed",
    }[callback_data.action]
    updated = await ctx.store.set_booking_status(callback_data.booking_id, status)
    if updated is None:
        b = await _booking_or_day(query, ctx, callback_data.booking_id)
        if b is not None:
            await show_booking(query, ctx, b, _("A cancelled booking cannot be changed."))
        return
    await show_booking(query, ctx, updated, _("✅ Saved."))


async def ask_cancel_note(
    query: CallbackQuery, callback_data: BookingAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    b = await _booking_or_day(query, ctx, callback_data.booking_id)
    if b is None:
        return
    if b.status != "confirmed":
        await show_booking(query, ctx, b, _("This booking is no longer active."))
        return
    await prompt(
        query,
        state,
        AdminInput.cancel_note,
        _(
            "Cancelling booking #{id}. Write a note for the customer: why, and what you offer"
            " instead. Or send - to cancel without a note. /cancel to keep the booking."
        ).format(id=b.id),
        AdminCb(screen=Screen.bookings),
        booking_id=b.id,
    )


async def cancel_with_note(
    message: Message, ctx: TenantContext, state: FSMContext, bot: Bot
) -> None:
    assert message.text is not None and message.from_user is not None
    try:
        note = parse.text_value(message.text, NOTE_MAX, optional=True)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    booking_id = int((await state.get_data())["booking_id"])
    await state.clear()
    cancelled = await ctx.store.cancel_booking(booking_id, by="admin", note=note or None)
    if cancelled is None:
        b = await ctx.store.booking(booking_id)
        if b is not None:
            await show_booking(message, ctx, b, _("This booking is no longer active."))
        else:
            await show(message, _("Booking not found."), keyboards.back(Screen.bookings))
        return
    business = await ctx.business()
    when = text.when(cancelled.starts_at, business.timezone, business.locale)
    to_customer = _("❌ Your booking #{id} ({service}, {when}) has been cancelled.").format(
        id=cancelled.id, service=text.esc(cancelled.service_name), when=when
    )
    if note:
        to_customer += "\n\n" + text.esc(note)
    try:
        await bot.send_message(cancelled.customer_id, to_customer)
        outcome = _("The customer got your message.")
    except TelegramAPIError as exc:
        log.info("tenant %s: cancellation not delivered: %s", ctx.tenant_id, exc)
        outcome = _("⚠️ The customer could not be notified (the bot is blocked?): please call them.")
    await show_booking(message, ctx, cancelled, _("✖️ Booking cancelled.") + " " + outcome)
    await _tell_other_admins(
        bot,
        ctx,
        message.from_user.id,
        _("❌ Booking #{id} cancelled by an admin: {service}, {when}\n{name}, {phone}").format(
            id=cancelled.id,
            service=text.esc(cancelled.service_name),
            when=when,
            name=text.esc(cancelled.customer_name),
            phone=text.esc(cancelled.phone),
        ),
    )


async def _tell_other_admins(bot: Bot, ctx: TenantContext, me: int, body: str) -> None:
    for admin_id in sorted(await ctx.admin_ids() - {me}):
        try:
            await bot.send_message(admin_id, body)
        except TelegramAPIError as exc:
            log.info("tenant %s: admin %s not notified: %s", ctx.tenant_id, admin_id, exc)


def bookings_csv(items: list[Booking], business: Business) -> bytes:
    """Semicolon-separated UTF-8 with a BOM: what a spreadsheet in a Russian locale opens."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            _("Number"),
            _("Date"),
            _("Start"),
            _("End"),
            _("Service"),
            _("Customer"),
            _("Phone"),
            _("Status"),
            _("Note"),
            _("Telegram id"),
        ]
    )
    zone = business.zone
    for b in items:
        start, end = b.starts_at.astimezone(zone), b.ends_at.astimezone(zone)
        writer.writerow(
            [
                b.id,
                start.date().isoformat(),
                text.hhmm(start),
                text.hhmm(end),
                b.service_name,
                b.customer_name,
                b.phone,
                status_name(b.status),
                b.cancel_note or "",
                b.customer_id,
            ]
        )
    return out.getvalue().encode("utf-8-sig")


async def export_csv(
    query: CallbackQuery, callback_data: BookingAdminCb, ctx: TenantContext
) -> None:
    business = await ctx.business()
    day = unpack_day(callback_data.day) or local_today(ctx, business.zone)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    items = await ctx.store.bookings_between(
        day_start(first, business.zone), day_start(following, business.zone), include_cancelled=True
    )
    await query.answer()
    document = BufferedInputFile(
        bookings_csv(items, business), filename=f"bookings-{first:%Y-%m}.csv"
    )
    caption = _("Bookings for {month}: {n}").format(
        month=text.month(first, business.locale), n=len(items)
    )
    if isinstance(query.message, Message):
        await query.message.answer_document(document, caption=caption)


def router() -> Router:
    r = admin_router("admin_bookings")
    r.callback_query.register(open_bookings, AdminCb.filter(F.screen == Screen.bookings))
    r.callback_query.register(open_day, BookingAdminCb.filter(F.action == BookingAction.day))
    r.callback_query.register(ask_date, BookingAdminCb.filter(F.action == BookingAction.pick_date))
    r.callback_query.register(view_booking, BookingAdminCb.filter(F.action == BookingAction.view))
    r.callback_query.register(
        set_status,
        BookingAdminCb.filter(
            F.action.in_({BookingAction.done, BookingAction.no_show, BookingAction.restore})
        ),
    )
    r.callback_query.register(
        ask_cancel_note, BookingAdminCb.filter(F.action == BookingAction.cancel)
    )
    r.callback_query.register(export_csv, BookingAdminCb.filter(F.action == BookingAction.csv))
    # Moving a booking (to another time or staff member): the customers' steps, admins only.
    r.callback_query.register(reschedule.step, MoveAdminCb.filter())
    r.message.register(got_date, AdminInput.booking_date, TYPED)
    r.message.register(cancel_with_note, AdminInput.cancel_note, TYPED)
    return r
