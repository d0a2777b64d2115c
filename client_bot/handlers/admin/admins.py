"""Admins: the owners from ADMIN_IDS plus those added here by Telegram id."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    CallbackQuery,
    Message,
)
from aiogram.utils.i18n import gettext as _

from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards, parse
from client_bot.handlers.admin.callbacks import AdminCb, AdminsAction, AdminsCb, Screen
from client_bot.handlers.admin.screen import TYPED, admin_router, prompt, show
from client_bot.handlers.admin.states import AdminInput

log = logging.getLogger(__name__)


def _commands(*, admin: bool) -> list[BotCommand]:
    commands = [BotCommand(command="start", description=_("Main menu"))]
    if admin:
        commands.append(BotCommand(command="admin", description=_("Admin panel")))
    return commands


async def refresh_commands(bot: Bot, ctx: TenantContext, *, removed: int | None = None) -> None:
    """Menu commands in the business's current language: /admin only in admins' chats."""
    locale = await ctx.locale()
    with ctx.i18n.use_locale(locale):
        customer, admin = _commands(admin=False), _commands(admin=True)
    try:
        await bot.set_my_commands(customer, scope=BotCommandScopeDefault())
        if removed is not None:
            await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=removed))
        for admin_id in sorted(await ctx.admin_ids()):
            await bot.set_my_commands(admin, scope=BotCommandScopeChat(chat_id=admin_id))
    except TelegramAPIError as exc:  # an admin who has not opened the bot yet, and the like
        log.info("tenant %s: commands not fully set: %s", ctx.tenant_id, exc)


async def show_admins(event: Message | CallbackQuery, ctx: TenantContext, note: str = "") -> None:
    owners = sorted(set(ctx.settings.admin_ids))
    added = sorted(await ctx.store.admin_ids() - set(owners))
    lines = [_("<b>🔑 Admins</b>")]
    lines.extend(_("{id} — owner").format(id=i) for i in owners)
    lines.extend(_("{id} — added in the panel").format(id=i) for i in added)
    lines.append(
        _("\nAn admin opens the panel with /admin in this bot and gets booking notifications.")
    )
    me = event.from_user.id if event.from_user else 0
    body = (note + "\n\n" if note else "") + "\n".join(lines)
    await show(event, body, keyboards.admins([i for i in added if i != me]))


async def open_admins(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_admins(query, ctx)


async def ask_admin(query: CallbackQuery, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.admin_add,
        _(
            "Send the Telegram id of the new admin, like <code>123456789</code>."
            " The person can learn theirs from @userinfobot. /cancel to stop."
        ),
        AdminCb(screen=Screen.admins),
    )


async def add_admin(message: Message, ctx: TenantContext, state: FSMContext, bot: Bot) -> None:
    assert message.text is not None and message.from_user is not None
    try:
        user_id = parse.telegram_id(message.text)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    if await ctx.is_admin(user_id):
        await show_admins(message, ctx, _("{id} is already an admin.").format(id=user_id))
        return
    await ctx.store.add_admin(user_id, added_by=message.from_user.id)
    ctx.refresh()
    await refresh_commands(bot, ctx)
    await show_admins(
        message,
        ctx,
        _("✅ {id} is an admin now: they can open the panel with /admin.").format(id=user_id),
    )


async def remove_admin(
    query: CallbackQuery, callback_data: AdminsCb, ctx: TenantContext, state: FSMContext, bot: Bot
) -> None:
    await state.clear()
    user_id = callback_data.user_id
    if user_id in ctx.settings.admin_ids:
        note = _("The owner cannot be removed here.")
    elif user_id == query.from_user.id:
        note = _("You cannot remove yourself.")
    else:
        await ctx.store.remove_admin(user_id)
        ctx.refresh()
        await refresh_commands(bot, ctx, removed=user_id)
        note = _("✅ {id} is no longer an admin.").format(id=user_id)
    await show_admins(query, ctx, note)


def router() -> Router:
    r = admin_router("admin_admins")
    r.callback_query.register(open_admins, AdminCb.filter(F.screen == Screen.admins))
    r.callback_query.register(ask_admin, AdminsCb.filter(F.action == AdminsAction.add))
    r.callback_query.register(remove_admin, AdminsCb.filter(F.action == AdminsAction.remove))
    r.message.register(add_admin, AdminInput.admin_add, TYPED)
    return r
