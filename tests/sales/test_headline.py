"""The headline journey, end to end, with the real master (process backend) and a real client bot:
the sales dialog in the Telegram emulator → the payment in the YooKassa fake → the webhook →
the outbox → the master provisions the tenant → the new bot answers /start."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from core.settings import MasterSettings
from database.redis_tenants import remove_tenant_redis
from database.tenants import drop_tenant_database
from master_bot.api import build_api
from master_bot.app import open_master
from master_bot.deploy.process import ProcessBackend
from master_bot.services import Master
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.sales.conftest import OWNER, SALES_TOKEN, bot_token
from tests.sales.people import Person
from tests.sales.test_dialog import buy_until_payment

MASTER_TOKEN = "headline-master-token-" + "z" * 16


@pytest.fixture
async def real_master(
    pg_dsn: str, redis_url: str, tg: tuple[EmulatorServer, EmulatorClient], tmp_path: Path
) -> AsyncIterator[tuple[Master, str]]:
    server, _ = tg
    conn = await asyncpg.connect(pg_dsn)
    try:  # tenant roles are cluster-wide: numbers no other run uses
        await conn.execute(
            "SELECT setval('control.tenant_number_seq', $1)",
            80_000_000_000 + secrets.randbelow(9_000_000_000),
        )
    finally:
        await conn.close()
    settings = MasterSettings(
        database_url=pg_dsn,
        redis_url=redis_url,
        telegram_api_url=server.base_url,
        encryption_keys=Fernet.generate_key().decode(),
        master_api_token=MASTER_TOKEN,
        deploy_backend="process",
        clients_dir=str(tmp_path / "clients"),
        backups_dir=str(tmp_path / "backups"),
        openai_base_url="http://127.0.0.1:9/v1",
        _env_file=None,
    )
    backend = ProcessBackend(tmp_path / "clients", module="client_bot", stop_timeout=5)
    async with open_master(settings, backend=backend) as master:
        runner = web.AppRunner(build_api(master, MASTER_TOKEN), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield master, f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()
            for tenant_id in list(await backend.list()):
                await backend.remove(tenant_id)
            redis = Redis.from_url(redis_url)
            conn = await asyncpg.connect(pg_dsn)
            try:
                for row in await conn.fetch("SELECT tenant_id FROM control.tenants"):
                    await drop_tenant_database(conn, row["tenant_id"], drop_data=True)
                    await remove_tenant_redis(redis, row["tenant_id"], drop_data=True)
                await conn.execute(
                    "TRUNCATE control.subscription_reminders, control.idempotency_keys,"
                    " control.audit_log, control.tenants CASCADE"
                )
            finally:
                await conn.close()
                await redis.aclose()


async def test_headline_journey(make_shop, real_master: tuple[Master, str]) -> None:
    master, master_url = real_master
    shop = await make_shop(
        master_url=master_url, master_token=MASTER_TOKEN, polling=True, workers=True
    )
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    token = bot_token()

    payment_id, url = await buy_until_payment(shop, owner, token)
    assert url.startswith(shop.kassa.base_url)
    shop.kassa.succeed(payment_id)  # the owner paid on the YooKassa page
    assert await shop.notify("payment.succeeded", payment_id) == 200

    live = await owner.wait("запущен", timeout=60)
    assert "@romashka_salon_bot" in live.plain_text and "/admin" in live.plain_text

    tenants, total = await master.deps.store.page(status=None, plan=None, limit=10, offset=0)
    assert total == 1
    [tenant] = tenants
    assert tenant.status.value == "active" and tenant.plan == "business"
    assert tenant.owner_telegram_id == OWNER and tenant.bot_username == "romashka_salon_bot"
    [order] = await shop.fetch("SELECT tenant_id, bot_token_enc FROM control.sales_orders")
    assert order["tenant_id"] == tenant.tenant_id and order["bot_token_enc"] is None

    # The new client bot answers its first customer.
    customer = Person(shop.tg, token, 9_001)
    welcome = await customer.ask("/start", "", timeout=60)
    assert welcome.plain_text
