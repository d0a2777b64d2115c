"""`python -m sales_bot` as an operator starts it: a token Telegram refuses stops it at once with
a message naming the setting, without a traceback and without the token."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from telegram_emulator import EmulatorClient, EmulatorServer
from tests.support import free_port
from yookassa_emulator import YooKassaFake

ROOT = Path(__file__).resolve().parents[2]
REVOKED = "4242424243:revoked-sales-token-" + "r" * 20


async def test_a_refused_sales_bot_token_stops_the_process_with_a_readable_message(
    pg_dsn: str,
    redis_url: str,
    tg: tuple[EmulatorServer, EmulatorClient],
    kassa: YooKassaFake,
    clean_sales: None,
) -> None:
    server, client = tg
    await client.register_bot(REVOKED, "old_sales_bot")
    await client.revoke_bot(REVOKED)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": pg_dsn,
        "REDIS_URL": redis_url,
        "TELEGRAM_API_URL": server.base_url,
        "SALES_BOT_TOKEN": REVOKED,
        "MASTER_API_URL": "http://127.0.0.1:9",
        "MASTER_API_TOKEN": "made-up-master-token",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "YOOKASSA_SHOP_ID": kassa.shop_id,
        "YOOKASSA_SECRET_KEY": kassa.secret_key,
        "YOOKASSA_API_URL": kassa.api_url,
        "WEBHOOK_PORT": str(free_port()),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sales_bot", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    text = (out + err).decode()
    assert proc.returncode == 2, text
    assert "Telegram refused SALES_BOT_TOKEN (revoked or invalid)" in text
    assert "@BotFather" in text
    assert "Traceback" not in text
    assert REVOKED.split(":")[1] not in text
