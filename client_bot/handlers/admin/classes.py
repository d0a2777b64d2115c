"""Group classes: a service's seats per session, its weekly timetable and one-off sessions."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from babel.dates import get_day_names

from client_bot import booking_service, text
from client_bot.context import TenantContext
from client_bot.handlers.admin import parse
from client_bot.handlers.admin.callbacks import (
    ClassAction,
    ClassAdminCb,
    ServiceAction,
    ServiceAdminCb,
)
from client_bot.handlers.admin.screen import TYPED, admin_router, local_today, prompt, show
from client_bot.handlers.admin.services import show_service, show_services
from client_bot.handlers.admin.states import AdminInput
from client_bot.store import Service

log = logging.getLogger(__name__)

SESSIONS_SHOWN = 10
MAX_SEATS = 1000


def weekday(raw: str) -> int:
    """`Wed`, `среда`, `ср` or 1..7 (Monday = 1) → 0..6."""
    value = raw.strip().lower().rstrip(".")
    if value.isdigit() and 1 <= int(value) <= 7:
        return int(value) - 1
    for locale in ("ru", "en"):
        for width in ("abbreviated", "wide", "short"):
            names = get_day_names(width, locale=locale)
            for number in range(7):
                if str(names[number]).lower().rstrip(".") == value:
                    return number
    raise parse.InputError(
        _("«{value}» is not a weekday. Write it like Wed or 3 (Monday is 1).").format(value=raw)
    )


async def _class_or_services(
    event: Message | CallbackQuery, ctx: TenantContext, service_id: int
) -> Service | None:
    item = await ctx.store.service(service_id)
    if item is None:
        await show_services(event, ctx, _("This service no longer exists."))
    return item


async def show_timetable(
    event: Message | CallbackQuery, ctx: TenantContext, item: Service, note: str = ""
) -> None:
    business = await ctx.business()
    entries = await ctx.store.timetable(item.id)
    sessions = await booking_service.class_sessions(ctx, item)
    lines = [
        _("<b>{name}</b>: a group class, {seats} seats per session").format(
            name=text.esc(item.name), seats=item.capacity
        ),
        _("Every week:"),
    ]
    lines += [
        f"· {text.weekday_long(e['weekday'], business.locale)} {e['starts']:%H:%M}" for e in entries
    ] or ["—"]
    lines.append(_("Next sessions (booked / seats):"))
    lines += [
        f"· {text.when(s.starts_at, business.timezone, business.locale)} — {s.booked}/{s.capacity}"
        for s in sessions[:SESSIONS_SHOWN]
    ] or ["—"]
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("➕ Every week"),
        callback_data=ClassAdminCb(action=ClassAction.add_weekly, service_id=item.id),
    )
    kb.button(
        text=_("➕ One-off session"),
        callback_data=ClassAdminCb(action=ClassAction.add_once, service_id=item.id),
    )
    for e in entries:
        kb.button(
            text=_("✖️ {weekday} {time}").format(
                weekday=text.weekday_short(e["weekday"], business.locale),
                time=f"{e['starts']:%H:%M}",
            ),
            callback_data=ClassAdminCb(
                action=ClassAction.remove_weekly, service_id=item.id, entry_id=e["id"]
            ),
        )
    shown = sessions[:SESSIONS_SHOWN]
    for session in shown:
        kb.button(
            text=_("🚫 Cancel {when}").format(
                when=text.when(session.starts_at, business.timezone, business.locale)
            ),
            callback_data=ClassAdminCb(
                action=ClassAction.cancel_session, service_id=item.id, entry_id=session.id
            ),
        )
    kb.button(
        text=_("« Back"),
        callback_data=ServiceAdminCb(action=ServiceAction.view, service_id=item.id),
    )
    kb.adjust(2, *([1] * (len(entries) + len(shown) + 1)))
    await show(event, (note + "\n\n" if note else "") + "\n".join(lines), kb.as_markup())


async def ask_capacity(
    query: CallbackQuery, callback_data: ClassAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    item = await _class_or_services(query, ctx, callback_data.service_id)
    if item is None:
        return
    await prompt(
        query,
        state,
        AdminInput.class_capacity,
        _(
            "«{name}» as a group class: send the number of seats per session, like 12,"
            " or <code>-</code> for a service booked one customer at a time. /cancel to stop."
        ).format(name=text.esc(item.name)),
        ServiceAdminCb(action=ServiceAction.view, service_id=item.id),
        service_id=item.id,
    )


async def set_capacity(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    try:
        seats = None if parse.is_blank(message.text) else parse.number(message.text, 1, MAX_SEATS)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    service_id = int((await state.get_data())["service_id"])
    await state.clear()
    item = await ctx.store.update_service(service_id, "capacity", seats)
    if item is None:
        await show_services(message, ctx, _("This service no longer exists."))
        return
    if item.is_class:
        await show_timetable(message, ctx, item, _("✅ A group class now. Add its sessions below."))
    else:
        await show_service(message, ctx, item, _("✅ Booked one customer at a time now."))


async def open_timetable(
    query: CallbackQuery, callback_data: ClassAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    item = await _class_or_services(query, ctx, callback_data.service_id)
    if item is None:
        return
    if not item.is_class:
        await show_service(query, ctx, item, _("This service is not a group class any more."))
        return
    await show_timetable(query, ctx, item)


async def ask_session(
    query: CallbackQuery, callback_data: ClassAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    item = await _class_or_services(query, ctx, callback_data.service_id)
    if item is None:
        return
    weekly = callback_data.action is ClassAction.add_weekly
    question = (
        _("Send the weekday and the start, like <code>Wed 18:00</code>. /cancel to stop.")
        if weekly
        else _("Send the date and the start, like <code>31.12.2026 18:00</code>. /cancel to stop.")
    )
    await prompt(
        query,
        state,
        AdminInput.class_weekly if weekly else AdminInput.class_once,
        question,
        ClassAdminCb(action=ClassAction.timetable, service_id=item.id),
        service_id=item.id,
    )


def _two_parts(raw: str) -> tuple[str, str]:
    parts = raw.split()
    if len(parts) != 2:
        raise parse.InputError(_("Please send two parts: the day and the start time."))
    return parts[0], parts[1]


async def add_weekly(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    try:
        day_raw, time_raw = _two_parts(message.text)
        day, starts = weekday(day_raw), parse.clock_time(time_raw)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    item = await _class_or_services(message, ctx, int((await state.get_data())["service_id"]))
    await state.clear()
    if item is None or not item.is_class:
        return
    if any(
        e["weekday"] == day and e["starts"] == starts for e in await ctx.store.timetable(item.id)
    ):
        await show_timetable(message, ctx, item, _("This session is in the timetable already."))
        return
    await ctx.store.add_timetable_entry(item.id, day, starts)
    await show_timetable(message, ctx, item, _("✅ Added."))


async def add_once(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    business = await ctx.business()
    try:
        day_raw, time_raw = _two_parts(message.text)
        day = parse.future_day(day_raw, local_today(ctx, business.zone))
        starts = datetime.combine(day, parse.clock_time(time_raw), tzinfo=business.zone)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    if starts <= ctx.now():
        await message.answer(_("This time has already passed. Please send a future one."))
        return
    item = await _class_or_services(message, ctx, int((await state.get_data())["service_id"]))
    await state.clear()
    if item is None or not item.is_class or item.capacity is None:
        return
    existing = await ctx.store.sessions(item.id, starts, starts + timedelta(minutes=1))
    if existing:
        await show_timetable(message, ctx, item, _("This session is in the timetable already."))
        return
    await ctx.store.add_session(
        item.id, starts, starts + timedelta(minutes=item.duration_min), item.capacity
    )
    await show_timetable(message, ctx, item, _("✅ Added."))


async def remove_weekly(
    query: CallbackQuery, callback_data: ClassAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    item = await _class_or_services(query, ctx, callback_data.service_id)
    if item is None:
        return
    await ctx.store.remove_timetable_entry(callback_data.entry_id, ctx.now())
    await show_timetable(
        query,
        ctx,
        item,
        _("✅ Removed. Sessions with booked seats stay until they take place."),
    )


async def ask_cancel_session(
    query: CallbackQuery, callback_data: ClassAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    item = await _class_or_services(query, ctx, callback_data.service_id)
    if item is None:
        return
    session = await ctx.store.session(callback_data.entry_id)
    if session is None or session.cancelled:
        await show_timetable(query, ctx, item, _("This session is cancelled already."))
        return
    business = await ctx.business()
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("🚫 Yes, cancel it"),
        callback_data=ClassAdminCb(
            action=ClassAction.confirm_cancel, service_id=item.id, entry_id=session.id
        ),
    )
    kb.button(
        text=_("« Back"),
        callback_data=ClassAdminCb(action=ClassAction.timetable, service_id=item.id),
    )
    kb.adjust(1)
    await show(
        query,
        _(
            "Cancel «{name}», {when}? Its {n} booked customers are told, and their seats are"
            " cancelled."
        ).format(
            name=text.esc(item.name),
            when=text.when(session.starts_at, business.timezone, business.locale),
            n=session.booked,
        ),
        kb.as_markup(),
    )


async def cancel_session(
    query: CallbackQuery,
    callback_data: ClassAdminCb,
    ctx: TenantContext,
    state: FSMContext,
    bot: Bot,
) -> None:
    await state.clear()
    item = await _class_or_services(query, ctx, callback_data.service_id)
    if item is None:
        return
    cancelled = await ctx.store.cancel_session(callback_data.entry_id)
    if cancelled is None:  # a second tap, or another admin was first: nobody is told twice
        await show_timetable(query, ctx, item, _("This session is cancelled already."))
        return
    business = await ctx.business()
    told = 0
    for booking in cancelled:
        body = _(
            "❌ «{service}», {when} is cancelled by the business: your booking #{id} is"
            " cancelled. We are sorry!"
        ).format(
            service=text.esc(booking.service_name),
            when=text.when(booking.starts_at, business.timezone, business.locale),
            id=booking.id,
        )
        try:
            await bot.send_message(booking.customer_id, body)
            told += 1
        except TelegramAPIError as exc:
            log.info("tenant %s: cancelled class not told: %s", ctx.tenant_id, exc)
    note = _("🚫 Session cancelled. Customers told: {told} of {n}.").format(
        told=told, n=len(cancelled)
    )
    await show_timetable(query, ctx, item, note)


def router() -> Router:
    r = admin_router("admin_classes")
    r.callback_query.register(ask_capacity, ClassAdminCb.filter(F.action == ClassAction.capacity))
    r.callback_query.register(
        open_timetable, ClassAdminCb.filter(F.action == ClassAction.timetable)
    )
    r.callback_query.register(
        ask_session,
        ClassAdminCb.filter(F.action.in_({ClassAction.add_weekly, ClassAction.add_once})),
    )
    r.callback_query.register(
        remove_weekly, ClassAdminCb.filter(F.action == ClassAction.remove_weekly)
    )
    r.callback_query.register(
        ask_cancel_session, ClassAdminCb.filter(F.action == ClassAction.cancel_session)
    )
    r.callback_query.register(
        cancel_session, ClassAdminCb.filter(F.action == ClassAction.confirm_cancel)
    )
    r.message.register(set_capacity, AdminInput.class_capacity, TYPED)
    r.message.register(add_weekly, AdminInput.class_weekly, TYPED)
    r.message.register(add_once, AdminInput.class_once, TYPED)
    return r
