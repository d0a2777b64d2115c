from __future__ import annotations

import asyncio

import pytest
from aiogram.enums import ParseMode

from core.telegram import (
    BotTokenRefusedError,
    InvalidBotTokenError,
    TelegramUnavailableError,
    TokenRejectedError,
    build_bot,
    check_bot_token,
    token_fingerprint,
    wait_for_telegram,
)
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


async def test_check_bot_token_is_the_one_check_and_waits_out_a_short_flood_wait():
    """core.telegram.check_bot_token (used by the sales bot and the master): a bot's identity
    and fingerprint; a 429 asking for 1 s is waited out once, a 429 asking for 30 s is a clear
    TelegramUnavailableError carrying retry_after (the sales bot used to let it escape)."""
    async with EmulatorServer() as server:
        async with EmulatorClient(server.base_url) as client:
            await client.register_bot(TOKEN, "checked_test_bot", "Checked")
            me = await check_bot_token(TOKEN, server.base_url, 5)
            assert (me.username, me.first_name) == ("checked_test_bot", "Checked")
            assert me.token_sha256 == token_fingerprint(TOKEN) != token_fingerprint(TOKEN + "x")

            await client.inject_fault(
                TOKEN, "getMe", error_code=429, description="Too Many Requests", retry_after=1
            )
            started = asyncio.get_running_loop().time()
            assert (await check_bot_token(TOKEN, server.base_url, 5)).bot_id == me.bot_id
            assert asyncio.get_running_loop().time() - started >= 0.9

            await client.inject_fault(
                TOKEN, "getMe", error_code=429, description="Too Many Requests", retry_after=30
            )
            started = asyncio.get_running_loop().time()
            with pytest.raises(TelegramUnavailableError, match="retry getMe in 30") as info:
                await check_bot_token(TOKEN, server.base_url, 5)
            assert info.value.retry_after == 30
            assert asyncio.get_running_loop().time() - started < 5
            assert TOKEN.split(":")[1] not in str(info.value)

            await client.inject_fault(
                TOKEN, "getMe", error_code=500, description="Internal Server Error"
            )
            with pytest.raises(TelegramUnavailableError):
                await check_bot_token(TOKEN, server.base_url, 5)
            await client.revoke_bot(TOKEN)
            with pytest.raises(TokenRejectedError, match="@BotFather"):
                await check_bot_token(TOKEN, server.base_url, 5)
        with pytest.raises(TokenRejectedError, match="@BotFather"):
            await check_bot_token("nope", server.base_url, 5)
