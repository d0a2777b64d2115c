from __future__ import annotations

import pytest
from aiogram.enums import ParseMode

from core.telegram import InvalidBotTokenError, build_bot
from telegram_emulator import EmulatorServer

TOKEN = "4000001:test-build-bot-token-abcdefgh"


async def test_build_bot_honours_the_api_url_and_html_default():
    async with EmulatorServer() as server:
        from telegram_emulator import EmulatorClient

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
