"""Client bot: server time of a booking confirmation, and idle memory of one bot process.

    python -m bench.bench_client [--confirmations 200]

Confirmation = a "Confirm" button press fed to the real dispatcher: FSM read from Redis (as the
tenant's ACL user), validation of the slot against PostgreSQL, the booking INSERT (as the tenant
role), and the replies. Measured twice: with replies going to the local Telegram emulator over
HTTP, and with a session that answers instantly (pure server time, no network at all).
Memory: RSS of `python -m client_bot` once it is polling, with its tenant loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, Chat, Message, Update, User

from bench.scratch import ScratchTenant, scratch_tenant, summary
from client_bot.app import ClientBot
from client_bot.callbacks import ConfirmAction, ConfirmCb
from client_bot.clock import ManualClock
from client_bot.states import BookingForm
from core.settings import ClientBotSettings
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.client.conftest import T0, seed_business

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "7000001:bench-client-bot-token-abcdefgh"
TENANT = "client_70000000001"


class InstantSession(BaseSession):
    """Answers every method at once without any I/O (the server-time measurement)."""

    def __init__(self) -> None:
        super().__init__()
        self.next_id = 1000

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        name = type(method).__name__
        if name in ("SendMessage", "EditMessageReplyMarkup", "EditMessageText"):
            self.next_id += 1
            chat = Chat(id=getattr(method, "chat_id", 1) or 1, type="private")
            return Message(message_id=self.next_id, date=datetime.now(UTC), chat=chat, text="ok")  # type: ignore[return-value]
        if name == "GetMe":
            return User(id=7000001, is_bot=True, first_name="Bench", username="bench_bot")  # type: ignore[return-value]
        return True  # type: ignore[return-value]

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        yield b""


def confirm_update(update_id: int, user_id: int, message_id: int) -> Update:
    user = User(id=user_id, is_bot=False, first_name="Bench")
    chat = Chat(id=user_id, type="private")
    message = Message(message_id=message_id, date=datetime.now(UTC), chat=chat, text="summary")
    query = CallbackQuery(
        id=str(update_id), from_user=user, chat_instance="bench", message=message,
        data=ConfirmCb(action=ConfirmAction.confirm).pack(),
    )  # fmt: skip
    return Update(update_id=update_id, callback_query=query)


async def free_starts(app: ClientBot, n: int) -> list[datetime]:
    from client_bot.booking import free_slots

    schedule = await app.ctx.schedule()
    services = await app.ctx.store.services()
    starts: list[datetime] = []
    day = app.ctx.now().date() + timedelta(days=1)
    length = timedelta(minutes=services[0].duration_min)
    last_day = app.ctx.now().date() + timedelta(days=(await app.ctx.business()).horizon_days)
    while (
        len(starts) < n and day < last_day
    ):  # non-overlapping starts, so every confirmation can succeed
        for start in free_slots(schedule, length, day, [], app.ctx.now()):
            if not starts or start >= starts[-1] + length:
                starts.append(start)
        day += timedelta(days=1)
    return starts[:n]


async def prepare(app: ClientBot, user_id: int, start: datetime) -> None:
    """The customer has chosen a slot and typed a phone: the FSM waits for Confirm."""
    service = (await app.ctx.store.services())[0]
    await app.ctx.store.touch_customer(user_id, "Bench", None, None)
    key = StorageKey(bot_id=app.bot.id, chat_id=user_id, user_id=user_id)
    await app.dp.storage.set_state(key, BookingForm.confirm)
    await app.dp.storage.set_data(
        key,
        {
            "service_id": service.id,
            "ts": int(start.timestamp()),
            "phone": "+79000000000",
            "name": "Bench",
        },
    )


async def measure_server_time(app: ClientBot, n: int, first_user: int) -> list[float]:
    """Feed `n` confirmations to the dispatcher; seconds per confirmation."""
    durations = []
    for i, start in enumerate(await free_starts(app, n)):
        user_id = first_user + i
        await prepare(app, user_id, start)
        update = confirm_update(i + 1, user_id, 10 + i)
        began = time.perf_counter()
        await app.dp.feed_update(app.bot, update)
        durations.append(time.perf_counter() - began)
    booked = await app.ctx.store.bookings_between(T0, T0 + timedelta(days=400))
    assert len([b for b in booked if b.customer_id >= first_user]) >= n, "bookings missing"
    return durations


async def measure_round_trip(
    app: ClientBot, client: EmulatorClient, n: int, first_user: int
) -> list[float]:
    """A user presses Confirm in the emulator; seconds until "booked" arrives (long polling)."""
    from client_bot import keyboards

    task = asyncio.create_task(app.run(handle_signals=False))
    await client.wait_for_calls(TOKEN, "getUpdates")
    durations = []
    try:
        for i, start in enumerate(await free_starts(app, n)):
            user_id = first_user + i
            await client.send_message(TOKEN, user_id, "hi")  # the chat exists
            await client.wait_for_message(TOKEN, user_id, contains="")
            await prepare(app, user_id, start)
            with app.i18n.context(), app.i18n.use_locale("ru"):
                summary = await app.bot.send_message(
                    user_id, "summary", reply_markup=keyboards.confirm()
                )
            began = time.perf_counter()
            await client.click(TOKEN, user_id, summary.message_id, text="✅ Подтвердить")
            await client.wait_for_message(TOKEN, user_id, contains="Вы записаны", timeout=10)
            durations.append(time.perf_counter() - began)
    finally:
        await app.stop()
        await task
    return durations


async def rss_of_bot_process(env: dict[str, str], client: EmulatorClient) -> tuple[float, float]:
    """Start `python -m client_bot`, wait until it polls, return (seconds to ready, RSS MiB)."""
    began = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client_bot", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await client.send_message(TOKEN, 424242, "/start")
        await client.wait_for_message(TOKEN, 424242, contains="", timeout=60)
        ready = time.perf_counter() - began
        await asyncio.sleep(2)  # idle
        status = await asyncio.to_thread(Path(f"/proc/{proc.pid}/status").read_text)
        rss_kb = int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        )
        return ready, rss_kb / 1024
    finally:
        proc.terminate()
        await proc.wait()


async def main(confirmations: int) -> None:
    async with scratch_tenant(TENANT, "client") as tenant:
        await measure(tenant, confirmations)


async def measure(tenant: ScratchTenant, confirmations: int) -> None:
    emulator = EmulatorServer()
    await emulator.start()
    client = EmulatorClient(emulator.base_url)
    await client.register_bot(TOKEN, "bench_client_bot")
    settings = ClientBotSettings(
        tenant_id=TENANT, bot_token=TOKEN, database_url=tenant.dsn, redis_url=tenant.redis_url,
        telegram_api_url=emulator.base_url, admin_ids=[], _env_file=None,
    )  # fmt: skip
    try:
        app = await ClientBot.create(settings, clock=ManualClock(T0))
        await seed_business(app.ctx.store)
        await app.ctx.store.update_business(horizon_days=365)
        app.ctx.refresh()
        await app.bot.me()
        emulated = await measure_round_trip(app, client, min(confirmations, 50), 100000)
        await app.close()

        app = await ClientBot.create(settings, clock=ManualClock(T0 + timedelta(days=200)))
        await app.bot.session.close()
        app.bot = Bot(TOKEN, session=InstantSession())
        instant = await measure_server_time(app, confirmations, 200000)
        await app.close()

        env = {
            "PATH": os.environ.get("PATH", ""), "TENANT_ID": TENANT, "BOT_TOKEN": TOKEN,
            "DATABASE_URL": tenant.dsn, "REDIS_URL": tenant.redis_url,
            "TELEGRAM_API_URL": emulator.base_url, "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        ready, rss = await rss_of_bot_process(env, client)
        print(summary("confirm → 'booked' in chat, via emulator", emulated))
        print(summary("booking confirmation, server time only", instant))
        print(f"{'client bot process: start → first answer':<46} {ready:6.2f} s")
        print(f"{'client bot process: idle RSS, tenant loaded':<46} {rss:6.1f} MiB")
    finally:
        await client.close()
        await emulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--confirmations", type=int, default=200)
    asyncio.run(main(parser.parse_args().confirmations))
