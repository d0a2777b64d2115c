"""The hub (`client_bot.hub`): many tenants in one process, each with only its own credentials,
added and removed while the others keep answering, isolated from each other's failures and data.

Real parts: the hub runs in this process against the Telegram emulator (real HTTP), PostgreSQL
(each tenant's own login role) and Redis (each tenant's own ACL user); it learns its tenants from
env files exactly as the master writes them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from client_bot.clock import ManualClock
from client_bot.hub import STATUS, TENANTS, Hub, TenantState, read_tenant_file
from client_bot.scheduler import Scheduler
from client_bot.store import Store
from core.logs import RedactingFilter
from core.settings import ClientBotSettings
from database.pool import create_pool
from database.redis_tenants import create_tenant_redis_user, key_prefix, remove_tenant_redis
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.client.conftest import ADMIN, T0, Customer, fetch, seed_business
from tests.client.test_errors import RU, rename


@dataclass
class Tenant:
    tenant_id: str
    schema: str
    role: str
    dsn: str
    redis_url: str
    token: str
    client: EmulatorClient

    def customer(self, user_id: int, name: str = "Анна") -> Customer:
        return Customer(self.client, self.token, user_id, name)


MakeTenant = Callable[[], Awaitable[Tenant]]


@pytest.fixture
async def hub_tenant(
    emulator: tuple[EmulatorServer, EmulatorClient], make_tenant: Any, redis_admin: Redis,
    redis_url: str,
) -> AsyncIterator[MakeTenant]:  # fmt: skip
    """A provisioned tenant (schema + login role, ACL user, a registered bot, seeded salon)."""
    _, client = emulator
    made: list[str] = []

    async def make() -> Tenant:
        db = await make_tenant()
        made.append(db.tenant_id)
        user = await create_tenant_redis_user(redis_admin, db.tenant_id, server_url=redis_url)
        token = f"{6000000 + len(made)}:test-hub-tenant-token-{db.tenant_id}"
        await client.register_bot(token, f"hub{db.tenant_id[-5:]}_bot", "Salon")
        pool = await create_pool(db.dsn, min_size=0, max_size=1)
        try:
            await seed_business(Store(pool))
        finally:
            await pool.close()
        return Tenant(db.tenant_id, db.schema, db.role, db.dsn, user.url, token, client)

    yield make
    for tenant_id in made:
        await remove_tenant_redis(redis_admin, tenant_id, drop_data=True)


@pytest.fixture
async def hub(tmp_path: Path, emulator: Any) -> AsyncIterator[Hub]:  # closed before it
    hub = Hub(tmp_path, capacity=10, clock=ManualClock(T0))
    (tmp_path / TENANTS).mkdir()
    yield hub
    await hub.close()


def assign(hub: Hub, tenant: Tenant, api_url: str) -> Path:
    """What the master does: the tenant's contract, and nothing else, in a 0600 file."""
    path = hub.folder / TENANTS / f"{tenant.tenant_id}.env"
    lines = {
        "TENANT_ID": tenant.tenant_id,
        "BOT_TOKEN": tenant.token,
        "DATABASE_URL": tenant.dsn,
        "REDIS_URL": tenant.redis_url,
        "TELEGRAM_API_URL": api_url,
        "ADMIN_IDS": str(ADMIN),
        "LOCALE": "ru",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(f"{k}={v}\n" for k, v in lines.items())
    return path


def status(hub: Hub) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((hub.folder / STATUS).read_text())["tenants"]
    except FileNotFoundError:  # before the hub's first scan
        return {}
    return data


async def until(hub: Hub, tenant_id: str, state: TenantState) -> None:
    for _ in range(200):
        if status(hub).get(tenant_id, {}).get("state") == state.value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{tenant_id} never {state}: {status(hub).get(tenant_id)}")


async def polling(tenant: Tenant) -> None:
    await tenant.client.wait_for_calls(tenant.token, "getUpdates", timeout=10)


async def silent(customer: Customer, text: str, seconds: float = 1.5) -> None:
    """The bot does not answer `text` (nothing of it polls any more)."""
    before = await customer.seen()
    await customer.send(text)
    await asyncio.sleep(seconds)
    assert await customer.seen() == before


async def test_tenants_come_and_go_while_the_others_keep_answering(hub, hub_tenant, emulator):
    server, _ = emulator
    a, b = await hub_tenant(), await hub_tenant()
    path_a = assign(hub, a, server.base_url)
    stop = asyncio.Event()
    runner = asyncio.create_task(hub.run(0.1, stop))  # the folder watched as in production
    try:
        await until(hub, a.tenant_id, TenantState.RUNNING)
        await polling(a)
        anna = a.customer(801)
        await anna.ask("/start", "Добро пожаловать")

        assign(hub, b, server.base_url)  # added to the running hub
        await until(hub, b.tenant_id, TenantState.RUNNING)
        await polling(b)
        boris = b.customer(802, "Борис")
        await boris.ask("/start", "Добро пожаловать")
        await anna.ask("/start", "Добро пожаловать")  # the first one never stopped
        # Both tenants' periodic work is on the hub's one scheduler, not loops of their own:
        # reminders, notices retry, waitlist, idle Redis connections, housekeeping each.
        per_tenant = 5
        assert len(hub.dispatcher.scheduler.jobs) == 2 * per_tenant
        assert not {t.get_name() for t in asyncio.all_tasks()} & {"reminders", "housekeeping"}
        assert (os.stat(path_a).st_mode & 0o777) == 0o600

        path_a.unlink()  # removed: its polling, workers, pool and Redis end
        for _ in range(200):
            if a.tenant_id not in status(hub):
                break
            await asyncio.sleep(0.05)
        assert a.tenant_id not in status(hub)
        assert a.tenant_id not in hub.tenants
        assert len(hub.dispatcher.scheduler.jobs) == per_tenant  # A's jobs went with it
        await silent(anna, "/start")
        await boris.ask("/start", "Добро пожаловать")
        # Anna's /start was not lost: the tenant's next runtime gets it (here: back in the hub).
        before = await anna.seen()
        assign(hub, a, server.base_url)
        await anna.wait("Добро пожаловать", after=before)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 20)
    assert status(hub) == {}  # a stopped hub runs nothing


async def test_a_failing_handler_answers_its_user_and_touches_no_neighbour(
    hub, hub_tenant, emulator, pg_dsn
):
    server, _ = emulator
    a, b = await hub_tenant(), await hub_tenant()
    assign(hub, a, server.base_url)
    assign(hub, b, server.base_url)
    await hub.scan()
    await until(hub, a.tenant_id, TenantState.RUNNING)
    await until(hub, b.tenant_id, TenantState.RUNNING)
    await polling(a)
    await polling(b)
    anna, boris = a.customer(811), b.customer(812, "Борис")
    await anna.ask("/start", "Добро пожаловать")
    await rename(pg_dsn, a.schema, "customers", "customers_gone")  # A's /start now raises
    try:
        told = await anna.ask("/start", RU)
        assert "попробуйте ещё раз" in told.plain_text
        await boris.ask("/start", "Добро пожаловать")
        assert hub.tenants[a.tenant_id].state is TenantState.RUNNING  # A itself runs on
        assert hub.tenants[b.tenant_id].state is TenantState.RUNNING
    finally:
        await rename(pg_dsn, a.schema, "customers_gone", "customers")
    await anna.ask("/start", "Добро пожаловать")


async def test_a_revoked_token_is_marked_and_the_neighbours_run_on(hub, hub_tenant, emulator):
    server, client = emulator
    a, b = await hub_tenant(), await hub_tenant()
    await client.revoke_bot(b.token)
    assign(hub, a, server.base_url)
    assign(hub, b, server.base_url)
    await hub.scan()
    await until(hub, b.tenant_id, TenantState.TOKEN_REFUSED)
    assert "refused" in status(hub)[b.tenant_id]["detail"]
    assert b.token not in (hub.folder / STATUS).read_text()  # reported, never printed
    await until(hub, a.tenant_id, TenantState.RUNNING)
    await polling(a)
    await a.customer(821).ask("/start", "Добро пожаловать")
    # Revoked while running: getUpdates refused, A marked and stopped (not retried for ever).
    await client.revoke_bot(a.token)
    await until(hub, a.tenant_id, TenantState.TOKEN_REFUSED)
    assert "while it ran" in status(hub)[a.tenant_id]["detail"]


async def test_a_bad_file_is_reported_without_its_values(hub, hub_tenant, emulator):
    server, _ = emulator
    a = await hub_tenant()
    path = assign(hub, a, server.base_url)
    path.write_text(path.read_text().replace(f"TENANT_ID={a.tenant_id}", "TENANT_ID=client_1"))
    await hub.scan()
    entry = status(hub)[a.tenant_id]
    assert entry["state"] == TenantState.FAILED.value
    assert "not its file name" in entry["detail"]
    assert a.token not in json.dumps(entry)
    assign(hub, a, server.base_url)  # the master writes it again, correct: the hub takes it
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
    await hub.scan()
    await until(hub, a.tenant_id, TenantState.RUNNING)


async def test_a_flooded_tenant_does_not_starve_its_neighbour(hub, hub_tenant, emulator):
    server, _ = emulator
    a, b = await hub_tenant(), await hub_tenant()
    assign(hub, a, server.base_url)
    assign(hub, b, server.base_url)
    await hub.scan()
    await until(hub, a.tenant_id, TenantState.RUNNING)
    await until(hub, b.tenant_id, TenantState.RUNNING)
    await polling(a)
    await polling(b)
    app = hub.tenants[a.tenant_id].app
    assert app is not None
    busy, most = 0, 0

    async def count(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        nonlocal busy, most
        if data["bot"] is not app.bot:  # the one dispatcher serves B too
            return await handler(event, data)
        busy += 1
        most = max(most, busy)
        try:
            await asyncio.sleep(0.1)  # a slow handler (waiting on PostgreSQL or Telegram)
            return await handler(event, data)
        finally:
            busy -= 1

    app.dp.update.outer_middleware(count)
    flood = [a.customer(9000 + i, "Флуд") for i in range(60)]  # >= 6 s of A's work
    await asyncio.gather(*(c.send("/start") for c in flood))
    # B answers while A is still working through its flood.
    await b.customer(831, "Борис").ask("/start", "Добро пожаловать")
    answered = sum([await c.seen() > 0 for c in flood])
    assert answered < len(flood), "A had already answered everyone: the flood was no flood"
    for customer in flood:  # and A gets through all of it
        await customer.wait("", timeout=60)
    assert most == 1  # one of A's updates at a time: a flood never takes over the process


async def test_a_tenant_in_a_hub_cannot_reach_its_neighbours_data(
    hub, hub_tenant, emulator, redis_admin
):
    server, _ = emulator
    a, b = await hub_tenant(), await hub_tenant()
    assign(hub, a, server.base_url)
    assign(hub, b, server.base_url)
    await hub.scan()
    await until(hub, a.tenant_id, TenantState.RUNNING)
    await until(hub, b.tenant_id, TenantState.RUNNING)
    await polling(b)
    await b.customer(841, "Борис").ask("/start", "Добро пожаловать")
    app = hub.tenants[a.tenant_id].app
    assert app is not None
    # A's own pool and Redis client, as its handlers hold them.
    async with app.pool.acquire() as conn:
        for query in (
            f'SELECT first_name FROM "{b.schema}".customers',
            f'INSERT INTO "{b.schema}".customers (telegram_id, first_name) VALUES (1, $$x$$)',
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(query)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'SET ROLE "{b.role}"')
    b_keys = await redis_admin.keys(f"{key_prefix(b.tenant_id)}*")
    assert b_keys, "B has FSM/throttling keys to attack"
    for command in (("GET", b_keys[0]), ("DEL", b_keys[0])):
        with pytest.raises(NoPermissionError):
            await app.redis.execute_command(*command)
    rows = await fetch(b.dsn, "SELECT first_name FROM customers")
    assert [r["first_name"] for r in rows] == ["Борис"]


def test_a_tenant_file_is_all_a_tenant_gets(tmp_path, monkeypatch):
    """Nothing of the hub's own environment leaks into a tenant's settings."""
    for name, value in {
        "LOCALE": "en",
        "ADMIN_IDS": "99",
        "DATABASE_URL": "postgresql://x@h/d",
    }.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "client_001.env"
    path.write_text(f"TENANT_ID=client_001\nBOT_TOKEN=1:{'a' * 30}\nADMIN_IDS=1,2\n")
    settings = read_tenant_file(path)
    assert (settings.locale, settings.admin_ids) == ("ru", [1, 2])
    assert "x@h" not in settings.database_url.get_secret_value()
    with pytest.raises(ValueError, match="BOT_TOKEN") as error:
        path.write_text("TENANT_ID=client_001\nBOT_TOKEN=1:short-secret-value\n")
        read_tenant_file(path)
    assert "short-secret-value" not in str(error.value)


async def test_one_scheduler_bounds_and_never_loses_the_tenants_periodic_work(caplog):
    """The hub's scheduler: at most `concurrency` steps at once (PostgreSQL connections of
    periodic work bounded per hub, not per tenant), a wake during a run runs the job again, a
    job without a delay waits for its wake, a failed step is retried, a cancelled job is gone."""
    scheduler = Scheduler(concurrency=2)
    busy, most, runs = 0, 0, {i: 0 for i in range(6)}

    def step_of(i: int) -> Any:
        async def step() -> float | None:
            nonlocal busy, most
            busy += 1
            most = max(most, busy)
            await asyncio.sleep(0.05)
            busy -= 1
            runs[i] += 1
            return None  # then only when woken

        return step

    jobs = [scheduler.add(f"job {i}", step_of(i)) for i in range(6)]
    for _ in range(100):
        if all(runs.values()):
            break
        await asyncio.sleep(0.02)
    assert runs == dict.fromkeys(range(6), 1) and most == 2

    scheduler.wake(jobs[0])
    await asyncio.sleep(0.01)  # running now
    scheduler.wake(jobs[0])  # woken while it runs: once more right after
    await asyncio.sleep(0.3)
    assert runs[0] == 3 and runs[1] == 1

    later = scheduler.add("later", step_of(1), delay=None)
    await asyncio.sleep(0.1)
    assert runs[1] == 1  # not before its wake
    scheduler.wake(later)
    await asyncio.sleep(0.1)
    assert runs[1] == 2

    failures = 0

    async def failing() -> float:
        nonlocal failures
        failures += 1
        raise RuntimeError("PostgreSQL is away")

    broken = scheduler.add("tenant x: reminder pass", failing, retry=0.05)
    await asyncio.sleep(0.3)
    assert failures >= 3  # retried, never the end of the job
    assert "tenant x: reminder pass failed" in caplog.text

    await scheduler.cancel(*jobs, later, broken)
    gone = failures
    await asyncio.sleep(0.15)
    assert failures == gone and not scheduler.jobs
    assert scheduler._task is not None and scheduler._task.done()  # no job, no loop


async def test_every_secret_of_a_tenant_is_redacted_from_the_hub_log(tmp_path: Path) -> None:
    """A hub logs for many tenants: each one's secrets, all of them (derived from the settings'
    types, so the OpenAI key and the metrics token too), never appear in its log."""
    redaction = RedactingFilter()
    hub = Hub(tmp_path, capacity=1, redaction=redaction)
    secrets = {
        "bot_token": "7000001:hub-redaction-token-abcdefghijk",
        "database_url": "postgresql://client_7:pg-secret-4711@127.0.0.1:5432/botfleet",
        "redis_url": "redis://client_7:redis-secret-4712@127.0.0.1:6379/0",
        "openai_api_key": "sk-tenant-openai-secret-4713",
        "metrics_token": "metrics-secret-4714",
    }
    settings = ClientBotSettings(tenant_id="client_7", _env_file=None, **secrets)  # type: ignore[arg-type]
    hub._hide_secrets(settings)
    record = logging.LogRecord(
        "client_bot", logging.ERROR, __file__, 1, "leak: %s", (" ".join(secrets.values()),), None
    )
    assert redaction.filter(record)
    logged = record.getMessage()
    for value in ("pg-secret-4711", "redis-secret-4712", *secrets.values()):
        if "://" not in value:
            assert value not in logged, value
