"""The master → client bot contract, end to end: a tenant row goes through the master's
`build_spec`, and the client bot is started from that environment alone (its own database role,
its own Redis user, the Telegram emulator, the OpenAI emulator), as the deploy backend would.

Assertions are on what people see: the Start plan's bot answers free text with the menu and
never calls the model, its owner finds no broadcasts; a tenant bought in English with a name and
a time zone greets in English, shows the name and offers times in its zone; what the owner later
changes in /admin survives restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from client_bot.app import ClientBot
from client_bot.clock import ManualClock
from core.secrets import SecretBox, generate_key
from core.settings import ClientBotSettings, load_settings
from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from master_bot.deps import MasterConfig
from master_bot.spec import build_spec
from master_bot.store import Step, TenantRecord, TenantStatus
from openai_emulator import OpenAIEmulator
from tests.client.conftest import ADMIN, T0, RunningBot, fetch

MODEL_KEY = "test-key"
MENU_RU = "Лучше всего я понимаю кнопки меню"


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    emulator = OpenAIEmulator(api_key=MODEL_KEY)
    await emulator.start()
    yield emulator
    await emulator.stop()


Start = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def provisioned(
    emulator: Any, make_tenant: Any, redis_admin: Any, redis_url: str, pg_dsn: str,
    model: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> AsyncIterator[Start]:  # fmt: skip
    """`start(plan=..., business_name=..., locale=..., timezone=...)`: provision-like, then the
    bot runs on exactly the env `build_spec` made (`restart(bot)` runs it again, same tenant)."""
    server, client = emulator
    box = SecretBox(generate_key())
    config = MasterConfig(
        tenant_database_url=pg_dsn,
        tenant_redis_url=redis_url,
        telegram_api_url=server.base_url,
        clients_dir=tmp_path / "clients",
        backups_dir=tmp_path / "backups",
        openai_api_key=MODEL_KEY,
        openai_base_url=model.base_url,
        openai_model="gpt-test",
        assistant_env={"OPENAI_TIMEOUT": "5", "OPENAI_RETRY_DELAY": "0.01"},
    )
    running: list[RunningBot] = []
    tenants: list[str] = []
    records: dict[str, TenantRecord] = {}
    envs: dict[str, Mapping[str, str]] = {}

    async def run(record: TenantRecord, *, services: bool) -> RunningBot:
        env = envs[record.tenant_id] = build_spec(config, box, record).env
        for name in ClientBotSettings.model_fields:  # the process sees this env and nothing else
            monkeypatch.delenv(name.upper(), raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(ClientBotSettings, _env_file=None)
        clock = ManualClock(T0)
        app = await ClientBot.create(settings, clock=clock)
        if services:  # the owner's first steps in /admin; the profile is left to the contract
            for weekday in range(6):
                await app.ctx.store.set_hours(weekday, [(time(10), time(19))])
            await app.ctx.store.add_service("Manicure", Decimal("1500"), 60)
        task = asyncio.create_task(app.run(handle_signals=False))
        bot = RunningBot(app, task, settings, env["BOT_TOKEN"], clock, app.ctx.store, client)
        running.append(bot)
        await client.wait_for_calls(bot.token, "getUpdates", timeout=10)
        return bot

    async def start(
        *, plan: str = "start", business_name: str = "Sunny Nails", locale: str = "ru",
        timezone: str = "Europe/Moscow",
    ) -> RunningBot:  # fmt: skip
        db = await make_tenant()
        tid = db.tenant_id
        tenants.append(tid)
        redis_user = await create_tenant_redis_user(redis_admin, tid, server_url=redis_url)
        token = f"{6000000 + len(tenants)}:test-contract-bot-token-{tid}"
        await client.register_bot(token, f"contract{tid[-4:]}_bot", "Shop")
        now = datetime(2026, 11, 30, tzinfo=UTC)
        record = TenantRecord(
            tenant_id=tid, number=len(tenants), status=TenantStatus.ACTIVE, plan=plan,
            business_name=business_name, owner_telegram_id=ADMIN, locale=locale,
            timezone=timezone, bot_id=int(token.split(":")[0]), bot_username=None,
            bot_token_enc=box.encrypt(tid, token), bot_token_sha256="0" * 64,
            db_password_enc=box.encrypt(tid, db.password),
            redis_password_enc=box.encrypt(tid, redis_user.password),
            provision_step=Step.DONE, expires_at=None, last_error=None, created_at=now,
            updated_at=now, suspended_at=None, deleted_at=None,
        )  # fmt: skip
        records[tid] = record
        return await run(record, services=True)

    async def restart(bot: RunningBot, **changes: Any) -> RunningBot:
        await bot.stop()
        record = records[bot.settings.tenant_id]
        if changes:
            record = records[record.tenant_id] = dataclasses.replace(record, **changes)
        return await run(record, services=False)

    start.restart = restart  # type: ignore[attr-defined]
    start.env = lambda bot: envs[bot.settings.tenant_id]  # type: ignore[attr-defined]
    yield start
    for bot in running:
        if not bot.task.done():
            await bot.stop()
    for tid in tenants:
        await remove_tenant_redis(redis_admin, tid, drop_data=True)


# --- plans mean what they say ------------------------------------------------------------------
async def test_start_plan_bot_answers_free_text_with_the_menu_not_the_ai(provisioned, model):
    bot = await provisioned(plan="start")
    assert "OPENAI_API_KEY" not in provisioned.env(bot)
    anna = bot.customer(301)
    await anna.ask("/start", "Sunny Nails")
    answer = await anna.ask("How much is a manicure?", MENU_RU)
    assert answer.buttons()[0] == ["💇 Услуги", "📅 Записаться"]
    await asyncio.sleep(0.2)
    assert model.chat_requests == [], "a Start-plan bot must never call the model"

    owner = await bot.admin()
    panel = await owner.ask("/admin", "Панель управления")
    screen = await owner.press(panel, "🤖 Ассистент", "ИИ-ассистент")
    assert "не входит в ваш тариф" in screen.plain_text


async def test_business_plan_bot_answers_with_the_ai_that_knows_its_name(provisioned, model):
    bot = await provisioned(plan="business", locale="en")
    assert provisioned.env(bot)["OPENAI_API_KEY"] == MODEL_KEY
    model.reply("A manicure is 1500 ₽, 60 minutes. Shall I book you?")
    anna = bot.customer(302)
    answer = await anna.ask("How much is a manicure?", "Shall I book you?")
    assert answer.plain_text == "A manicure is 1500 ₽, 60 minutes. Shall I book you?"
    system = model.chat_requests[0].system
    assert "assistant of «Sunny Nails»" in system and "Name: Sunny Nails" in system
    assert "in English" in system


async def test_start_plan_owner_has_no_broadcasts_even_with_an_old_button(provisioned):
    bot = await provisioned(plan="business", locale="en")
    owner = await bot.admin()
    panel = await owner.ask("/admin", "Admin panel")
    screen = await owner.press(panel, "👥 Customers", "Customers:")
    assert ["📣 Broadcast"] in screen.buttons()

    # The tenant moves to the Start plan: the master restarts its bot with the new features.
    bot = await provisioned.restart(bot, plan="start")
    owner = await bot.admin()
    refused = await owner.press(screen, "📣 Broadcast", "not included in your plan")
    assert "Customers:" in refused.plain_text
    assert not any("Broadcast" in b for row in refused.buttons() for b in row)
    assert await fetch(bot.tenant.dsn, "SELECT id FROM broadcasts") == []
    panel = await owner.ask("/admin", "Admin panel")
    screen = await owner.press(panel, "👥 Customers", "Customers:")
    assert not any("Broadcast" in b for row in screen.buttons() for b in row)


# --- what the owner told the sales bot reaches the tenant --------------------------------------
async def test_name_locale_and_timezone_from_the_purchase(provisioned):
    bot = await provisioned(
        plan="start", business_name="Sunny Nails", locale="en", timezone="Asia/Yekaterinburg"
    )
    anna = bot.customer(303)
    menu = await anna.ask("/start", "Hello! Here you can see our services and book a visit.")
    assert "Sunny Nails" in menu.plain_text
    assert menu.buttons() == [["💇 Services", "📅 Book"], ["🗂 My bookings", "📍 Contacts"]]

    # 06:00 UTC is 11:00 in Yekaterinburg (09:00 in Moscow): with 60 min lead time the first
    # free time today is 12:00 local.
    services = await anna.press(menu, "📅 Book", "Choose a service")
    button = next(b for row in services.buttons() for b in row if b.startswith("Manicure"))
    calendar = await anna.press(services, button, "Choose a day")
    slots = await anna.press(calendar, "1", "Choose a time")
    times = [b for row in slots.buttons() for b in row]
    assert times[:2] == ["12:00", "12:30"]

    owner = await bot.admin()
    panel = await owner.ask("/admin", "Admin panel")
    assert "Sunny Nails" in panel.plain_text
    settings = await owner.press(panel, "⚙️ Settings", "Settings")
    profile = await owner.press(settings, "🏷 Business profile", "Business profile")
    assert "Name: Sunny Nails" in profile.plain_text
    assert "Time zone: Asia/Yekaterinburg" in profile.plain_text
    assert "Language: English" in profile.plain_text
    row = (await fetch(bot.tenant.dsn, "SELECT name, locale, timezone FROM business"))[0]
    assert dict(row) == {"name": "Sunny Nails", "locale": "en", "timezone": "Asia/Yekaterinburg"}


async def test_what_the_owner_changed_in_admin_survives_a_restart(provisioned):
    bot = await provisioned(plan="start", business_name="Sunny Nails", locale="en")
    owner = await bot.admin()
    panel = await owner.ask("/admin", "Admin panel")
    settings = await owner.press(panel, "⚙️ Settings", "Settings")
    profile = await owner.press(settings, "🏷 Business profile", "Business profile")
    await owner.press(profile, "Name", "Send the name of the business.")
    profile = await owner.ask("Sunny Nails & Spa", "Name: Sunny Nails & Spa")
    languages = await owner.press(profile, "Language", "Which language")
    await owner.press(languages, "🇷🇺 Русский", "Название: Sunny Nails & Spa")

    # A restart, and even a changed contract (the operator renamed it), leave the owner's choice.
    bot = await provisioned.restart(bot, business_name="Sunny Nails", timezone="Asia/Omsk")
    anna = bot.customer(304)
    menu = await anna.ask("/start", "Здравствуйте! Здесь можно посмотреть наши услуги")
    assert "Sunny Nails & Spa" in menu.plain_text
    row = (await fetch(bot.tenant.dsn, "SELECT name, locale, timezone FROM business"))[0]
    # The time zone the owner never touched follows the contract.
    assert dict(row) == {"name": "Sunny Nails & Spa", "locale": "ru", "timezone": "Asia/Omsk"}
