"""core.metrics: what a bot process's /metrics shows after real updates from the emulator."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import Message
from prometheus_client.parser import text_string_to_metric_families

from core.metrics import BotMetrics, serve_metrics
from core.telegram import build_bot
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.support import free_port

TOKEN = "4000077:test-bot-metrics-token-abcdefgh"
USER = 5151


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_count_updates_errors_and_429s_behind_a_token() -> None:
    router = Router()

    @router.message(F.text == "/hi")
    async def hi(message: Message) -> None:
        await message.answer("hello")

    @router.message(F.text == "/boom")
    async def boom(message: Message) -> None:
        raise ValueError("a handler bug")

    metrics = BotMetrics()
    dp = Dispatcher()
    dp.include_router(router)
    metrics.setup(dp)
    port = free_port()
    async with EmulatorServer() as server, EmulatorClient(server.base_url) as client:
        await client.register_bot(TOKEN, "metrics_test_bot")
        bot: Bot = build_bot(TOKEN, server.base_url, timeout=5)
        metrics.watch(bot.session)
        runner = await serve_metrics(metrics, f"127.0.0.1:{port}", "scrape-secret-123")
        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, close_bot_session=False)
        )
        try:
            await client.send_message(TOKEN, USER, "/hi")
            await client.wait_for_message(TOKEN, USER, contains="hello")
            await client.send_message(TOKEN, USER, "/boom")
            # The next answer is refused once with a 429 (aiogram raises TelegramRetryAfter).
            await client.inject_fault(
                TOKEN,
                "sendMessage",
                error_code=429,
                description="Too Many Requests",
                retry_after=1,
            )
            await client.send_message(TOKEN, USER, "/hi")
            await client.send_message(TOKEN, USER, "/hi")
            await client.wait_for_message(TOKEN, USER, contains="hello", count=2)

            url = f"http://127.0.0.1:{port}/metrics"
            async with aiohttp.ClientSession() as http:
                async with http.get(url) as anonymous:
                    assert anonymous.status == 401
                    assert "METRICS_TOKEN" in await anonymous.text()
                bad = {"Authorization": "Bearer scrape-secret-12"}
                async with http.get(url, headers=bad) as wrong:
                    assert wrong.status == 401
                good = {"Authorization": "Bearer scrape-secret-123"}
                for _ in range(50):  # the last update's timing lands after its answer
                    async with http.get(url, headers=good) as scraped:
                        assert scraped.status == 200
                        samples = _samples(await scraped.text())
                    if (
                        samples.get(("botfleet_bot_update_seconds_count", (("update", "message"),)))
                        == 4
                    ):
                        break
                    await asyncio.sleep(0.05)
        finally:
            with contextlib.suppress(RuntimeError):
                await dp.stop_polling()
            await polling
            await runner.cleanup()
            await bot.session.close()

    assert samples[("botfleet_bot_update_seconds_count", (("update", "message"),))] == 4
    errors = {k[1]: v for k, v in samples.items() if k[0] == "botfleet_bot_errors_total"}
    # The 429'd answer raised in its handler too: a telegram error, the bug a handler error.
    assert errors == {
        (("exception", "ValueError"), ("kind", "handler")): 1.0,
        (("exception", "TelegramRetryAfter"), ("kind", "telegram")): 1.0,
    }
    refused = {k[1]: v for k, v in samples.items() if k[0] == "botfleet_telegram_refused_total"}
    assert refused == {(("method", "sendMessage"), ("reason", "retry_after")): 1.0}
