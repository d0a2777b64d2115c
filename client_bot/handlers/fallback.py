"""What is left: free text when the AI assistant is off, and unknown buttons."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import keyboards


async def free_text(message: Message) -> None:
    await message.answer(
        _("I understand the menu buttons best. Please choose what you need:"),
        reply_markup=keyboards.main_menu(),
    )


async def unknown_button(query: CallbackQuery) -> None:
    await query.answer(_("This button is out of date."))
    if isinstance(query.message, Message):
        await query.message.answer(_("Choose what to do next:"), reply_markup=keyboards.main_menu())


def router() -> Router:
    """A fresh router for one tenant (a process may host several)."""
    r = Router(name="fallback")
    r.message.register(free_text)
    r.callback_query.register(unknown_button)
    return r
