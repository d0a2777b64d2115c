from __future__ import annotations

import asyncio

import pytest
from aiogram.enums import ParseMode

from core.telegram import BotTokenRefusedError, InvalidBotTokenError, build_bot, wait_for_telegram
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.support import free_port

TOKEN = "4000001:test-build-bot-token-abcdefgh"


async def test_build_bot_honours_the_api_url_and_html_default():
    async with EmulatorServer() as server:
        async with EmulatorClient(server.base_url) as client:
            await client.register_bot(TOKEN, "factory_test_bot")
        bot = build_bot(TOKEN, server.base_url + "/", timeout=5)
        try:
            me = await bot.get_me()
            assert me.username == "factory_test_bot"
            assert bot.default.parse_mode == ParseMode.HTML
        finally:
            await bot.session.close()


@pytest.mark.parametrize(
    "bad", ["", "nope", "abc:defghijklmnopqrstuvwxyz", "99:short", "12 3:" + "x" * 30]
)
def test_build_bot_rejects_malformed_tokens_without_echoing_them(bad):
    with pytest.raises(InvalidBotTokenError, match="@BotFather") as info:
        build_bot(bad)
    assert not bad or bad not in str(info.value)


async def test_wait_for_telegram_waits_out_an_outage_then_returns_the_bot(caplog):
    port = free_port()
    bot = build_bot(TOKEN, f"http://127.0.0.1:{port}", timeout=2)
    server = EmulatorServer()
    try:
        waiting = asyncio.create_task(wait_for_telegram(bot, "SOME_BOT_TOKEN", first_delay=0.1))
        await asyncio.sleep(0.5)  # nothing listens: a few getMe calls failed, none crashed
        assert not waiting.done()
        assert "Telegram does not answer getMe for SOME_BOT_TOKEN" in caplog.text
        await server.start(port=port)
        async with EmulatorClient(server.base_url) as client:
            await client.register_bot(TOKEN, "patient_test_bot")
        me = await asyncio.wait_for(waiting, 10)
        assert me.username == "patient_test_bot"
        assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text
    finally:
        await bot.session.close()
        await server.stop()


async def test_wait_for_telegram_gives_up_on_a_refused_token():
    async with EmulatorServer() as server:
        bot = build_bot(TOKEN, server.base_url, timeout=5)  # never registered: 401
        try:
            with pytest.raises(BotTokenRefusedError, match=r"SOME_BOT_TOKEN.*@BotFather") as info:
                await asyncio.wait_for(wait_for_telegram(bot, "SOME_BOT_TOKEN"), 10)
            assert TOKEN.split(":")[1] not in str(info.value)
        finally:
            await bot.session.close()
