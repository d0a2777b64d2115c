"""Booking: service → date → time → contact → summary → confirm.

Buttons carry everything they need (service id, day, start time), so a button pressed long
after it was sent is re-checked against the current state of the business: a hidden service,
a past day or a taken slot gets a clear message and fresh choices, never an exception.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import gettext as _

from client_bot import booking_service, keyboards, text
from client_bot.booking import SlotProblem, days_with_free_slots, free_slots
from client_bot.booking_service import Booker
from client_bot.callbacks import (
    CalendarCb,
    ConfirmAction,
    ConfirmCb,
    MenuAction,
    MenuCb,
    ServiceCb,
    SlotCb,
)
from client_bot.context import TenantContext
from client_bot.notices import AdminNotices
from client_bot.states import BookingForm
from client_bot.store import Service

log = logging.getLogger(__name__)


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


async def _reply(query: CallbackQuery, text_: str, **kwargs: object) -> None:
    message = _message(query)
    if message is not None:
        await message.answer(text_, **kwargs)  # type: ignore[arg-type]


async def _drop_buttons(query: CallbackQuery) -> None:
    """Remove the buttons of the pressed message — cosmetic, so best-effort: a message that
    is gone or unchanged, or a bad moment of Telegram, must not undo what was already done."""
    message = _message(query)
    if message is None:
        return
    try:
        await message.edit_reply_markup(reply_markup=None)
    except TelegramAPIError as exc:  # TelegramBadRequest, TelegramNetworkError, 5xx, …
        log.info("buttons of message %s not removed: %s", message.message_id, exc)


# --- step 1: services -------------------------------------------------------------------------
async def offer_services(query: CallbackQuery, ctx: TenantContext, note: str = "") -> None:
    business = await ctx.business()
    items = await ctx.store.services()
    if not items:
        await _reply(
            query,
            (note + "\n\n" if note else "")
            + _("Booking is not open yet: the business has not added services."),
            reply_markup=keyboards.home_button(),
        )
        return
    await _reply(
        query,
        (note + "\n\n" if note else "") + _("Choose a service:"),
        reply_markup=keyboards.services(items, business.locale),
    )


async def book(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await offer_services(query, ctx)


async def _visible_service(ctx: TenantContext, service_id: int) -> Service | None:
    service = await ctx.service(service_id)
    return service if service is not None and not service.hidden else None


# --- step 2: the calendar ---------------------------------------------------------------------
async def offer_days(
    query: CallbackQuery,
    ctx: TenantContext,
    service: Service,
    month: date | None = None,
    note: str = "",
) -> None:
    business = await ctx.business()
    schedule = await ctx.schedule()
    days = days_with_free_slots(schedule, service.duration_min, await ctx.horizon_busy(), ctx.now())
    if not days:
        await _reply(
            query,
            (note + "\n\n" if note else "")
            + _("Sorry, there are no free times for «{service}» in the coming days.").format(
                service=text.esc(service.name)
            ),
            reply_markup=keyboards.home_button(),
        )
        return
    shown = (
        month
        if month is not None and any((d.year, d.month) == (month.year, month.month) for d in days)
        else days[0]
    )
    await _reply(
        query,
        (note + "\n\n" if note else "")
        + _("<b>{service}</b>\nChoose a day:").format(service=text.esc(service.name)),
        reply_markup=keyboards.calendar_month(service.id, shown, days, business.locale),
    )


async def pick_service(query: CallbackQuery, callback_data: ServiceCb, ctx: TenantContext) -> None:
    await query.answer()
    service = await _visible_service(ctx, callback_data.service_id)
    if service is None:
        await offer_services(query, ctx, _("This service is no longer available."))
        return
    await offer_days(query, ctx, service)


def _unpack_day(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None


# --- step 3: times ------------------------------------------------------------------------------
async def offer_slots(
    query: CallbackQuery, ctx: TenantContext, service: Service, day: date, note: str = ""
) -> None:
    business = await ctx.business()
    schedule = await ctx.schedule()
    starts = free_slots(schedule, service.duration_min, day, await ctx.horizon_busy(), ctx.now())
    if not starts:
        await offer_days(
            query,
            ctx,
            service,
            day,
            note=(note + "\n\n" if note else "") + _("There are no free times left on that day."),
        )
        return
    await _reply(
        query,
        (note + "\n\n" if note else "")
        + _("<b>{service}</b>, {day}\nChoose a time:").format(
            service=text.esc(service.name), day=text.day_long(day, business.locale)
        ),
        reply_markup=keyboards.slots(service.id, starts, day),
    )


async def pick_day(query: CallbackQuery, callback_data: CalendarCb, ctx: TenantContext) -> None:
    await query.answer()
    if not callback_data.day and not callback_data.month:
        return  # a decorative calendar cell
    service = await _visible_service(ctx, callback_data.service_id)
    if service is None:
        await offer_services(query, ctx, _("This service is no longer available."))
        return
    if callback_data.month:
        month = _unpack_day(callback_data.month * 100 + 1)
        await offer_days(query, ctx, service, month)
        return
    day = _unpack_day(callback_data.day)
    business = await ctx.business()
    today = ctx.now().astimezone(business.zone).date()
    if day is None or day < today:
        await offer_days(query, ctx, service, note=_("That day has already passed."))
        return
    await offer_slots(query, ctx, service, day)


# --- step 4: contact --------------------------------------------------------------------------
async def pick_slot(
    query: CallbackQuery, callback_data: SlotCb, ctx: TenantContext, state: FSMContext
) -> None:
    await query.answer()
    service = await _visible_service(ctx, callback_data.service_id)
    if service is None:
        await offer_services(query, ctx, _("This service is no longer available."))
        return
    start = datetime.fromtimestamp(callback_data.ts, UTC)
    problem = await _slot_problem(ctx, service, start)
    if problem is not None:
        await _stale_slot(query, ctx, service, start, problem)
        return
    await state.set_state(BookingForm.contact)
    await state.set_data({"service_id": service.id, "ts": callback_data.ts})
    customer = await ctx.store.customer(query.from_user.id)
    hint = ""
    if customer is not None and customer.phone:
        hint = "\n" + _("Or send {phone} to use the number from last time.").format(
            phone=customer.phone
        )
    await _reply(
        query,
        _("Please share your phone number with the button below or type it, e.g. +7 900 123-45-67.")
        + hint,
        reply_markup=keyboards.share_contact(),
    )


async def _slot_problem(
    ctx: TenantContext, service: Service, start: datetime
) -> SlotProblem | None:
    return await booking_service.slot_problem(ctx, service, start)


async def _stale_slot(
    query: CallbackQuery,
    ctx: TenantContext,
    service: Service,
    start: datetime,
    problem: SlotProblem,
) -> None:
    business = await ctx.business()
    day = start.astimezone(business.zone).date()
    if problem is SlotProblem.TAKEN:
        note = _("Sorry, this time has just been taken. Here are the free times:")
    elif problem in (SlotProblem.PAST, SlotProblem.TOO_SOON):
        note = _("This time is no longer available for booking.")
    else:
        note = _("This time is not available any more: the schedule has changed.")
    if problem in (SlotProblem.BEYOND_HORIZON, SlotProblem.DAY_OFF, SlotProblem.PAST):
        await offer_days(query, ctx, service, note=note)
    else:
        await offer_slots(query, ctx, service, day, note=note)


async def got_contact(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.contact is not None
    if message.from_user and message.contact.user_id not in (None, message.from_user.id):
        await message.answer(_("Please share your own number with the button below."))
        return
    await _take_phone(message, ctx, state, message.contact.phone_number, message.contact.first_name)


async def typed_phone(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    name = message.from_user.first_name if message.from_user else ""
    await _take_phone(message, ctx, state, message.text, name)


async def _take_phone(
    message: Message, ctx: TenantContext, state: FSMContext, raw: str, name: str
) -> None:
    phone = text.normalize_phone(raw)
    if phone is None:
        await message.answer(
            _("This does not look like a phone number. Please type it like +7 900 123-45-67.")
        )
        return
    data = await state.get_data()
    service = await _visible_service(ctx, int(data.get("service_id", 0)))
    if service is None:
        await state.clear()
        await message.answer(
            _("This service is no longer available."), reply_markup=ReplyKeyboardRemove()
        )
        await message.answer(_("Choose what to do next:"), reply_markup=keyboards.main_menu())
        return
    await state.update_data(phone=phone, name=name[:100])
    await state.set_state(BookingForm.confirm)
    business = await ctx.business()
    start = datetime.fromtimestamp(int(data["ts"]), UTC)
    await message.answer(_("Thank you!"), reply_markup=ReplyKeyboardRemove())
    await message.answer(
        _(
            "<b>Please check your booking</b>\n"
            "Service: {service}\nWhen: {when}\nPrice: {price}\nName: {name}\nPhone: {phone}"
        ).format(
            service=text.esc(service.name),
            when=text.when(start, business.timezone, business.locale),
            price=text.price(service.price, business.locale),
            name=text.esc(name),
            phone=phone,
        ),
        reply_markup=keyboards.confirm(),
    )


# --- step 5: confirm ----------------------------------------------------------------------------
async def confirm(query: CallbackQuery, ctx: TenantContext, state: FSMContext, bot: Bot) -> None:
    data = await state.get_data()
    service = await _visible_service(ctx, int(data.get("service_id", 0)))
    if service is None:
        await query.answer()
        await state.clear()
        await offer_services(query, ctx, _("This service is no longer available."))
        return
    start = datetime.fromtimestamp(int(data["ts"]), UTC)
    user = query.from_user
    booker = Booker(user.id, user.first_name, user.username, user.language_code)
    booking = await booking_service.place_booking(
        ctx, booker, service, start, name=data["name"], phone=data["phone"]
    )
    if isinstance(booking, SlotProblem):
        await query.answer()
        await state.clear()
        await _stale_slot(query, ctx, service, start, booking)
        return
    # The booking is committed: what matters comes first (the customer's confirmation, the
    # admins' notice), the cosmetic edit last and best-effort.
    await state.clear()
    await query.answer(_("Booked!"))
    business = await ctx.business()
    when = text.when(booking.starts_at, business.timezone, business.locale)
    await _reply(
        query,
        _("✅ You are booked: <b>{service}</b>, {when}.\nBooking number: #{id}. See you!").format(
            service=text.esc(service.name), when=when, id=booking.id
        ),
        reply_markup=keyboards.main_menu(),
    )
    try:
        await AdminNotices(ctx, bot).booking_created(booking)
    except Exception:  # the customer is booked and told so: never "something went wrong" now
        log.exception("tenant %s: admins not told of booking #%s", ctx.tenant_id, booking.id)
    await _drop_buttons(query)


async def cancel(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await _reply(
        query, _("Booking cancelled. Choose what to do next:"), reply_markup=keyboards.main_menu()
    )
    await _drop_buttons(query)


async def stale_confirm(query: CallbackQuery) -> None:
    """Confirm/Cancel of a dialog that has ended (or expired)."""
    await query.answer()
    await _reply(
        query,
        _("This booking dialog is over. Start a new booking from the menu:"),
        reply_markup=keyboards.main_menu(),
    )


def router() -> Router:
    """A fresh router for one tenant (a process may host several)."""
    r = Router(name="booking")
    r.callback_query.register(book, MenuCb.filter(F.action == MenuAction.book))
    r.callback_query.register(pick_service, ServiceCb.filter())
    r.callback_query.register(pick_day, CalendarCb.filter())
    r.callback_query.register(pick_slot, SlotCb.filter())
    r.message.register(got_contact, BookingForm.contact, F.contact)
    r.message.register(typed_phone, BookingForm.contact, F.text)
    r.callback_query.register(
        confirm, BookingForm.confirm, ConfirmCb.filter(F.action == ConfirmAction.confirm)
    )
    r.callback_query.register(
        cancel, BookingForm.confirm, ConfirmCb.filter(F.action == ConfirmAction.cancel)
    )
    r.callback_query.register(stale_confirm, ConfirmCb.filter())
    return r
