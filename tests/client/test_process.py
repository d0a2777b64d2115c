"""`python -m client_bot` as the master runs it: environment only, logs without secrets,
and a restart in the middle of a booking dialog continues where the customer was; and the
master's ProcessBackend running the real bot with nothing of the master's environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from client_bot.store import Store
from core.secrets import mask_token
from database.pool import create_pool
from master_bot.deploy.base import ClientSpec, RuntimeState
from master_bot.deploy.process import ProcessBackend
from tests.client.conftest import Customer, TenantCreds, fetch, seed_business
from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "6000001:test-process-bot-token-abcdefghij"


class BotProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.output = b""

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "client_bot", cwd=ROOT, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async def stop(self, sig: int = signal.SIGTERM) -> bytes:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        out, _ = await asyncio.wait_for(self.proc.communicate(), 30)
        self.output += out
        return out


@pytest.fixture
async def tenant(make_tenant, redis_admin, redis_url):
    from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis

    db = await make_tenant()
    user = await create_tenant_redis_user(redis_admin, db.tenant_id, server_url=redis_url)
    pool = await create_pool(db.dsn)
    await seed_business(Store(pool))
    await pool.close()
    yield TenantCreds(db.tenant_id, db.dsn, user.url)
    await remove_tenant_redis(redis_admin, db.tenant_id, drop_data=True)


def contract_env(tenant: TenantCreds, api_url: str, **extra: str) -> dict[str, str]:
    """Exactly the docs/architecture.md environment of a client bot (plus PATH)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TENANT_ID": tenant.tenant_id,
        "BOT_TOKEN": TOKEN,
        "DATABASE_URL": tenant.dsn,
        "REDIS_URL": tenant.redis_url,
        "REDIS_KEY_PREFIX": f"{tenant.tenant_id}:",
        "TELEGRAM_API_URL": api_url,
        "OPENAI_API_KEY": "",
        "ADMIN_IDS": "7001",
        "LOCALE": "ru",
        "TIMEZONE": "Europe/Moscow",
        **extra,
    }


async def test_restart_mid_dialog_and_no_secret_in_any_log(emulator, tenant):
    server, client = emulator
    await client.register_bot(TOKEN, "process_test_bot")
    env = contract_env(tenant, server.base_url, LOG_LEVEL="DEBUG")
    first = BotProcess(env)
    await first.start()
    anna = Customer(client, TOKEN, 301, "Анна")
    before = await anna.seen()
    await anna.send("/start")
    menu = await anna.wait(
        "Добро пожаловать", after=before, timeout=40
    )  # first start imports aiogram
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    calendar = await anna.press(services, "Стрижка · 1\u00a0500 ₽", "Выберите день")
    days = [b for row in calendar.buttons()[2:-1] for b in row if b.isdigit()]
    slots = await anna.press(calendar, days[1], "Выберите время")
    await anna.press(slots, next(b for row in slots.buttons() for b in row), "Поделитесь номером")
    # The bot dies in the middle of the dialog (SIGKILL: no graceful shutdown at all).
    await first.stop(signal.SIGKILL)

    # The restarted bot also serves /metrics on an internal port, behind a token.
    port, scrape_token = free_port(), "client-scrape-token-42"
    second = BotProcess(
        {**env, "METRICS_LISTEN": f"127.0.0.1:{port}", "METRICS_TOKEN": scrape_token}
    )
    await second.start()
    before = await anna.seen()
    await anna.send("+7 (916) 000-11-22")
    summary = await anna.wait("Проверьте запись", after=before, timeout=40)
    assert "+79160001122" in summary.plain_text
    await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    rows = await fetch(tenant.dsn, "SELECT phone FROM bookings")
    assert [r["phone"] for r in rows] == ["+79160001122"]
    url = f"http://127.0.0.1:{port}/metrics"
    handled: dict[str | None, float] = {}
    statuses: list[int] = []
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as anonymous:
            assert anonymous.status == 401

        async def counted() -> bool:
            """Both update kinds timed (the answer can reach the customer a moment before the
            handler's time is recorded)."""
            nonlocal handled
            auth = {"Authorization": f"Bearer {scrape_token}"}
            async with http.get(url, headers=auth) as resp:
                statuses.append(resp.status)
                if resp.status != 200:
                    return False
                handled = {
                    s.labels.get("update"): s.value
                    for family in text_string_to_metric_families(await resp.text())
                    for s in family.samples
                    if s.name == "botfleet_bot_update_seconds_count"
                }
            return handled.get("message", 0) >= 1 and handled.get("callback_query", 0) >= 1

        with contextlib.suppress(AssertionError):  # said with what was counted, below
            await wait_until(counted, timeout=10)
    assert statuses and set(statuses) == {200}, statuses
    assert handled.get("message", 0) >= 1 and handled.get("callback_query", 0) >= 1, handled

    # An error path too: the token gets revoked while the bot runs. Its next getUpdates is
    # refused: the bot stops by itself with exit 2 and says why (as a start with a refused
    # token does), instead of polling a dead token for ever.
    await client.revoke_bot(TOKEN)
    assert second.proc is not None
    await asyncio.wait_for(second.proc.wait(), 30)
    output = (first.output + await second.stop()).decode()
    assert second.proc.returncode == 2, output[-2000:]
    assert f"Telegram refused BOT_TOKEN of {tenant.tenant_id} while it ran" in output, output[
        -2000:
    ]
    assert "is up" in output and "Update id=" in output  # the logs did record the run
    assert TOKEN not in output and scrape_token not in output
    assert TOKEN.split(":")[1] not in output
    assert tenant.dsn.split(":")[2].split("@")[0] not in output  # the tenant's DB password
    assert mask_token(TOKEN) != TOKEN


async def test_bad_environment_stops_with_a_readable_message(tenant):
    env = contract_env(tenant, "http://127.0.0.1:9", TENANT_ID="client_x", BOT_TOKEN="nope")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client_bot", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    text = err.decode()
    assert (
        "TENANT_ID: invalid tenant id" in text and "BOT_TOKEN: is not a Telegram bot token" in text
    )
    assert "Traceback" not in text and "nope" not in text


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (the SigCgt mask of /proc/<pid>/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


async def test_a_bot_stopped_while_it_starts_ends_at_once_with_exit_code_0():
    """In a container the bot is PID 1, for which the kernel ignores a signal without a
    handler: the bot handles SIGTERM from its first moment, or `docker stop` of a starting bot
    (PostgreSQL not answering yet, here) waits out the whole stop timeout."""
    nowhere = TenantCreds(
        "client_0000000001",
        "postgresql://client_0000000001:pw@127.0.0.1:9/botfleet",
        "redis://client_0000000001:pw@127.0.0.1:9/0",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client_bot", cwd=ROOT, env=contract_env(nowhere, "http://127.0.0.1:9"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(200):
            if _catches_sigterm(proc.pid) or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert _catches_sigterm(proc.pid), "no SIGTERM handler within 10 s of the start"
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()
    assert b"Traceback" not in out


async def test_the_process_backend_runs_the_real_bot_without_the_masters_environment(
    emulator, tenant, tmp_path, monkeypatch
):
    server, client = emulator
    token = "6000002:test-process-backend-token-abcdefgh"
    await client.register_bot(token, "process_backend_bot")
    # The master's own secrets, in the master's environment.
    monkeypatch.setenv("ENCRYPTION_KEYS", "master-only-encryption-keys")
    monkeypatch.setenv("MASTER_API_TOKEN", "master-only-api-token-0123456789")
    env = contract_env(tenant, server.base_url, BOT_TOKEN=token)
    env.pop("PATH")  # the backend adds its own
    backend = ProcessBackend(tmp_path / "clients", stop_timeout=5)
    try:
        status = await backend.deploy(ClientSpec(tenant.tenant_id, env))
        assert status.state is RuntimeState.RUNNING, status
        anna = Customer(client, token, 302, "Анна")
        before = await anna.seen()
        await anna.send("/start")
        try:
            await anna.wait("Добро пожаловать", after=before, timeout=40)
        except Exception as exc:
            raise AssertionError(await backend.logs(tenant.tenant_id, 40)) from exc

        pid = int(status.detail.split()[1])
        environ = await asyncio.to_thread(Path(f"/proc/{pid}/environ").read_bytes)
        names = {item.split(b"=", 1)[0].decode() for item in environ.split(b"\0") if item}
        assert names - set(env) <= {"PATH", "PYTHONPATH", "PYTHONUNBUFFERED", "LC_CTYPE"}
        assert "ENCRYPTION_KEYS" not in names and "MASTER_API_TOKEN" not in names
        owner = (await asyncio.to_thread(os.stat, f"/proc/{pid}")).st_uid
        assert (owner != os.geteuid()) is backend.separate_users  # a uid of its own if possible
    finally:
        await backend.remove(tenant.tenant_id)
