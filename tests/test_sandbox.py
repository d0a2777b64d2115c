"""`make run` in sandbox mode: the whole platform comes up on this machine and answers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from telegram_emulator import EmulatorClient

ROOT = Path(__file__).resolve().parents[1]
SALES_TOKEN = "1000001:sandbox-sales-bot-token-000000000"


async def test_sandbox_starts_everything_and_the_sales_bot_answers(tmp_path, pg_dsn, redis_url):
    env = {
        **os.environ,
        "DATABASE_URL": pg_dsn,
        "REDIS_URL": redis_url,
        "SANDBOX_BACKEND": "process",
        "SANDBOX_PORT_BASE": "28000",
        "BOTFLEET_RUN_DIR": str(tmp_path),
        "SALES_BOT_TOKEN": "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.sandbox", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    output = b""
    try:
        while b"Ctrl-C stops everything" not in output:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, f"sandbox ended early:\n{output.decode()}"
            output += line
        async with (
            aiohttp.ClientSession() as session,
            session.get("http://127.0.0.1:28000/health") as resp,
        ):
            assert resp.status == 200
        async with EmulatorClient("http://127.0.0.1:28081") as client:
            await client.send_message(SALES_TOKEN, 777, "/start", first_name="Владелец")
            answer = await client.wait_for_message(SALES_TOKEN, 777, timeout=30)
            assert answer.plain_text and answer.buttons()
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (output + rest).decode()
    text = output.decode()
    assert "process backend" in text and "telegram_emulator.chat" in text
    for name in ("telegram", "yookassa", "master", "sales"):
        assert (tmp_path / f"{name}.log").exists()
