"""Customers: how many and who; a broadcast to all of them (the worker sends it), when the
tenant's plan includes broadcasts (PLAN_FEATURES): otherwise the button is not shown and every
step of a broadcast refuses with a clear message (an old button or a started dialog included)."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards
from client_bot.handlers.admin.callbacks import AdminCb, CustomersAction, CustomersCb, Screen
from client_bot.handlers.admin.screen import TYPED, admin_router, prompt, show
from client_bot.handlers.admin.states import AdminInput
from client_bot.workers.broadcast import BroadcastWorker, report

PAGE = 20
BROADCAST_MAX = 3500  # Telegram allows 4096 characters; the markup counts too


async def show_customers(
    event: Message | CallbackQuery, ctx: TenantContext, page: int = 0, note: str = ""
) -> None:
    business = await ctx.business()
    total, blocked = await ctx.store.customer_counts()
    pages = max(1, -(-total // PAGE))
    page = min(max(page, 0), pages - 1)
    _total, items = await ctx.store.customers(limit=PAGE, offset=page * PAGE)
    lines = [
        _("<b>👥 Customers: {total}</b> (blocked the bot: {blocked})").format(
            total=total, blocked=blocked
        )
    ]
    if pages > 1:
        lines.append(_("Page {page} of {pages}").format(page=page + 1, pages=pages))
    for i, c in enumerate(items, start=page * PAGE + 1):
        parts = [text.esc(c.first_name) or "—"]
        if c.username:
            parts.append("@" + text.esc(c.username))
        if c.phone:
            parts.append(text.esc(c.phone))
        parts.append(text.day(c.created_at.astimezone(business.zone).date(), business.locale))
        lines.append(f"{i}. " + " · ".join(parts) + (" ⛔" if c.blocked else ""))
    if not items:
        lines.append(_("Nobody has started the bot yet."))
    body = (note + "\n\n" if note else "") + "\n".join(lines)
    await show(event, body, keyboards.customers(page, pages, broadcasts=broadcasts_allowed(ctx)))


async def open_customers(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_customers(query, ctx)


async def open_page(
    query: CallbackQuery, callback_data: CustomersCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    await show_customers(query, ctx, callback_data.page)


async def _recipients(ctx: TenantContext) -> int:
    total, blocked = await ctx.store.customer_counts()
    return total - blocked


def broadcasts_allowed(ctx: TenantContext) -> bool:
    return ctx.settings.has_feature("broadcasts")


def not_in_plan() -> str:
    return _(
        "📣 Broadcasts are not included in your plan. To send messages to every customer,"
        " switch to a plan with broadcasts."
    )


async def refuse(event: Message | CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_customers(event, ctx, note=not_in_plan())


async def ask_broadcast(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    if not broadcasts_allowed(ctx):
        await refuse(query, ctx, state)
        return
    await prompt(
        query,
        state,
        AdminInput.broadcast_text,
        _(
            "Send the message for every customer who started the bot ({n}). Bold, italics"
            " and links are kept. You will see it once more before it goes. /cancel to stop."
        ).format(n=await _recipients(ctx)),
        AdminCb(screen=Screen.customers),
    )


async def got_broadcast_text(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    if not broadcasts_allowed(ctx):
        await refuse(message, ctx, state)
        return
    body = message.html_text
    if len(body) > BROADCAST_MAX:
        await message.answer(
            _(
                "The message is too long ({length} characters, at most {limit}). Please shorten it."
            ).format(length=len(body), limit=BROADCAST_MAX)
        )
        return
    await state.set_state(AdminInput.broadcast_confirm)
    await state.set_data({"text": body})
    n = await _recipients(ctx)
    await message.answer(
        _("This message goes to {n} customers:").format(n=n) + "\n\n" + body,
        reply_markup=keyboards.broadcast_confirm(n),
    )


async def send_broadcast(
    query: CallbackQuery,
    ctx: TenantContext,
    state: FSMContext,
    bot: Bot,
    broadcasts: BroadcastWorker,
) -> None:
    if not broadcasts_allowed(ctx):
        await refuse(query, ctx, state)
        return
    body = str((await state.get_data())["text"])
    await state.clear()
    await query.answer(_("Sending…"))
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
    broadcast_id = await ctx.store.create_broadcast(body, created_by=query.from_user.id)
    started = await ctx.store.broadcast_state(broadcast_id)
    assert started is not None
    progress = await bot.send_message(query.from_user.id, report(started, final=False))
    await ctx.store.set_broadcast_progress_message(
        broadcast_id, progress.chat.id, progress.message_id
    )
    broadcasts.start(broadcast_id)


async def stale_send(query: CallbackQuery) -> None:
    """Send/Cancel of a broadcast that was already sent or dropped."""
    await query.answer(_("This broadcast was already sent or cancelled."), show_alert=True)


async def drop_broadcast(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
    await show_customers(query, ctx, note=_("The broadcast is cancelled."))


def router() -> Router:
    r = admin_router("admin_customers")
    r.callback_query.register(open_customers, AdminCb.filter(F.screen == Screen.customers))
    r.callback_query.register(open_page, CustomersCb.filter(F.action == CustomersAction.page))
    r.callback_query.register(
        ask_broadcast, CustomersCb.filter(F.action == CustomersAction.broadcast)
    )
    r.callback_query.register(
        send_broadcast,
        AdminInput.broadcast_confirm,
        CustomersCb.filter(F.action == CustomersAction.send),
    )
    r.callback_query.register(stale_send, CustomersCb.filter(F.action == CustomersAction.send))
    r.callback_query.register(drop_broadcast, CustomersCb.filter(F.action == CustomersAction.drop))
    r.message.register(
        got_broadcast_text,
        StateFilter(AdminInput.broadcast_text, AdminInput.broadcast_confirm),
        TYPED,
    )
    return r
