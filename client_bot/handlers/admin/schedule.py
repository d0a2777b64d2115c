"""Weekly hours (one weekday, or several at once: "Пн–Пт 10:00–20:00, Сб 11:00–17:00"),
breaks and days off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time, timedelta

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.booking.templates import CLOSED_WORDS, WeekInputError, split_week
from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards, parse
from client_bot.handlers.admin.callbacks import (
    AdminCb,
    ScheduleAction,
    ScheduleCb,
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

DAYS_OFF_SHOWN = 10


class WeekHoursCb(CallbackData, prefix="awh"):
    """Set the hours of several weekdays in one message."""


def _with_week_button(markup: InlineKeyboardMarkup) -> InlineKeyboardMarkup:
    """The schedule's keyboard with "several days at once" above its Back button."""
    rows = markup.inline_keyboard
    button = InlineKeyboardButton(
        text=_("🗓 Hours for several days"), callback_data=WeekHoursCb().pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[*rows[:-1], [button], *rows[-1:]])


def _intervals(items: Sequence[tuple[time, time]]) -> str:
    return ", ".join(
        f"{s:%H:%M}–{'24:00' if e == parse.MIDNIGHT else f'{e:%H:%M}'}" for s, e in items
    )


async def show_schedule(event: Message | CallbackQuery, ctx: TenantContext, note: str = "") -> None:
    business = await ctx.business()
    schedule = await ctx.store.work_schedule()
    today = local_today(ctx, business.zone)
    lines = [_("<b>🕒 Schedule</b>")]
    for weekday in range(7):
        hours = schedule.hours.get(weekday, [])
        breaks = [(s, e) for wd, s, e in schedule.breaks if wd == weekday]
        line = f"{text.weekday_short(weekday, business.locale)}: " + (
            _intervals(hours) if hours else _("closed")
        )
        if hours and breaks:
            line += _(" (breaks: {breaks})").format(breaks=_intervals(breaks))
        lines.append(line)
    days_off = sorted(d for d in schedule.days_off if d >= today)[:DAYS_OFF_SHOWN]
    if days_off:
        lines.append(_("\n<b>Days off</b>"))
        lines.extend(text.day_long(d, business.locale) for d in days_off)
    lines.append(_("\nPick a weekday to change its hours or breaks."))
    await show(
        event,
        (note + "\n\n" if note else "") + "\n".join(lines),
        _with_week_button(keyboards.schedule(days_off, business.locale)),
    )


async def show_weekday(
    event: Message | CallbackQuery, ctx: TenantContext, weekday: int, note: str = ""
) -> None:
    business = await ctx.business()
    schedule = await ctx.store.work_schedule()
    hours = schedule.hours.get(weekday, [])
    breaks = [(s, e) for wd, s, e in schedule.breaks if wd == weekday]
    body = _("<b>{weekday}</b>\nHours: {hours}\nBreaks: {breaks}").format(
        weekday=text.weekday_long(weekday, business.locale).capitalize(),
        hours=_intervals(hours) if hours else _("closed"),
        breaks=_intervals(breaks) if breaks else "—",
    )
    await show(event, (note + "\n\n" if note else "") + body, keyboards.weekday(weekday))


async def open_schedule(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_schedule(query, ctx)


async def open_weekday(
    query: CallbackQuery, callback_data: ScheduleCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    await show_weekday(query, ctx, callback_data.weekday % 7)


async def ask_intervals(
    query: CallbackQuery, callback_data: ScheduleCb, ctx: TenantContext, state: FSMContext
) -> None:
    weekday = callback_data.weekday % 7
    name = text.weekday_long(weekday, (await ctx.business()).locale).capitalize()
    if callback_data.action is ScheduleAction.hours:
        waiting_for = AdminInput.hours
        question = _(
            "<b>{weekday}</b>: send the working hours, like <code>10:00-14:00, 15:00-19:00</code>,"
            " or <code>-</code> if closed that day. /cancel to stop."
        )
    else:
        waiting_for = AdminInput.breaks
        question = _(
            "<b>{weekday}</b>: send the breaks, like <code>13:00-14:00</code>,"
            " or <code>-</code> for none. /cancel to stop."
        )
    await prompt(
        query,
        state,
        waiting_for,
        question.format(weekday=name),
        AdminCb(screen=Screen.schedule),
        weekday=weekday,
    )


async def ask_week(query: CallbackQuery, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.hours,
        _(
            "Send the hours of several days in one message, like"
            " <code>Mon-Fri 10:00-20:00, Sat 11:00-17:00, Sun -</code>"
            " (<code>-</code> means closed; a day can have several intervals:"
            " <code>Mon-Fri 10:00-14:00, 15:00-19:00</code>). Days you leave out keep their"
            " hours. /cancel to stop."
        ),
        AdminCb(screen=Screen.schedule),
        week=True,
    )


def _week_error(exc: WeekInputError) -> str:
    reason = exc.args[0]
    if reason == "day":
        return _("I don't know the day «{day}»: use Mon, Tue, Wed, Thu, Fri, Sat, Sun.").format(
            day=text.esc(exc.args[1])
        )
    if reason == "hours":
        return _("No hours after {days}: add them, like <code>{days} 10:00-19:00</code>.").format(
            days=text.esc(exc.args[1])
        )
    return _("Start with the days, like <code>Mon-Fri 10:00-20:00, Sat 11:00-17:00</code>.")


def read_week(raw: str) -> dict[int, list[tuple[time, time]]]:
    """What the admin typed, as hours per weekday (later parts win); raises parse.InputError."""
    try:
        parts = split_week(raw)
    except WeekInputError as exc:
        raise parse.InputError(_week_error(exc)) from None
    week: dict[int, list[tuple[time, time]]] = {}
    for days, hours in parts:
        closed = hours.lower() in CLOSED_WORDS
        intervals = [] if closed else parse.intervals(hours)
        for weekday in days:
            week[weekday] = intervals
    return week


async def set_week(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    try:
        week = read_week(message.text)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    await ctx.store.set_week_hours(sorted(week.items()))
    locale = (await ctx.business()).locale
    days = ", ".join(text.weekday_short(wd, locale) for wd in sorted(week))
    await show_schedule(message, ctx, _("✅ Saved: {days}.").format(days=days))


async def set_hours(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    if (await state.get_data()).get("week"):
        await set_week(message, ctx, state)
        return
    try:
        intervals = parse.intervals(message.text)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    weekday = int((await state.get_data())["weekday"])
    await state.clear()
    await ctx.store.set_hours(weekday, intervals)
    await show_weekday(message, ctx, weekday, _("✅ Saved."))


async def set_breaks(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    try:
        intervals = parse.intervals(message.text, until_midnight=False)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    weekday = int((await state.get_data())["weekday"])
    await state.clear()
    await ctx.store.set_breaks(weekday, intervals)
    await show_weekday(message, ctx, weekday, _("✅ Saved."))


async def ask_day_off(query: CallbackQuery, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.day_off,
        _(
            "Send the date of the day off, like <code>31.12.2026</code> or"
            " <code>2026-12-31</code>. /cancel to stop."
        ),
        AdminCb(screen=Screen.schedule),
    )


async def add_day_off(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    business = await ctx.business()
    try:
        day = parse.future_day(message.text, local_today(ctx, business.zone))
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    await ctx.store.add_day_off(day)
    note = _("✅ {day} is a day off now.").format(day=text.day_long(day, business.locale))
    start = day_start(day, business.zone)
    booked = await ctx.store.bookings_between(start, start + timedelta(days=1))
    if booked:
        note += "\n" + _(
            "⚠️ There are bookings on that day ({n}): open 📅 Bookings to cancel them with a note."
        ).format(n=len(booked))
    await show_schedule(message, ctx, note)


async def remove_day_off(
    query: CallbackQuery, callback_data: ScheduleCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    day: date | None = unpack_day(callback_data.day)
    if day is not None:
        await ctx.store.remove_day_off(day)
    await show_schedule(query, ctx, _("✅ The day off is removed."))


def router() -> Router:
    r = admin_router("admin_schedule")
    r.callback_query.register(open_schedule, AdminCb.filter(F.screen == Screen.schedule))
    r.callback_query.register(ask_week, WeekHoursCb.filter())
    r.callback_query.register(open_weekday, ScheduleCb.filter(F.action == ScheduleAction.weekday))
    r.callback_query.register(
        ask_intervals,
        ScheduleCb.filter(F.action.in_({ScheduleAction.hours, ScheduleAction.breaks})),
    )
    r.callback_query.register(
        ask_day_off, ScheduleCb.filter(F.action == ScheduleAction.add_day_off)
    )
    r.callback_query.register(
        remove_day_off, ScheduleCb.filter(F.action == ScheduleAction.remove_day_off)
    )
    r.message.register(set_hours, AdminInput.hours, TYPED)
    r.message.register(set_breaks, AdminInput.breaks, TYPED)
    r.message.register(add_day_off, AdminInput.day_off, TYPED)
    return r
