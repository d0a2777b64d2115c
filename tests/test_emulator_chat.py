"""The terminal chat: a real bot process answered a person typing into it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiogram import Dispatcher, F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from core.telegram import build_bot
from telegram_emulator import EmulatorClient, EmulatorServer
from telegram_emulator.chat import parse

TOKEN = "3000001:test-chat-repl-token-abcdefgh"
ROOT = Path(__file__).resolve().parents[1]


def test_parse():
    assert parse(":3") == ("press", "3")
    assert parse(":contact +79001234567") == ("contact", "+79001234567")
    assert parse("привет\n") == ("send", "привет")


async def test_typing_and_pressing_buttons_in_the_terminal():
    router = Router()

    @router.message(F.text == "/start")
    async def start(message: Message) -> None:
        kb = InlineKeyboardBuilder()
        kb.button(text="Да", callback_data="yes")
        kb.button(text="Нет", callback_data="no")
        await message.answer("Продолжим?", reply_markup=kb.as_markup())

    @router.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer()
        assert isinstance(query.message, Message)
        await query.message.answer(f"Вы выбрали: {query.data}")

    async with EmulatorServer() as server:
        async with EmulatorClient(server.base_url) as client:
            await client.register_bot(TOKEN, "repl_test_bot")
        bot = build_bot(TOKEN, server.base_url)
        dp = Dispatcher()
        dp.include_router(router)
        polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "telegram_emulator.chat", "--url", server.base_url,
            "--token", TOKEN, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(b"/start\n")
            await proc.stdin.drain()
            await asyncio.sleep(1.5)
            proc.stdin.write(b":2\n")
            await proc.stdin.drain()
            await asyncio.sleep(1.5)
            proc.stdin.write(b":quit\n")
            await proc.stdin.drain()
            out, _ = await asyncio.wait_for(proc.communicate(), 20)
        finally:
            await dp.stop_polling()
            await polling
            await bot.session.close()
    text = out.decode()
    assert "Продолжим?" in text and "[1] Да  [2] Нет" in text
    assert "Вы выбрали: no" in text
