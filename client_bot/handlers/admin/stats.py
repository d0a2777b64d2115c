"""Statistics: bookings per day and week, top services, bookings per staff member, no-show
rate, new customers."""

from __future__ import annotations

from datetime import timedelta

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards
from client_bot.handlers.admin.callbacks import AdminCb, Screen
from client_bot.handlers.admin.screen import admin_router, day_start, local_today, show


async def stats_text(ctx: TenantContext) -> str:
    business = await ctx.business()
    today = local_today(ctx, business.zone)
    monday = today - timedelta(days=today.weekday())
    stats = await ctx.store.stats(
        day_start(today, business.zone), day_start(monday, business.zone), business.timezone
    )
    per_day = dict(stats.per_day)
    lines = [
        _("<b>📊 Statistics</b>"),
        _("Bookings today: {n}").format(n=stats.bookings_today),
        _("Bookings this week: {n}").format(n=stats.bookings_week),
        "",
    ]
    for i in range(7):
        d = monday + timedelta(days=i)
        lines.append(f"{text.day(d, business.locale)}: {per_day.get(d, 0)}")
    lines.append(_("\n<b>Top services</b>"))
    if stats.top_services:
        lines.extend(
            f"{i}. {text.esc(name)} — {n}" for i, (name, n) in enumerate(stats.top_services, 1)
        )
    else:
        lines.append(_("No bookings yet."))
    if len(stats.per_staff) > 1:  # one staff member: the figures above are theirs
        lines.append(_("\n<b>By staff member</b> (this week · done · no-shows)"))
        lines.extend(
            f"{text.esc(name)}: {week} · {done} · {no_show}"
            for name, week, done, no_show in stats.per_staff
        )
    finished = stats.done + stats.no_show
    lines.append("")
    lines.append(
        _("No-shows: {rate}% ({no_show} of {finished} finished visits)").format(
            rate=round(stats.no_show_rate * 100), no_show=stats.no_show, finished=finished
        )
    )
    lines.append(_("New customers this week: {n}").format(n=stats.new_customers_week))
    lines.append(_("Customers in total: {n}").format(n=stats.customers))
    return "\n".join(lines)


async def open_stats(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show(query, await stats_text(ctx), keyboards.back(Screen.home))


def router() -> Router:
    r = admin_router("admin_stats")
    r.callback_query.register(open_stats, AdminCb.filter(F.screen == Screen.stats))
    return r
