"""`make run` in sandbox mode, played as the README and the sandbox's own instructions say: in
separate processes, from a terminal (`python -m telegram_emulator.chat`), with nothing but
what a newcomer types — buy a bot from the sales bot, pay the link its "Оплатить" button
prints, talk to the new bot as its owner, ask the operators' bot, then `make stats`.

The browser version of the same journey is tests/test_emulator_ui.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
BASE = 28000
TELEGRAM = f"http://127.0.0.1:{BASE + 81}"
WEB = f"http://127.0.0.1:{BASE + 70}"
SALES_TOKEN = "1000001:sandbox-sales-bot-token-000000000"
MASTER_TOKEN = "1000002:sandbox-master-bot-token-00000000"
OWNER = 1001  # the sandbox's operator, here also the owner who buys
NEW_BOT_TOKEN = "1234567:my-sandbox-bot-token-abcdefghij"  # the README's made-up example
NEW_BOT_USERNAME = "bot1234567_bot"  # what the emulator calls a bot it creates on first use
PATIENCE = 90.0  # a loaded 2-core machine; bots import aiogram for seconds


class Terminal:
    """`python -m telegram_emulator.chat` as a person uses it: types lines, reads the screen."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.screen = ""
        self.read = 0  # what the person has already looked at

    @classmethod
    async def open(cls, env: dict[str, str], *args: str) -> Terminal:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "telegram_emulator.chat", "--url", TELEGRAM, *args,
            cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(proc)

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.read = len(self.screen)
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def see(self, text: str) -> str:
        """Wait until `text` shows after the last line typed; the screen from there."""
        assert self.proc.stdout is not None
        deadline = asyncio.get_running_loop().time() + PATIENCE
        while text not in self.screen[self.read :]:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                chunk = await asyncio.wait_for(self.proc.stdout.read(4096), max(remaining, 0.01))
            except TimeoutError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"never saw {text!r}; the terminal shows:\n{self.screen}")
            self.screen += chunk.decode(errors="replace")
        return self.screen[self.read :]

    async def ask(self, line: str, expect: str) -> str:
        await self.type(line)
        return await self.see(expect)

    def button(self, label: str) -> str:
        """`:N` for the newest button whose label contains `label`."""
        numbers = re.findall(r"\[(\d+)\] ([^\[\n]*)", self.screen)
        for number, text in reversed(numbers):
            if label in text:
                return f":{number}"
        raise AssertionError(f"no button {label!r} on screen:\n{self.screen}")

    async def press(self, label: str, expect: str) -> str:
        return await self.ask(self.button(label), expect)

    async def close(self) -> None:
        if self.proc.returncode is None:
            await self.type(":quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def make(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "make", "--no-print-directory", "-o", ".venv/.installed", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def master_api(run_dir: Path, method: str, path: str) -> Any:
    """The master's REST API, as an operator would call it (MASTER_API_TOKEN in sandbox.env)."""
    token = dotenv_values(run_dir / "sandbox.env")["MASTER_API_TOKEN"]
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            f"http://127.0.0.1:{BASE}/api/v1{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=60),
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def remove_our_tenants(run_dir: Path) -> None:
    """The sandbox's client bots outlive it (a later `make run` adopts them): delete ours."""
    listing = await master_api(run_dir, "GET", "/tenants?limit=200")
    for tenant in listing["items"]:
        if tenant["bot_username"] == NEW_BOT_USERNAME:
            await master_api(run_dir, "DELETE", f"/tenants/{tenant['tenant_id']}?backup=false")


@pytest.mark.timeout(360)  # four bots start on a shared 2-core machine (~60 s when idle)
async def test_a_newcomer_plays_the_sandbox_journey_from_a_terminal(tmp_path, pg_dsn, redis_url):
    env = {
        **os.environ,
        "DATABASE_URL": pg_dsn,
        "REDIS_URL": redis_url,
        "SANDBOX_BACKEND": "process",
        "SANDBOX_PORT_BASE": str(BASE),
        "BOTFLEET_RUN_DIR": str(tmp_path),
        "SALES_BOT_TOKEN": "",
        # Cluster-wide names (roles, ACL users) of our own: other tests share the servers.
        "FLEET_NAME": f"sbx{secrets.token_hex(3)}",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.sandbox", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    output = b""
    terminals: list[Terminal] = []
    provisioned = False
    try:
        while b"REST API" not in output:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, f"sandbox ended early:\n{output.decode()}"
            output += line
        instructions = output.decode()
        assert f"{TELEGRAM}/" in instructions and "telegram_emulator.chat" in instructions
        assert NEW_BOT_TOKEN in instructions and "make stats" in instructions
        assert f"{WEB}/dashboard" in instructions

        # The browser view the instructions point to is there.
        async with aiohttp.ClientSession() as session, session.get(f"{TELEGRAM}/") as resp:
            assert resp.status == 200 and "app.js" in await resp.text()

        # 1. Buy a bot from the sales bot, in the terminal.
        sales = await Terminal.open(env, "--token", SALES_TOKEN)
        terminals.append(sales)
        await sales.ask("/start", "Botfleet")
        await sales.press("Купить бота", "Выберите тариф")
        await sales.press("Старт", "Как называется")
        await sales.ask("Салон «Песочница»", "Чем занимается")
        await sales.press("Салон красоты", "часовом поясе")
        await sales.press("Москва", "@BotFather")
        await sales.ask(NEW_BOT_TOKEN, "Нашёл вашего бота")
        await sales.press("Да, это мой бот", "email")
        await sales.ask("owner@example.com", "автопродление")
        await sales.press("без автопродления", "💳 Оплатить")
        # 2. The "Оплатить" link button prints its link (it used to crash the chat)...
        printed = await sales.press("💳 Оплатить", "🔗")
        [link] = re.findall(r"🔗 [^:]+: (\S+)", printed)
        assert link.startswith(f"http://127.0.0.1:{BASE + 90}/checkout/")
        # ... which is paid as the instructions say: curl -X POST <link>.
        curl = await asyncio.create_subprocess_exec(
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", link,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        status, _ = await curl.communicate()
        assert status.decode() == "302", status
        provisioned = True
        await sales.see("запущен")
        listing = await master_api(tmp_path, "GET", "/tenants?limit=200")
        [tenant_id] = [
            t["tenant_id"] for t in listing["items"] if t["bot_username"] == NEW_BOT_USERNAME
        ]

        # 3. Talk to the new bot: a customer's /start, the owner's /admin.
        new_bot = await Terminal.open(env, "--token", NEW_BOT_TOKEN)
        terminals.append(new_bot)
        try:
            await new_bot.ask("/start", "Здравствуйте")
            await new_bot.ask("/admin", "Панель управления")
            # 5. The owner's web: /admin gives the owner a one-time login link...
            await new_bot.press("Открыть веб-панель", "Веб-панель")
            printed = await new_bot.press("Открыть веб-панель", "🔗")
            [panel] = re.findall(r"🔗 [^:]+: (\S+)", printed)
        except AssertionError as exc:
            log = await make(env, "logs", f"TENANT={tenant_id}", "LINES=40")
            raise AssertionError(f"{exc}\nthe bot's log (make logs):\n{log}") from None

        assert panel.startswith(f"{WEB}/login/link?bot={tenant_id}&token=")
        token = panel.split("&token=", 1)[1]
        async with aiohttp.ClientSession() as session:
            # ... which the web's login page spends: the owner sees the bot's bookings.
            async with session.post(
                f"{WEB}/api/auth/bot-link", json={"tenant_id": tenant_id, "token": token}
            ) as resp:
                assert resp.status == 200, await resp.text()
                access = (await resp.json())["access_token"]
            async with session.get(
                f"{WEB}/api/tenants/{tenant_id}/bookings",
                headers={"Authorization": f"Bearer {access}"},
            ) as resp:
                assert resp.status == 200, await resp.text()
            async with session.get(f"{WEB}/dashboard") as resp:
                assert resp.status == 200

        # 4. The operators' bot knows the tenant.
        operators = await Terminal.open(env, "--token", MASTER_TOKEN, "--user", str(OWNER))
        terminals.append(operators)
        clients = await operators.ask("/clients", "Клиенты")
        clients += await operators.see(f"{tenant_id} · ")

        # 5. make stats sees the sandbox's bot running (it reads the sandbox's master.env).
        stats_env = {**env, "COLUMNS": "200"}
        stats = await make(stats_env, "stats", "ARGS=--json")
        assert f'"{tenant_id}"' in stats
        assert re.search(rf'"tenant_id": "{tenant_id}"[^}}]*"runtime": "running"', stats), stats
        logs = await make(env, "logs", f"TENANT={tenant_id}", "LINES=20")
        assert logs.strip()
    finally:
        for terminal in terminals:
            await terminal.close()
        if provisioned:
            await remove_our_tenants(tmp_path)
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (output + rest).decode()
    assert "process backend" in output.decode()
    for name in ("telegram", "yookassa", "master", "sales", "web"):
        assert (tmp_path / f"{name}.log").exists()
