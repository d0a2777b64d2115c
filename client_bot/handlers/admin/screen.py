"""How the panel talks: admin-only routers, one new message per screen, the business's day."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from client_bot.context import TenantContext
from client_bot.filters import IsAdmin
from client_bot.handlers.admin import keyboards

# A typed answer to a prompt: text that is not a command (/cancel, /start, /admin stay commands).
TYPED = F.text & ~F.text.startswith("/")


def admin_router(name: str) -> Router:
    """A fresh router whose every message and button handler is for admins only: anyone else's
    update falls through to the customer routers (and their "out of date" fallback)."""
    r = Router(name=name)
    r.message.filter(IsAdmin())
    r.callback_query.filter(IsAdmin())
    return r


async def show(
    event: Message | CallbackQuery, body: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Send a screen as a new message to the admin (a pressed button gets its answer first)."""
    if isinstance(event, CallbackQuery):
        await event.answer()
        if isinstance(event.message, Message):
            await event.message.answer(body, reply_markup=markup)
        elif event.bot is not None:  # a button on a message too old to reach
            await event.bot.send_message(event.from_user.id, body, reply_markup=markup)
        return
    await event.answer(body, reply_markup=markup)


async def prompt(
    event: Message | CallbackQuery,
    state: FSMContext,
    waiting_for: State,
    body: str,
    back: CallbackData | None = None,
    **data: object,
) -> None:
    """Ask the admin to type something; the answer goes to the handler of `waiting_for`."""
    await state.set_state(waiting_for)
    await state.set_data(dict(data))
    await show(event, body, keyboards.cancel_input(back))


def local_today(ctx: TenantContext, zone: ZoneInfo) -> date:
    return ctx.now().astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight that starts `day` in the business's time zone."""
    return datetime.combine(day, time(0), tzinfo=zone)
