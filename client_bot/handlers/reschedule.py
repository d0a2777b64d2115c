"""Moving a booking to another free time, keeping its number: a customer their own (outside the
cancellation cut-off, with the same staff member), an admin any booking, also to another staff
member. Both walk day → time; the chosen time is re-checked and taken at once (PostgreSQL's
per-staff exclusion constraint decides a race: the loser gets the day's fresh times).

Buttons carry the booking and the step, so an old or forged one is re-checked like a new one:
another customer's booking is "not found", a booking no longer movable gets a clear answer.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import TypeAlias

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from client_bot import booking_service, keyboards, text
from client_bot.booking import SlotProblem
from client_bot.booking_service import Moved, MoveRefusal
from client_bot.callbacks import MenuAction, MenuCb, MoveAdminCb, MoveCb, MoveStep
from client_bot.context import TenantContext
from client_bot.notices import AdminNotices
from client_bot.store import Booking, Service

log = logging.getLogger(__name__)

AnyMoveCb: TypeAlias = MoveCb | MoveAdminCb


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


async def _reply(
    query: CallbackQuery, body: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    message = _message(query)
    if message is not None:
        await message.answer(body, reply_markup=markup)
    elif query.bot is not None:
        await query.bot.send_message(query.from_user.id, body, reply_markup=markup)


def _cb(
    admin: bool, step: MoveStep, booking_id: int, staff_id: int = 0, value: int = 0
) -> AnyMoveCb:
    cls = MoveAdminCb if admin else MoveCb
    return cls(step=step, booking_id=booking_id, staff_id=staff_id, value=value)


def _unpack_day(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None


async def _refused(query: CallbackQuery, ctx: TenantContext, refusal: MoveRefusal) -> None:
    if refusal is MoveRefusal.NOT_FOUND:
        await query.answer(_("Booking not found."), show_alert=True)
    elif refusal is MoveRefusal.TOO_LATE:
        business = await ctx.business()
        await query.answer(
            _("It is too late to move this booking online. Please call us: {phone}").format(
                phone=business.phone or "—"
            ),
            show_alert=True,
        )
    else:
        await query.answer(_("This booking is no longer active."), show_alert=True)


async def _booking(
    query: CallbackQuery, ctx: TenantContext, data: AnyMoveCb
) -> tuple[Booking, Service] | None:
    """The booking the button is about, when its presser may move it now (else they are told)."""
    admin = isinstance(data, MoveAdminCb)
    found = await booking_service.movable(
        ctx, data.booking_id, None if admin else query.from_user.id
    )
    if isinstance(found, MoveRefusal):
        await _refused(query, ctx, found)
        return None
    service = await ctx.service(found.service_id)
    if service is None:
        await _refused(query, ctx, MoveRefusal.INACTIVE)
        return None
    return found, service


async def _head(ctx: TenantContext, b: Booking) -> str:
    business = await ctx.business()
    return _("🔁 Moving booking #{id}: {service}, {when}.").format(
        id=b.id,
        service=text.esc(b.service_name),
        when=text.when(b.starts_at, business.timezone, business.locale),
    )


async def offer_staff(query: CallbackQuery, ctx: TenantContext, b: Booking, s: Service) -> None:
    """Admins: whom the booking goes to (its staff member is first)."""
    offers = await booking_service.offers(ctx, s)
    kb = InlineKeyboardBuilder()
    for offer in sorted(offers, key=lambda o: o.staff.id != b.staff_id):
        kb.button(
            text=offer.staff.name,
            callback_data=_cb(True, MoveStep.staff, b.id, offer.staff.id),
        )
    kb.button(text=_("Any available"), callback_data=_cb(True, MoveStep.staff, b.id, 0))
    kb.adjust(1)
    await _reply(query, await _head(ctx, b) + "\n" + _("Choose a specialist:"), kb.as_markup())


async def offer_days(
    query: CallbackQuery,
    ctx: TenantContext,
    b: Booking,
    s: Service,
    staff_id: int,
    admin: bool,
    month: date | None = None,
    note: str = "",
) -> None:
    business = await ctx.business()
    days = await booking_service.free_days(ctx, s, staff_id or None, moving=b.id)
    prefix = note + "\n\n" if note else ""
    if not days:
        await _reply(
            query,
            prefix + _("Sorry, there are no other free times in the coming days."),
            keyboards.home_button(),
        )
        return
    shown = (
        month
        if month is not None and any((d.year, d.month) == (month.year, month.month) for d in days)
        else days[0]
    )
    markup = keyboards.month_grid(
        shown,
        days,
        business.locale,
        day=lambda d: _cb(admin, MoveStep.day, b.id, staff_id, keyboards.pack_day(d)),
        page=lambda m: _cb(admin, MoveStep.month, b.id, staff_id, m.year * 100 + m.month),
        noop=_cb(admin, MoveStep.noop, b.id),
        back=(_("« Menu"), MenuCb(action=MenuAction.home)),
    )
    await _reply(query, prefix + await _head(ctx, b) + "\n" + _("Choose a new day:"), markup)


async def offer_times(
    query: CallbackQuery,
    ctx: TenantContext,
    b: Booking,
    s: Service,
    staff_id: int,
    admin: bool,
    day: date,
    note: str = "",
) -> None:
    business = await ctx.business()
    starts = await booking_service.free_times(ctx, s, staff_id or None, day, moving=b.id)
    if not starts:
        await offer_days(
            query,
            ctx,
            b,
            s,
            staff_id,
            admin,
            day,
            note or _("There are no free times left on that day."),
        )
        return
    kb = InlineKeyboardBuilder()
    for start in starts:
        kb.button(
            text=text.hhmm(start.astimezone(business.zone)),
            callback_data=_cb(admin, MoveStep.time, b.id, staff_id, int(start.timestamp())),
        )
    kb.adjust(4)
    back = InlineKeyboardBuilder()
    back.button(
        text=_("« Dates"),
        callback_data=_cb(admin, MoveStep.month, b.id, staff_id, day.year * 100 + day.month),
    )
    kb.attach(back)
    prefix = note + "\n\n" if note else ""
    await _reply(
        query,
        prefix
        + await _head(ctx, b)
        + "\n"
        + _("{day}: choose a new time:").format(day=text.day_long(day, business.locale)),
        kb.as_markup(),
    )


async def step(
    query: CallbackQuery, callback_data: AnyMoveCb, ctx: TenantContext, bot: Bot
) -> None:
    """Every step of a move, the customer's and the admin's."""
    if callback_data.step is MoveStep.noop:
        await query.answer()
        return
    found = await _booking(query, ctx, callback_data)
    if found is None:
        return
    b, s = found
    admin = isinstance(callback_data, MoveAdminCb)
    staff_id = callback_data.staff_id
    if callback_data.step is MoveStep.start:
        await query.answer()
        if admin:
            await offer_staff(query, ctx, b, s)
            return
        staff_id = await booking_service.move_staff(ctx, b, s) or 0
        await offer_days(query, ctx, b, s, staff_id, admin)
    elif callback_data.step is MoveStep.staff:
        await query.answer()
        await offer_days(query, ctx, b, s, staff_id, admin)
    elif callback_data.step is MoveStep.month:
        await query.answer()
        await offer_days(
            query, ctx, b, s, staff_id, admin, _unpack_day(callback_data.value * 100 + 1)
        )
    elif callback_data.step is MoveStep.day:
        await query.answer()
        day = _unpack_day(callback_data.value)
        business = await ctx.business()
        if day is None or day < ctx.now().astimezone(business.zone).date():
            await offer_days(
                query, ctx, b, s, staff_id, admin, note=_("That day has already passed.")
            )
            return
        await offer_times(query, ctx, b, s, staff_id, admin, day)
    else:
        await move(query, ctx, bot, b, s, staff_id, admin, callback_data.value)


async def move(
    query: CallbackQuery,
    ctx: TenantContext,
    bot: Bot,
    b: Booking,
    s: Service,
    staff_id: int,
    admin: bool,
    ts: int,
) -> None:
    start = datetime.fromtimestamp(ts, UTC)
    outcome = await booking_service.reschedule(
        ctx,
        b.id,
        start,
        customer_id=None if admin else query.from_user.id,
        staff_id=staff_id or None,
    )
    if isinstance(outcome, MoveRefusal):
        await _refused(query, ctx, outcome)
        return
    await query.answer()
    business = await ctx.business()
    if isinstance(outcome, SlotProblem):
        day = start.astimezone(business.zone).date()
        if outcome is SlotProblem.TAKEN:
            note = _("Sorry, this time has just been taken. Here are the free times:")
        else:
            note = _("This time is not available any more: the schedule has changed.")
        if outcome in (SlotProblem.BEYOND_HORIZON, SlotProblem.DAY_OFF, SlotProblem.PAST):
            await offer_days(query, ctx, b, s, staff_id, admin, note=note)
        else:
            await offer_times(query, ctx, b, s, staff_id, admin, day, note)
        return
    moved = outcome.booking
    told = await _tell_customer(ctx, bot, outcome, query.from_user.id if admin else None)
    if admin:
        body = _("✅ Booking #{id} moved to {when}.").format(
            id=moved.id, when=text.when(moved.starts_at, business.timezone, business.locale)
        ) + (
            " " + _("The customer got your message.")
            if told
            else " "
            + _("⚠️ The customer could not be notified (the bot is blocked?): please call them.")
        )
        await _reply(query, body + "\n" + await _specialist(ctx, moved))
    try:
        await AdminNotices(ctx, bot).booking_moved(
            outcome, by_customer=not admin, skip=query.from_user.id
        )
    except Exception:  # the booking is moved and its customer told: never an error now
        log.exception("tenant %s: notices of the move of #%s not sent", ctx.tenant_id, moved.id)
    message = _message(query)
    if message is not None:
        try:
            await message.edit_reply_markup(reply_markup=None)
        except TelegramAPIError as exc:  # cosmetic
            log.info("buttons of message %s not removed: %s", message.message_id, exc)


async def _specialist(ctx: TenantContext, b: Booking) -> str:
    if b.staff_name and len(await ctx.store.staff()) > 1:
        return _("Specialist: {staff}").format(staff=text.esc(b.staff_name))
    return ""


async def _tell_customer(ctx: TenantContext, bot: Bot, moved: Moved, admin_id: int | None) -> bool:
    """The customer hears of the move: their own in the chat they pressed in, an admin's as a
    message of its own. False when Telegram would not deliver it."""
    business = await ctx.business()
    b = moved.booking
    if admin_id is None:
        body = _("✅ Your booking #{id} is moved: <b>{service}</b>, {when} (was {was}). See you!")
    else:
        body = _(
            "🔁 Your booking #{id} has been moved by the business: <b>{service}</b>, {when}"
            " (was {was})."
        )
    body = body.format(
        id=b.id,
        service=text.esc(b.service_name),
        when=text.when(b.starts_at, business.timezone, business.locale),
        was=text.when(moved.was, business.timezone, business.locale),
    )
    specialist = await _specialist(ctx, b)
    if specialist:
        body += "\n" + specialist
    try:
        await bot.send_message(
            b.customer_id, body, reply_markup=None if admin_id else keyboards.main_menu()
        )
    except TelegramAPIError as exc:
        log.info("tenant %s: customer %s not told of a move: %s", ctx.tenant_id, b.customer_id, exc)
        return False
    return True


def router() -> Router:
    """The customers' moves (the admins' are registered by the admin panel, admins only)."""
    r = Router(name="reschedule")
    r.callback_query.register(step, MoveCb.filter())
    return r
