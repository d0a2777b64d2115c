"""Booking: service → staff member (when several perform it) → date → time → contact →
summary → confirm; a class: service → session → contact → summary → confirm.

Buttons carry everything they need (service id, day, start time), so a button pressed long
after it was sent is re-checked against the current state of the business: a hidden service,
a past day or a taken slot gets a clear message and fresh choices, never an exception.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from decimal import Decimal

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import gettext as _

from client_bot import booking_service, keyboards, text
from client_bot.booking import WAITLIST_HOLD, SlotProblem
from client_bot.booking_service import Booker
from client_bot.callbacks import (
    CalendarCb,
    ConfirmAction,
    ConfirmCb,
    MenuAction,
    MenuCb,
    ServiceCb,
    SessionCb,
    SlotCb,
    StaffCb,
    StaffPhotoCb,
)
from client_bot.context import TenantContext, end_dialog
from client_bot.filters import Magic
from client_bot.handlers import waitlist
from client_bot.notices import AdminNotices
from client_bot.states import BookingForm
from client_bot.store import Booking, Service

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
    items = await ctx.visible_services()
    if not items:
        await _reply(
            query,
            _note(note) + _("Booking is not open yet: the business has not added services."),
            reply_markup=keyboards.home_button(),
        )
        return
    await _reply(
        query,
        _note(note) + _("Choose a service:"),
        reply_markup=keyboards.services(items, business.locale),
    )


def _note(note: str) -> str:
    return note + "\n\n" if note else ""


async def book(
    query: CallbackQuery, ctx: TenantContext, state: FSMContext, raw_state: str | None = None
) -> None:
    await end_dialog(state, raw_state)
    await query.answer()
    await offer_services(query, ctx)


async def _visible_service(ctx: TenantContext, service_id: int) -> Service | None:
    service = await ctx.service(service_id)
    return service if service is not None and not service.hidden else None


# --- step 1½: the staff member (several perform the service) or the class session -----------
async def offer_staff(
    query: CallbackQuery, ctx: TenantContext, service: Service, note: str = ""
) -> None:
    """Several staff members: the customer picks one or "any available"; one: straight to the
    calendar; nobody: back to the services."""
    offers = await ctx.offers(service.id)
    if not offers:
        await offer_services(
            query, ctx, _note(note) + _("Nobody performs this service at the moment.")
        )
        return
    if len(offers) == 1:
        await offer_days(query, ctx, service, note=note)
        return
    business = await ctx.business()
    await _reply(
        query,
        _note(note)
        + _("<b>{service}</b>\nChoose a specialist:").format(service=text.esc(service.name)),
        reply_markup=keyboards.staff_choice(service.id, offers, business.locale),
    )


async def offer_sessions(
    query: CallbackQuery, ctx: TenantContext, service: Service, note: str = ""
) -> None:
    business = await ctx.business()
    sessions = await booking_service.class_sessions(ctx, service)
    if not sessions:
        await _reply(
            query,
            _note(note)
            + _("Sorry, «{service}» has no classes in the coming days.").format(
                service=text.esc(service.name)
            ),
            reply_markup=keyboards.home_button(),
        )
        return
    await _reply(
        query,
        _note(note) + _("<b>{service}</b>\nChoose a class:").format(service=text.esc(service.name)),
        reply_markup=keyboards.class_sessions(
            service.id, sessions[:MAX_SESSIONS], business.timezone, business.locale
        ),
    )


MAX_SESSIONS = 20


async def pick_service(query: CallbackQuery, callback_data: ServiceCb, ctx: TenantContext) -> None:
    await query.answer()
    service = await _visible_service(ctx, callback_data.service_id)
    if service is None:
        await offer_services(query, ctx, _("This service is no longer available."))
        return
    if service.is_class:
        await offer_sessions(query, ctx, service)
    else:
        await offer_staff(query, ctx, service)


async def pick_staff(query: CallbackQuery, callback_data: StaffCb, ctx: TenantContext) -> None:
    await query.answer()
    service = await _visible_service(ctx, callback_data.service_id)
    if service is None:
        await offer_services(query, ctx, _("This service is no longer available."))
        return
    await offer_days(query, ctx, service, staff_id=callback_data.staff_id)


async def show_staff_photo(
    query: CallbackQuery, callback_data: StaffPhotoCb, ctx: TenantContext
) -> None:
    """A staff member's photo with their name and description, and "Book with …" under it;
    only of someone who still performs the service and still has a photo."""
    offer = next(
        (
            o
            for o in await ctx.offers(callback_data.service_id)
            if o.staff.id == callback_data.staff_id
        ),
        None,
    )
    message = _message(query)
    photo = offer.staff.photo_file_id if offer is not None else None
    if offer is None or not photo or message is None:
        await query.answer(_("No photo of this specialist."), show_alert=True)
        return
    await query.answer()
    staff = offer.staff
    caption = f"<b>{text.esc(staff.name)}</b>"
    if staff.description:
        caption += f"\n{text.esc(staff.description)}"
    await message.answer_photo(
        photo,
        caption=caption,
        reply_markup=keyboards.book_with(callback_data.service_id, staff),
    )


# --- step 2: the calendar ---------------------------------------------------------------------
async def offer_days(
    query: CallbackQuery,
    ctx: TenantContext,
    service: Service,
    month: date | None = None,
    note: str = "",
    *,
    staff_id: int = 0,
) -> None:
    business = await ctx.business()
    days = await booking_service.free_days(ctx, service, staff_id or None)
    if not days:
        await _reply(
            query,
            _note(note)
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
        _note(note) + _("<b>{service}</b>\nChoose a day:").format(service=text.esc(service.name)),
        reply_markup=keyboards.calendar_month(
            service.id, shown, days, business.locale, staff_id=staff_id
        ),
    )


def _unpack_day(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None


# --- step 3: times ------------------------------------------------------------------------------
async def offer_slots(
    query: CallbackQuery,
    ctx: TenantContext,
    service: Service,
    day: date,
    note: str = "",
    *,
    staff_id: int = 0,
) -> None:
    business = await ctx.business()
    starts = await booking_service.free_times(ctx, service, staff_id or None, day)
    if not starts:
        await offer_days(
            query,
            ctx,
            service,
            day,
            note=_note(note) + _("There are no free times left on that day."),
            staff_id=staff_id,
        )
        return
    await _reply(
        query,
        _note(note)
        + _("<b>{service}</b>, {day}\nChoose a time:").format(
            service=text.esc(service.name), day=text.day_long(day, business.locale)
        ),
        reply_markup=keyboards.slots(service.id, starts, day, staff_id),
    )


async def _staff_still_offers(ctx: TenantContext, service: Service, staff_id: int) -> bool:
    return not staff_id or any(o.staff.id == staff_id for o in await ctx.offers(service.id))


async def pick_day(query: CallbackQuery, callback_data: CalendarCb, ctx: TenantContext) -> None:
    await query.answer()
    if not callback_data.day and not callback_data.month:
        return  # a decorative calendar cell
    service = await _visible_service(ctx, callback_data.service_id)
    if service is None:
        await offer_services(query, ctx, _("This service is no longer available."))
        return
    staff_id = callback_data.staff_id
    if not await _staff_still_offers(ctx, service, staff_id):
        await offer_staff(query, ctx, service, _("This specialist no longer takes this service."))
        return
    if callback_data.month:
        month = _unpack_day(callback_data.month * 100 + 1)
        await offer_days(query, ctx, service, month, staff_id=staff_id)
        return
    day = _unpack_day(callback_data.day)
    business = await ctx.business()
    today = ctx.now().astimezone(business.zone).date()
    if day is None or day < today:
        await offer_days(
            query, ctx, service, note=_("That day has already passed."), staff_id=staff_id
        )
        return
    await offer_slots(query, ctx, service, day, staff_id=staff_id)


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
    staff_id = callback_data.staff_id
    problem = await booking_service.slot_problem(ctx, service, start, staff_id=staff_id or None)
    if problem is not None:
        await _stale_slot(query, ctx, service, start, problem, staff_id)
        return
    await state.set_state(BookingForm.contact)
    await state.set_data({"service_id": service.id, "ts": callback_data.ts, "staff_id": staff_id})
    await _ask_phone(query, ctx)


async def pick_session(
    query: CallbackQuery, callback_data: SessionCb, ctx: TenantContext, state: FSMContext
) -> None:
    await query.answer()
    service = await _visible_service(ctx, callback_data.service_id)
    if service is None or not service.is_class:
        await offer_services(query, ctx, _("This service is no longer available."))
        return
    session = await ctx.store.session(callback_data.session_id)
    business = await ctx.business()
    if (
        session is None
        or session.cancelled
        or session.service_id != service.id
        or session.starts_at <= ctx.now() + business.rules.lead_delta
    ):
        await offer_sessions(query, ctx, service, _("This class is no longer available."))
        return
    if not session.free_seats:
        await _reply(
            query,
            _(
                "All seats of «{service}» on {when} are taken. Get in line: when a seat frees"
                " up, the first in line is offered it for {minutes} min, then the next."
            ).format(
                service=text.esc(service.name),
                when=text.when(session.starts_at, business.timezone, business.locale),
                minutes=int(WAITLIST_HOLD.total_seconds() // 60),
            ),
            reply_markup=keyboards.waitlist_join(service.id, session.id),
        )
        return
    await state.set_state(BookingForm.contact)
    await state.set_data({"service_id": service.id, "session_id": session.id})
    await _ask_phone(query, ctx)


async def _ask_phone(query: CallbackQuery, ctx: TenantContext) -> None:
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


async def _stale_slot(
    query: CallbackQuery,
    ctx: TenantContext,
    service: Service,
    start: datetime,
    problem: SlotProblem,
    staff_id: int = 0,
) -> None:
    business = await ctx.business()
    day = start.astimezone(business.zone).date()
    if problem is SlotProblem.NO_STAFF:
        await offer_staff(query, ctx, service, _("This specialist no longer takes this service."))
        return
    if problem is SlotProblem.TAKEN:
        note = _("Sorry, this time has just been taken. Here are the free times:")
    elif problem in (SlotProblem.PAST, SlotProblem.TOO_SOON):
        note = _("This time is no longer available for booking.")
    else:
        note = _("This time is not available any more: the schedule has changed.")
    if problem in (SlotProblem.BEYOND_HORIZON, SlotProblem.DAY_OFF, SlotProblem.PAST):
        await offer_days(query, ctx, service, note=note, staff_id=staff_id)
    else:
        await offer_slots(query, ctx, service, day, note=note, staff_id=staff_id)


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


async def _summary_staff(
    ctx: TenantContext, service: Service, staff_id: int
) -> tuple[str, Decimal]:
    """The summary's specialist line ("" when one staff member performs the service) and the
    price: the chosen staff member's own, else the service's."""
    offers = await ctx.offers(service.id)
    chosen = next((o for o in offers if o.staff.id == staff_id), None)
    price = chosen.price if chosen is not None else service.price
    if len(offers) < 2 and not (staff_id and offers and offers[0].staff.id != staff_id):
        return "", price
    name = text.esc(chosen.staff.name) if chosen else _("Any available")
    return "\n" + _("Specialist: {staff}").format(staff=name), price


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
    session = None
    if service is not None and data.get("session_id"):
        session = await ctx.store.session(int(data["session_id"]))
        if session is None or session.cancelled:
            service = None
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
    staff_id = int(data.get("staff_id", 0))
    if session is not None:
        start, extra, price = session.starts_at, "", service.price
    else:
        start = datetime.fromtimestamp(int(data["ts"]), UTC)
        extra, price = await _summary_staff(ctx, service, staff_id)
    await message.answer(_("Thank you!"), reply_markup=ReplyKeyboardRemove())
    await message.answer(
        _(
            "<b>Please check your booking</b>\n"
            "Service: {service}\nWhen: {when}\nPrice: {price}\nName: {name}\nPhone: {phone}"
        ).format(
            service=text.esc(service.name),
            when=text.when(start, business.timezone, business.locale),
            price=text.price(price, business.locale),
            name=text.esc(name),
            phone=phone,
        )
        + extra,
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
    user = query.from_user
    booker = Booker(user.id, user.first_name, user.username, user.language_code)
    booking: Booking | SlotProblem | booking_service.SeatProblem
    if data.get("session_id"):
        booking = await booking_service.place_seat(
            ctx, booker, int(data["session_id"]), name=data["name"], phone=data["phone"]
        )
        if isinstance(booking, booking_service.SeatProblem):
            await query.answer()
            await state.clear()
            await _seat_refused(query, ctx, service, booking)
            return
    else:
        start = datetime.fromtimestamp(int(data["ts"]), UTC)
        staff_id = int(data.get("staff_id", 0))
        booking = await booking_service.place_booking(
            ctx, booker, service, start, name=data["name"], phone=data["phone"],
            staff_id=staff_id or None,
        )  # fmt: skip
        if isinstance(booking, SlotProblem):
            await query.answer()
            await state.clear()
            await _stale_slot(query, ctx, service, start, booking, staff_id)
            return
    # The booking is committed: what matters comes first (the customer's confirmation, the
    # admins' notice), the cosmetic edit last and best-effort.
    await state.clear()
    await query.answer(_("Booked!"))
    business = await ctx.business()
    when = text.when(booking.starts_at, business.timezone, business.locale)
    if booking.staff_name and booking.session_id is None and len(await ctx.staff()) > 1:
        done = _(
            "✅ You are booked: <b>{service}</b>, {when}, specialist: {staff}.\n"
            "Booking number: #{id}. See you!"
        ).format(
            service=text.esc(service.name), when=when, staff=text.esc(booking.staff_name),
            id=booking.id,
        )  # fmt: skip
    else:
        done = _(
            "✅ You are booked: <b>{service}</b>, {when}.\nBooking number: #{id}. See you!"
        ).format(service=text.esc(service.name), when=when, id=booking.id)
    await _reply(query, done, reply_markup=keyboards.main_menu())
    try:
        await AdminNotices(ctx, bot).booking_created(booking)
    except Exception:  # the customer is booked and told so: never "something went wrong" now
        log.exception("tenant %s: admins not told of booking #%s", ctx.tenant_id, booking.id)
    await _drop_buttons(query)


async def _seat_refused(
    query: CallbackQuery,
    ctx: TenantContext,
    service: Service,
    problem: booking_service.SeatProblem,
) -> None:
    if problem is booking_service.SeatProblem.ALREADY:
        note = _("You already have a seat in this class.")
    elif problem is booking_service.SeatProblem.FULL:
        note = _("Sorry, the last seat has just been taken.")
    else:
        note = _("This class is no longer available.")
    await offer_sessions(query, ctx, service, note)


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
    r.callback_query.register(pick_staff, StaffCb.filter())
    r.callback_query.register(show_staff_photo, StaffPhotoCb.filter())
    r.callback_query.register(pick_day, CalendarCb.filter())
    r.callback_query.register(pick_slot, SlotCb.filter())
    r.callback_query.register(pick_session, SessionCb.filter())
    # StateFilter and Magic, not a bare State or F: aiogram would run those in a thread.
    r.message.register(got_contact, StateFilter(BookingForm.contact), Magic(F.contact))
    r.message.register(typed_phone, StateFilter(BookingForm.contact), Magic(F.text))
    r.callback_query.register(
        confirm,
        ConfirmCb.filter(F.action == ConfirmAction.confirm),
        StateFilter(BookingForm.confirm),
    )
    r.callback_query.register(
        cancel, ConfirmCb.filter(F.action == ConfirmAction.cancel), StateFilter(BookingForm.confirm)
    )
    r.callback_query.register(stale_confirm, ConfirmCb.filter())
    r.include_router(waitlist.router())
    return r
