"""My bookings: upcoming visits, cancellation until the business's cut-off."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import keyboards, text
from client_bot.booking import can_cancel
from client_bot.booking_service import CancelRefusal, cancel_for_customer
from client_bot.callbacks import MenuAction, MenuCb, MyBookingCb
from client_bot.context import TenantContext
from client_bot.notices import AdminNotices
from client_bot.store import Booking


async def my_bookings_view(ctx: TenantContext, customer_id: int) -> tuple[str, object]:
    business = await ctx.business()
    now = ctx.now()
    items = await ctx.store.upcoming_bookings(customer_id, now)
    if not items:
        return _("You have no upcoming bookings."), keyboards.main_menu()
    lines = [_("<b>Your bookings</b>")]
    marked = []
    for b in items:
        cancellable = can_cancel(business.rules, b.starts_at, now)
        lines.append(
            f"#{b.id} · {text.esc(b.service_name)} · "
            f"{text.when(b.starts_at, business.timezone, business.locale)}"
        )
        marked.append((b, cancellable))
    if not all(c for _b, c in marked):
        lines.append(
            _(
                "\nBookings less than {hours} h away can no longer be cancelled here: please call us."
            ).format(hours=round(business.cancel_cutoff_min / 60, 1))
        )
    return "\n".join(lines), keyboards.my_bookings(marked)


async def show_my_bookings(query: CallbackQuery, ctx: TenantContext) -> None:
    await query.answer()
    body, markup = await my_bookings_view(ctx, query.from_user.id)
    if isinstance(query.message, Message):
        await query.message.answer(body, reply_markup=markup)  # type: ignore[arg-type]


async def cancel_my_booking(
    query: CallbackQuery, callback_data: MyBookingCb, ctx: TenantContext, bot: Bot
) -> None:
    outcome = await cancel_for_customer(ctx, callback_data.booking_id, query.from_user.id)
    if outcome is CancelRefusal.NOT_FOUND:
        await query.answer(_("Booking not found."), show_alert=True)
        return
    if outcome is CancelRefusal.INACTIVE:
        await query.answer(_("This booking is no longer active."), show_alert=True)
    elif outcome is CancelRefusal.TOO_LATE:
        business = await ctx.business()
        await query.answer(
            _("It is too late to cancel online. Please call us: {phone}").format(
                phone=business.phone or "—"
            ),
            show_alert=True,
        )
    else:
        assert isinstance(outcome, Booking)
        await query.answer(_("Booking cancelled."))
        await AdminNotices(ctx, bot).booking_cancelled(outcome)
    body, markup = await my_bookings_view(ctx, query.from_user.id)
    if isinstance(query.message, Message):
        await query.message.answer(body, reply_markup=markup)  # type: ignore[arg-type]


def router() -> Router:
    """A fresh router for one tenant (a process may host several)."""
    r = Router(name="my_bookings")
    r.callback_query.register(show_my_bookings, MenuCb.filter(F.action == MenuAction.my))
    r.callback_query.register(cancel_my_booking, MyBookingCb.filter())
    return r
