"""AI assistant: its own overhead per turn, with a local fake model server answering instantly.

    python -m bench.bench_assistant [--turns 200]

A turn = a customer's text message fed to the real dispatcher of a real client bot (tenant role
in PostgreSQL, tenant ACL user in Redis; Telegram answered by an in-process session without I/O):
throttling, storing the message, reading 20 messages of history, the handoff flag, limits and the
customer's bookings, building the prompt, the model call(s) through the real `openai` SDK to the
local OpenAI emulator, tool execution, storing the answer and the usage, the reply.

"Overhead" is the turn minus the time spent inside the model calls (SDK + HTTP + the fake
server); it is what the assistant itself costs. Two kinds of turn: a plain answer (one model
call) and a booking (find_free_slots → create_booking → answer: three calls, two tools, a
booking INSERT with reminders and an admin notification).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.types import Chat, Message, Update, User

from bench.bench_client import InstantSession
from bench.scratch import ScratchTenant, scratch_tenant, summary
from client_bot.app import ClientBot
from client_bot.assistant.model import ChatModel, Completion
from client_bot.booking import free_slots
from client_bot.clock import ManualClock
from client_bot.context import TenantContext
from core.settings import ClientBotSettings
from openai_emulator import OpenAIEmulator
from tests.client.conftest import T0, seed_business

TOKEN = "7000002:bench-assistant-bot-token-abcdefgh"
TENANT = "client_70000000002"
HISTORY = 19  # stored before the turn; the new message makes the 20 the model gets


class TimedModel:
    """Measures the time spent waiting for the model (everything inside `complete`)."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.waited = 0.0

    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
    ) -> Completion:
        began = time.perf_counter()
        try:
            return await self.inner.complete(messages, tools)
        finally:
            self.waited += time.perf_counter() - began

    async def transcribe(self, audio: bytes, filename: str) -> str:
        return await self.inner.transcribe(audio, filename)

    async def close(self) -> None:
        await self.inner.close()


def text_update(update_id: int, user_id: int, text: str) -> Update:
    user = User(id=user_id, is_bot=False, first_name="Bench", language_code="ru")
    chat = Chat(id=user_id, type="private")
    message = Message(
        message_id=update_id, date=datetime.now(UTC), chat=chat, from_user=user, text=text
    )
    return Update(update_id=update_id, message=message)


async def free_starts(ctx: TenantContext, n: int) -> list[datetime]:
    """`n` back-to-back free starts of the first service, from tomorrow on."""
    schedule = await ctx.schedule()
    length = timedelta(minutes=(await ctx.store.services())[0].duration_min)
    day = ctx.now().date() + timedelta(days=1)
    starts: list[datetime] = []
    while len(starts) < n:
        for start in free_slots(schedule, length, day, [], ctx.now()):
            if not starts or start >= starts[-1] + length:
                starts.append(start)
        day += timedelta(days=1)
    return starts[:n]


def script_booking(emulator: OpenAIEmulator, service_id: int, local: datetime) -> None:
    """The model's side of a booking turn: find_free_slots, create_booking, then the answer."""
    emulator.call_tools(
        ("find_free_slots", {"service": service_id, "date": local.date().isoformat()})
    )
    emulator.call_tools(
        ("create_booking", {"service": service_id, "slot": local.strftime("%Y-%m-%dT%H:%M"),
                            "name": "Bench", "phone": "+79000000000"})
    )  # fmt: skip
    emulator.reply("Готово, вы записаны!")


async def run_turns(
    app: ClientBot, emulator: OpenAIEmulator, model: TimedModel, n: int, first_user: int,
    *, booking: bool,
) -> tuple[list[float], list[float]]:  # fmt: skip
    """(turn seconds, overhead seconds) per turn."""
    service = (await app.ctx.store.services())[0]
    starts = await free_starts(app.ctx, n) if booking else []
    zone = (await app.ctx.business()).zone
    for i in range(n):  # history to load, not measured
        for j in range(HISTORY):
            await app.ctx.store.assistant.add_message(
                first_user + i, "user" if j % 2 == 0 else "assistant", f"сообщение {j} " * 8
            )
    turns, overheads = [], []
    for i in range(n):
        user_id = first_user + i
        if booking:
            script_booking(emulator, service.id, starts[i].astimezone(zone))
        update = text_update(i + 1, user_id, "Хочу записаться на стрижку, Bench, +79000000000")
        model.waited = 0.0
        began = time.perf_counter()
        await app.dp.feed_update(app.bot, update)
        elapsed = time.perf_counter() - began
        turns.append(elapsed)
        overheads.append(elapsed - model.waited)
    assert emulator.pending() == 0, "scripted answers left: a turn did not run"
    if booking:
        booked = await app.ctx.store.bookings_between(T0, T0 + timedelta(days=400))
        assert len([b for b in booked if b.customer_id >= first_user]) == n, "bookings missing"
    return turns, overheads


async def main(turns: int) -> None:
    async with scratch_tenant(TENANT, "assistant") as tenant:
        await measure(tenant, turns)


async def measure(tenant: ScratchTenant, turns: int) -> None:
    emulator = OpenAIEmulator(api_key="bench-key", default_reply="Стрижка стоит 1500 ₽.")
    await emulator.start()
    settings = ClientBotSettings(
        tenant_id=TENANT, bot_token=TOKEN, database_url=tenant.dsn, redis_url=tenant.redis_url,
        telegram_api_url="http://127.0.0.1:9", admin_ids=[7001], _env_file=None,
        openai_api_key="bench-key", openai_base_url=emulator.base_url,
        assistant_daily_tokens=0, assistant_rate_limit=1000,
    )  # fmt: skip
    try:
        app = await ClientBot.create(settings, clock=ManualClock(T0))
        await app.bot.session.close()
        app.bot = Bot(TOKEN, session=InstantSession())
        assert app.assistant is not None
        app.assistant.notifier.bot = app.bot  # type: ignore[attr-defined]
        await seed_business(app.ctx.store)
        await app.ctx.store.update_business(horizon_days=365)
        app.ctx.refresh()
        model = TimedModel(app.assistant.model)
        app.assistant.model = model
        await run_turns(app, emulator, model, 10, 900000, booking=False)  # warm-up
        plain = await run_turns(app, emulator, model, turns, 300000, booking=False)
        booked = await run_turns(app, emulator, model, turns, 400000, booking=True)
        await app.close()
        print(summary("answer turn: whole turn, instant fake model", plain[0], 52))
        print(summary("answer turn: assistant overhead (minus model calls)", plain[1], 52))
        print(summary("booking turn (3 calls, 2 tools): whole turn", booked[0], 52))
        print(summary("booking turn: assistant overhead (minus model calls)", booked[1], 52))
    finally:
        await emulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=200)
    asyncio.run(main(parser.parse_args().turns))
