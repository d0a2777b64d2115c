"""/start and /help, /stats, and the catch-alls (last)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from master_bot.operator import stats, text
from master_bot.operator.handlers.clients import lifecycle
from master_bot.services import Master


async def start(
    message: Message, command: CommandObject, master: Master, actor: str, state: FSMContext
) -> None:
    if command.args:  # /start client_001: start that tenant's bot
        await lifecycle(message, command, master, actor)
        return
    await state.clear()
    await message.answer(text.HELP)


async def help_(message: Message) -> None:
    await message.answer(text.HELP)


async def show_stats(message: Message, master: Master) -> None:
    figures = await stats.collect(master, master.fleet.clock(), text.ZONE)
    await message.answer(text.stats(figures))


async def unknown_message(message: Message) -> None:
    await message.answer("Не понял. Команды — /help.")


async def stale_button(query: CallbackQuery) -> None:
    await query.answer("Эта кнопка устарела.", show_alert=True)


def router() -> Router:
    r = Router(name="operator-common")
    r.message.register(start, Command("start"))
    r.message.register(help_, Command("help"))
    r.message.register(show_stats, Command("stats"))
    return r


def last_router() -> Router:
    r = Router(name="operator-fallback")
    r.message.register(unknown_message)
    r.callback_query.register(stale_button)
    return r
