"""Tenants across PostgreSQL servers (issue 16): a second PostgreSQL server started here (one per
module), registered through the master's REST API; new tenants go to the least loaded server;
an operator moves a tenant between servers in the middle of a booking dialog and nothing is
lost; bad names, a server that is down and a copy that does not verify leave the tenant where
it was, running.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import asyncpg
import pytest
from cryptography.fernet import Fernet

from client_bot.app import ClientBot
from core.secrets import SecretBox, SecretDecryptionError
from core.settings import ClientBotSettings
from database.dsn import parse_dsn
from database.migrator import Migration, load_migrations
from database.pg_tools import pg_tool
from database.servers import TableSum, schema_checksums
from master_bot.dbmove import settle_moves
from master_bot.dbservers import admin_pool
from master_bot.deploy.base import ClientSpec, RuntimeStatus
from master_bot.deploy.memory import MemoryBackend
from master_bot.guard import guard_fleet
from master_bot.spec import build_spec
from scripts import migrate
from scripts.backup import cli as backup_cli
from scripts.rotate_keys import rotate_secrets
from scripts.stats import collect_stats
from tests.client.conftest import Customer
from tests.master.conftest import Harness
from tests.master.test_operator import OPERATOR, open_desk
from tests.master.test_placement import seed
from tests.master.test_upgrades import fast, until
from tests.pg_local import LocalPg, local_pg
from tests.web.conftest import (
    Tenant,
    WebServer,
    model,  # noqa: F401 - a pytest fixture (of web_start)
)
from tests.web.conftest import (
    start_web as web_start,  # noqa: F401 - the web's fixture, under a name of this module
)
from tests.web.test_owner_data import add_booking, tomorrow_noon
from tests.web.test_tenant_data import add_lead, owner_client

SERVER = "pg2"


class InProcessBots(MemoryBackend):
    """The real client bot, run in this process from exactly the environment a process or
    container backend would give it (the spec's env: its DATABASE_URL, REDIS_URL...). A
    restart then costs no interpreter start (importing aiogram takes seconds here)."""

    def __init__(self) -> None:
        super().__init__()
        self.bots: dict[str, tuple[ClientBot, asyncio.Task[None]]] = {}

    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        await self._halt(spec.tenant_id)
        with mock.patch.dict(os.environ, spec.env, clear=True):
            settings = ClientBotSettings(_env_file=None)
        app = await ClientBot.create(settings)
        self.bots[spec.tenant_id] = (app, asyncio.create_task(app.run(handle_signals=False)))
        return await super().deploy(spec)

    async def restart(self, tenant_id: str) -> RuntimeStatus:
        return await self.deploy(self.specs[tenant_id])

    async def stop(self, tenant_id: str) -> RuntimeStatus:
        await self._halt(tenant_id)
        return await super().stop(tenant_id)

    async def remove(self, tenant_id: str) -> None:
        await self._halt(tenant_id)
        await super().remove(tenant_id)

    async def close(self) -> None:
        for tenant_id in list(self.bots):
            await self._halt(tenant_id)

    async def _halt(self, tenant_id: str) -> None:
        running = self.bots.pop(tenant_id, None)
        if running is not None:
            app, task = running
            await app.stop()
            await asyncio.wait_for(task, 10)
            await app.close()


@pytest.fixture(scope="module")
def pg2(pg_dsn: str) -> Iterator[LocalPg]:
    with local_pg() as server:
        yield server

    async def unregister() -> None:  # the worker's control database serves later modules too
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("DELETE FROM control.db_servers WHERE name <> 'default'")
        finally:
            await conn.close()

    asyncio.run(unregister())


@pytest.fixture
async def registered(pg2: LocalPg) -> AsyncIterator[Callable[[Harness], Awaitable[None]]]:
    async def register(harness: Harness) -> None:
        # Each harness has keys of its own: the server is registered again under them.
        await harness.fetch("DELETE FROM control.db_servers WHERE name <> 'default'")
        reply = await harness.api.call(
            "POST", "/api/v1/db-servers", json={"name": SERVER, "dsn": pg2.dsn}
        )
        assert reply.status == 201, reply.body

    yield register


async def on_server(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


async def tenant_objects(dsn: str, tid: str) -> list[str]:
    """The tenant's schema and roles on the server of `dsn`."""
    rows = await on_server(
        dsn,
        "SELECT nspname AS name FROM pg_namespace WHERE nspname = $1"
        " UNION ALL SELECT rolname FROM pg_roles WHERE rolname IN ($1, $1 || '_owner')",
        tid,
    )
    return sorted(r["name"] for r in rows)


async def checksums(dsn: str, tid: str) -> dict[str, TableSum]:
    conn = await asyncpg.connect(dsn)
    try:
        return await schema_checksums(conn, tid)
    finally:
        await conn.close()


async def provision(harness: Harness) -> tuple[str, str, dict[str, Any]]:
    token = await harness.new_bot()
    reply = await harness.api.provision(token)
    assert reply.status == 201, reply.body
    return reply.body["tenant_id"], token, reply.body


async def test_a_move_in_the_middle_of_a_booking_loses_nothing(
    make_harness: Callable[..., Awaitable[Harness]],
    registered: Callable[[Harness], Awaitable[None]],
    pg2: LocalPg,
    tmp_path: Path,
) -> None:
    harness = await make_harness(backend=InProcessBots())
    await registered(harness)
    tid, token, body = await provision(harness)
    assert body["db_server"] == "default"  # both servers hold no tenant: the platform's first
    await seed(harness.pg_dsn, tid)
    restarted = await harness.api.call("POST", f"/api/v1/tenants/{tid}/restart")
    assert restarted.status == 200, restarted.body  # it reads the salon seeded as it started
    await harness.tg.wait_for_calls(token, "getUpdates", timeout=10)
    anna = Customer(harness.tg, token, 626262, "Анна")

    async def book_up_to_the_phone() -> None:
        menu = await anna.ask("/start", "Добро пожаловать")
        services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
        button = next(b for row in services.buttons() for b in row if b.startswith("Стрижка"))
        calendar = await anna.press(services, button, "Выберите день")
        day = [b for row in calendar.buttons() for b in row if b.isdigit()][-1]
        slots = await anna.press(calendar, day, "Выберите время")
        slot = [b for row in slots.buttons() for b in row if ":" in b][-1]
        await anna.press(slots, slot, "Поделитесь номером телефона")

    async def finish_booking() -> None:
        seen = await anna.seen()
        await anna.send("+7 900 123-45-67")
        summary = await anna.wait("Проверьте запись", after=seen, timeout=30)
        seen = await anna.seen()
        await anna.click(summary, "✅ Подтвердить")
        await anna.wait("Вы записаны", after=seen, timeout=30)

    await book_up_to_the_phone()
    await finish_booking()  # one booking made
    await book_up_to_the_phone()  # a second one in flight: its FSM state is in Redis
    before = await checksums(harness.pg_dsn, tid)
    assert before["bookings"].rows == 1

    reply = await harness.api.call(
        "POST", f"/api/v1/tenants/{tid}/db-server", json={"db_server": SERVER}
    )
    assert reply.status == 200, reply.body
    assert reply.body["db_server"] == SERVER and reply.body["moved_from"] == "default"
    assert reply.body["moved"] and reply.body["old_copy_dropped"]
    assert reply.body["runtime"]["state"] == "running"
    # Verified by checksums, equal to what the platform's server held before the move (the
    # bot, started again, has written since: its notices).
    verified = {name: TableSum(**sums) for name, sums in reply.body["checksums"].items()}
    assert verified == before and reply.body["rows"] > 10
    after = await checksums(pg2.dsn, tid)
    assert after["bookings"] == before["bookings"] and after["services"] == before["services"]
    # The old copy is gone from the platform's server, schema and both roles.
    assert await tenant_objects(harness.pg_dsn, tid) == []
    assert await tenant_objects(pg2.dsn, tid) == sorted([tid, tid, f"{tid}_owner"])

    # The bot continues the dialog on the new server, with its own role there.
    await finish_booking()
    menu = await anna.ask("/start", "Добро пожаловать")
    listing = await anna.press(menu, "🗂 Мои записи", "Ваши записи")
    assert listing.plain_text.count("Стрижка") == 2, listing.plain_text
    rows = await on_server(pg2.dsn, f'SELECT status FROM "{tid}".bookings')
    assert [r["status"] for r in rows] == ["confirmed", "confirmed"]
    tenant = await harness.master.deps.store.get(tid)
    assert tenant is not None
    url = parse_dsn(
        build_spec(harness.master.deps.config, harness.master.deps.box, tenant).env["DATABASE_URL"]
    )
    assert (url.port, url.user) == (pg2.port, tid)
    audit = await harness.fetch(
        "SELECT action, details FROM control.audit_log WHERE tenant_id = $1"
        " AND action LIKE 'db_server.%' ORDER BY id",
        tid,
    )
    assert [r["action"] for r in audit] == [
        "db_server.move_started",
        "db_server.switched",
        "db_server.moved",
    ]
    assert json.loads(audit[-1]["details"]) == {"from": "default", "to": SERVER}


async def test_new_tenants_go_to_the_least_loaded_server_and_everything_reaches_them_there(
    make_harness: Callable[..., Awaitable[Harness]],
    registered: Callable[[Harness], Awaitable[None]],
    pg2: LocalPg,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Placement, the bot's contract, and what acts on a tenant where it is: `make migrate`,
    `make stats`, `make db-backup`, the session guard, suspension, deletion."""
    harness = await make_harness(backend=MemoryBackend())
    await registered(harness)
    first, _, body = await provision(harness)
    assert body["db_server"] == "default"
    second, _, body = await provision(harness)
    assert body["db_server"] == SERVER  # default holds one tenant, pg2 none
    listed = await harness.api.call("GET", "/api/v1/db-servers")
    assert {s["name"]: s["tenants"] for s in listed.body["items"]} == {"default": 1, SERVER: 1}
    assert pg2.password not in json.dumps(listed.body)  # the address, never the password
    # The second bot's contract names the second server, with the tenant's own login, which
    # reaches its own schema there and nothing of the platform's.
    tenant = await harness.master.deps.store.get(second)
    assert tenant is not None
    env = build_spec(harness.master.deps.config, harness.master.deps.box, tenant).env
    assert parse_dsn(env["DATABASE_URL"]).port == pg2.port
    conn = await asyncpg.connect(env["DATABASE_URL"])
    try:
        assert await conn.fetchval("SELECT current_schema()") == second
        assert await conn.fetchval("SELECT count(*) FROM business") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM control.fleet")
    finally:
        await conn.close()
    assert await tenant_objects(harness.pg_dsn, second) == []
    assert await tenant_objects(pg2.dsn, first) == []
    # `make migrate` secures and migrates each tenant on its own server.
    keys = b",".join(harness.master.deps.box._keys).decode()  # the harness's generated key
    shell = {"DATABASE_URL": harness.pg_dsn, "ENCRYPTION_KEYS": keys}
    with mock.patch.dict(os.environ, shell):
        assert await migrate.run(argparse.Namespace(dry_run=False, concurrency=2, tenant=[])) == 0
    assert "tenants: 2 checked, 0 failed" in capsys.readouterr().out

    # `make stats` counts each tenant on its server (n/a, with the reason, without its pool).
    await on_server(pg2.dsn, f'INSERT INTO "{second}".customers (telegram_id) VALUES (1), (2)')
    deps = harness.master.deps
    blind = await collect_stats(deps.pool, None)
    assert {t.tenant_id: t.customers for t in blind.tenants} == {first: 0, second: None}
    assert f"1 tenant(s) on PostgreSQL server {SERVER}: counts n/a" in " ".join(blind.notes)
    stats = await collect_stats(
        deps.pool, None, server_pools={SERVER: await admin_pool(deps, SERVER)}
    )
    assert {t.tenant_id: t.customers for t in stats.tenants} == {first: 0, second: 2}

    # `make db-backup` dumps the second server's database too, and a tenant from its server.
    folder = tmp_path / "backups"
    with mock.patch.dict(os.environ, shell):
        whole = await asyncio.to_thread(
            backup_cli.main, ["dump", "--dir", str(folder), "--mode", "whole", "--no-redis"]
        )
        one = await asyncio.to_thread(
            backup_cli.main, ["dump", "--dir", str(folder), "--tenant", second]
        )
    assert (whole, one) == (0, 0)
    (there,) = (folder / f"server-{SERVER}").glob("*.dump")
    (alone,) = folder.glob(f"{second}-*.dump")
    for dump in (there, alone):
        listing = await asyncio.to_thread(
            subprocess.run,
            [pg_tool("pg_restore"), "--list", str(dump)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert f"TABLE DATA {second} customers" in listing.stdout, dump

    # The session guard hardens the second server too: a database made there later is open to
    # PUBLIC (PostgreSQL's default) until its pass, then closed to the tenant.
    later = f"later_{secrets.token_hex(3)}"
    await on_server(pg2.dsn, f'CREATE DATABASE "{later}"')
    elsewhere = parse_dsn(env["DATABASE_URL"]).with_database(later)
    await (await asyncpg.connect(elsewhere)).close()  # open before the pass: the attack works
    await guard_fleet(deps)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(elsewhere)
    # Suspending and deleting act on the server that holds the tenant.
    assert (await harness.api.call("POST", f"/api/v1/tenants/{second}/suspend")).status == 200
    rows = await on_server(pg2.dsn, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", second)
    assert [r["rolcanlogin"] for r in rows] == [False]
    deleted = await harness.api.call(
        "DELETE", f"/api/v1/tenants/{second}", params={"backup": "false"}
    )
    assert deleted.status == 200, deleted.body
    assert await tenant_objects(pg2.dsn, second) == []


async def test_unknown_forged_and_duplicate_servers_get_a_clear_4xx(
    make_harness: Callable[..., Awaitable[Harness]],
    registered: Callable[[Harness], Awaitable[None]],
    pg2: LocalPg,
) -> None:
    harness = await make_harness(backend=MemoryBackend())
    await registered(harness)
    tid, _, _ = await provision(harness)
    path = f"/api/v1/tenants/{tid}/db-server"
    unknown = await harness.api.call("POST", path, json={"db_server": "pg9"})
    assert unknown.status == 404 and unknown.error_code == "db_server_not_found"
    assert "pg9" in unknown.body["error"]["message"]
    for forged in ("../pg2", "pg2'; DROP SCHEMA control CASCADE; --", "PG2", "", 2, None):
        reply = await harness.api.call("POST", path, json={"db_server": forged})
        assert reply.status == 422, (forged, reply.status, reply.body)
    missing = await harness.api.call(
        "POST", "/api/v1/tenants/client_999999999/db-server", json={"db_server": SERVER}
    )
    assert missing.status == 404
    # Registering: a bad DSN, the platform's own database, the same cluster twice, a name taken.
    bad = await harness.api.call(
        "POST", "/api/v1/db-servers", json={"name": "x", "dsn": "mysql://a"}
    )
    assert bad.status == 422 and bad.error_code == "invalid_dsn"
    own = await harness.api.call(
        "POST", "/api/v1/db-servers", json={"name": "own", "dsn": harness.pg_dsn}
    )
    assert own.status == 409, own.body
    again = parse_dsn(pg2.dsn).with_database("postgres")
    twice = await harness.api.call(
        "POST", "/api/v1/db-servers", json={"name": "pg2b", "dsn": again}
    )
    assert twice.status == 409 and twice.error_code == "db_server_same_cluster", twice.body
    taken = await harness.api.call(
        "POST", "/api/v1/db-servers", json={"name": SERVER, "dsn": again}
    )
    assert taken.status == 409 and taken.error_code == "db_server_exists"
    names = [s["name"] for s in (await harness.api.call("GET", "/api/v1/db-servers")).body["items"]]
    assert names == ["default", SERVER]
    rows = await harness.fetch("SELECT db_server FROM control.tenants WHERE tenant_id = $1", tid)
    assert rows[0]["db_server"] == "default"
    # A server closed to new tenants is passed over by placement, though the least loaded.
    closed = await harness.api.call(
        "PATCH", f"/api/v1/db-servers/{SERVER}", json={"accepting": False}
    )
    assert closed.status == 200 and closed.body["accepting"] is False, closed.body
    _, _, newcomer = await provision(harness)
    assert newcomer["db_server"] == "default"
    for wrong in ({"accepting": "maybe"}, {}, {"accepting": True, "dsn": "x"}):
        reply = await harness.api.call("PATCH", f"/api/v1/db-servers/{SERVER}", json=wrong)
        assert reply.status == 422, (wrong, reply.body)
    unknown_server = await harness.api.call(
        "PATCH", "/api/v1/db-servers/pg9", json={"accepting": True}
    )
    assert unknown_server.status == 404 and unknown_server.error_code == "db_server_not_found"


async def test_a_server_that_is_down_or_a_copy_that_differs_leaves_the_tenant_where_it_was(
    make_harness: Callable[..., Awaitable[Harness]],
    registered: Callable[[Harness], Awaitable[None]],
    pg2: LocalPg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = MemoryBackend()
    harness = await make_harness(backend=backend)
    await registered(harness)
    tid, _, _ = await provision(harness)
    path = f"/api/v1/tenants/{tid}/db-server"

    def calls_of(tenant_id: str) -> list[tuple[str, str]]:
        return [call for call in backend.calls if call[1] == tenant_id]

    assert calls_of(tid) == [("deploy", tid)]
    rows_before = await checksums(harness.pg_dsn, tid)

    async def untouched() -> None:
        tenant = await harness.master.deps.store.get(tid)
        assert tenant is not None and tenant.db_server == "default"
        assert await harness.fetch("SELECT 1 FROM control.tenant_moves") == []
        assert await checksums(harness.pg_dsn, tid) == rows_before
        rows = await harness.fetch("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", tid)
        assert [r["rolcanlogin"] for r in rows] == [True]
        runtime = await harness.master.fleet.runtime(tid)
        assert runtime is not None and runtime.state.value == "running"

    pg2.stop()
    try:
        down = await harness.api.call("POST", path, json={"db_server": SERVER})
        # The least loaded server (none of its own) is down: a new tenant goes to the next one.
        newcomer, _, placed = await provision(harness)
    finally:
        pg2.start()
    assert placed["db_server"] == "default" and placed["status"] == "active", placed
    (row,) = await harness.fetch(
        "SELECT details FROM control.audit_log WHERE tenant_id = $1 AND action = 'db_server.placed'",
        newcomer,
    )
    assert json.loads(row["details"]) == {"to": "default", "down": [SERVER]}
    assert down.status == 503 and down.error_code == "db_server_unavailable", down.body
    message = down.body["error"]["message"]
    assert SERVER in message and f"127.0.0.1:{pg2.port}" in message and "Start it" in message
    assert pg2.password not in message
    await untouched()
    assert calls_of(tid) == [("deploy", tid)]  # never stopped

    # A copy that does not verify is dropped from the target; the tenant runs on the source.
    real = schema_checksums
    calls = 0

    async def tampered(conn: asyncpg.Connection, schema: str) -> dict[str, TableSum]:
        nonlocal calls
        calls += 1
        sums = await real(conn, schema)
        if calls == 2:  # the target's
            sums["bookings"] = TableSum(sums["bookings"].rows + 1, secrets.token_hex(16))
        return sums

    monkeypatch.setattr("master_bot.dbmove.schema_checksums", tampered)
    differs = await harness.api.call("POST", path, json={"db_server": SERVER})
    assert differs.status == 409 and differs.error_code == "db_move_unverified", differs.body
    assert "bookings" in differs.body["error"]["message"]
    assert calls_of(tid)[1:] == [("stop", tid), ("deploy", tid)]  # stopped, started again
    await untouched()
    assert await tenant_objects(pg2.dsn, tid) == []
    monkeypatch.undo()

    # A move cut short (the master died while copying: a partial copy on the target, the
    # source's login disabled) is rolled back by the next attempt, which then moves the tenant.
    await harness.fetch(
        "INSERT INTO control.tenant_moves (tenant_id, source, target, phase)"
        " VALUES ($1, 'default', $2, 'copying')",
        tid,
        SERVER,
    )
    await on_server(pg2.dsn, f'CREATE SCHEMA "{tid}"')
    await on_server(pg2.dsn, f'CREATE TABLE "{tid}".half (x int)')
    await harness.fetch(f'ALTER ROLE "{tid}" NOLOGIN')
    moved = await harness.api.call("POST", path, json={"db_server": SERVER})
    assert moved.status == 200 and moved.body["db_server"] == SERVER, moved.body
    assert await checksums(pg2.dsn, tid) == rows_before
    assert await tenant_objects(harness.pg_dsn, tid) == []
    actions = await harness.fetch(
        "SELECT action FROM control.audit_log WHERE tenant_id = $1 AND action LIKE 'db_server.%'"
        " ORDER BY id",
        tid,
    )
    assert [r["action"] for r in actions][-4:] == [
        "db_server.move_rolled_back",
        "db_server.move_started",
        "db_server.switched",
        "db_server.moved",
    ]

    # Cut short after the switch (the old copy still on the platform's server): the next move
    # drops that copy first, then moves the tenant back, from the second server this time.
    await harness.fetch(
        "INSERT INTO control.tenant_moves (tenant_id, source, target, phase)"
        " VALUES ($1, 'default', $2, 'switched')",
        tid,
        SERVER,
    )
    await harness.fetch(f'CREATE SCHEMA "{tid}"')
    await harness.fetch(f'CREATE TABLE "{tid}".stale (x int)')
    back = await harness.api.call("POST", path, json={"db_server": "default"})
    assert back.status == 200 and back.body["db_server"] == "default", back.body
    assert await checksums(harness.pg_dsn, tid) == rows_before  # no `stale` table among them
    assert await tenant_objects(pg2.dsn, tid) == []
    await untouched()

    # A master that starts settles what a previous one left half done, with no request.
    await harness.fetch(
        "INSERT INTO control.tenant_moves (tenant_id, source, target, phase)"
        " VALUES ($1, 'default', $2, 'copying')",
        tid,
        SERVER,
    )
    await on_server(pg2.dsn, f'CREATE SCHEMA "{tid}"')
    await harness.fetch(f'ALTER ROLE "{tid}" NOLOGIN')
    assert await settle_moves(harness.master.deps) == 1
    await untouched()
    assert await tenant_objects(pg2.dsn, tid) == []


async def test_operators_list_servers_and_move_a_tenant_from_their_bot(
    make_harness: Callable[..., Awaitable[Harness]],
    registered: Callable[[Harness], Awaitable[None]],
    pg2: LocalPg,
) -> None:
    harness = await make_harness(backend=MemoryBackend())
    await registered(harness)
    async with open_desk(harness) as desk:
        tid = await desk.provision()
        before = await desk.op.ask(f"/client {tid}", "Сервер PostgreSQL: default")
        assert "Сервер PostgreSQL: default" in before.plain_text
        listing = await desk.op.ask("/servers", "Серверы PostgreSQL")
        assert "default — 1" in listing.plain_text and f"{SERVER} — 0" in listing.plain_text
        await desk.op.ask(f"/dbmove {tid} nowhere", "Такого сервера PostgreSQL нет")
        await desk.op.ask(f"/dbmove {tid} ../x", "Так: /dbmove client_001 pg2")
        card = await desk.op.ask(f"/dbmove {int(tid[7:])} {SERVER}", "данные перенесены")
        assert (
            f"на {SERVER}" in card.plain_text and "сверено по контрольным суммам" in card.plain_text
        )
        assert f"Сервер PostgreSQL: {SERVER}" in card.plain_text
        assert await tenant_objects(harness.pg_dsn, tid) == []
        assert await tenant_objects(pg2.dsn, tid) == sorted([tid, tid, f"{tid}_owner"])
        entries = await harness.master.deps.store.audit_entries(tid)
        assert {e["actor"] for e in entries if e["action"] == "db_server.moved"} == {
            f"operator:{OPERATOR}"
        }


async def test_key_rotation_re_encrypts_the_servers_dsns(pg: asyncpg.Connection) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    name = f"rot{secrets.token_hex(3)}"
    # pg2 as an earlier test of this module registered it, under that harness's own key.
    await pg.execute("DELETE FROM control.db_servers WHERE name = $1", SERVER)
    dsn = "postgresql://admin:s3cret@10.9.8.7:5432/tenants"
    await pg.execute(
        "INSERT INTO control.db_servers (name, admin_dsn_enc) VALUES ($1, $2)",
        name,
        SecretBox(old).encrypt_server(name, dsn),
    )
    try:
        report = await rotate_secrets(pg, f"{new},{old}")
        assert report.ok and report.rotated >= 1, report
        sealed = await pg.fetchval(
            "SELECT admin_dsn_enc FROM control.db_servers WHERE name = $1", name
        )
        assert SecretBox(new).decrypt_server(name, sealed) == dsn  # the new key alone opens it
        with pytest.raises(SecretDecryptionError):  # bound to its server's name
            SecretBox(new).decrypt_server("pg2", sealed)
    finally:
        await pg.execute("DELETE FROM control.db_servers WHERE name = $1", name)


async def test_a_fleet_upgrade_migrates_each_tenant_on_the_server_that_holds_it(
    make_harness: Callable[..., Awaitable[Harness]],
    registered: Callable[[Harness], Awaitable[None]],
    pg2: LocalPg,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`make upgrade` applies a pending tenant migration on the second server too (as that
    server's admin), one progress line per server; a server down halts it, no bot touched."""
    harness = await make_harness()  # process backend: the stand-in bot, no Docker
    fast(harness)
    await registered(harness)
    first, _, _ = await provision(harness)
    second, _, body = await provision(harness)
    assert body["db_server"] == SERVER
    real = load_migrations("tenant")
    sql = "CREATE TABLE upgrade_probe (x int)"
    probe = Migration(
        real[-1].version + 1, "upgrade_probe", sql, hashlib.sha256(sql.encode()).hexdigest()
    )
    monkeypatch.setattr("master_bot.upgrades.load_migrations", lambda kind: [*real, probe])

    pg2.stop()
    try:
        reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": sys.executable})
        assert reply.status == 202, reply.body
        halted = await until(harness, "halted")
    finally:
        pg2.start()
    assert "migrations failed" in halted["halted"] and halted["done"] == 0, halted
    (there,) = [m for m in halted["migrations"] if m["server"] == SERVER]
    assert second in there["failed"] and "cannot be reached" in there["failed"][second]
    assert pg2.password not in json.dumps(halted)
    back = await harness.api.call("POST", "/api/v1/upgrades/current/rollback")
    assert back.status == 200, back.body
    await until(harness, "rolled_back")

    reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": sys.executable})
    assert reply.status == 202, reply.body
    # Paused before the first batch: the migrations are what this test is about (rolling the
    # bots is tests/master/test_upgrades.py's).
    assert (await harness.api.call("POST", "/api/v1/upgrades/current/pause")).status == 200
    progress: dict[str, Any] = {}

    async def migrated() -> bool:
        progress.update(harness.master.upgrades.snapshot().as_dict())
        lines = progress["migrations"]
        return len(lines) == 2 and all(m["done"] == m["total"] >= 1 for m in lines)

    await harness.wait_for(migrated)
    by_server = {m["server"]: m for m in progress["migrations"]}
    assert by_server[SERVER]["failed"] == {} and by_server[SERVER]["applied"] >= 1, progress
    assert by_server[SERVER]["done"] == by_server[SERVER]["total"] >= 1
    rows = await on_server(
        pg2.dsn, "SELECT to_regclass($1) IS NOT NULL AS made", f"{second}.upgrade_probe"
    )
    assert rows[0]["made"]  # the migration ran on the second server, in the tenant's schema
    (made,) = await harness.fetch(
        "SELECT to_regclass($1) IS NOT NULL AS made", f"{first}.upgrade_probe"
    )
    assert made["made"]  # and on the platform's, for the tenant there
    await harness.master.upgrades.close()


async def test_the_owners_web_reads_a_tenant_on_the_server_that_holds_it_and_after_a_move(
    make_harness: Callable[..., Awaitable[Harness]],
    registered: Callable[[Harness], Awaitable[None]],
    pg2: LocalPg,
    web_start: Callable[..., Awaitable[WebServer]],  # noqa: F811 - the fixture imported above
) -> None:
    """The web's tenant runtime logs in as the tenant's own role on the tenant's server, and
    follows it when an operator moves it back (its cache key holds the server)."""
    harness = await make_harness(backend=MemoryBackend())
    await registered(harness)
    owner = 870_000_000 + secrets.randbelow(9_000_000)
    tids = []
    for _ in range(2):  # the second goes to the least loaded: pg2
        reply = await harness.api.provision(await harness.new_bot(), owner_telegram_id=owner)
        assert reply.status == 201, reply.body
        tids.append(reply.body["tenant_id"])
    assert reply.body["db_server"] == SERVER
    tid = tids[1]
    deps = harness.master.deps
    tenant = await deps.store.get(tid)
    assert tenant is not None
    login = build_spec(deps.config, deps.box, tenant).env["DATABASE_URL"]
    await seed(pg2.dsn, tid)
    there = Tenant(tid, owner, login)
    await add_lead(there, "Лид на pg2")
    noon = tomorrow_noon()
    booking = await add_booking(there, 701, "Анна", noon)

    keys = b",".join(deps.box._keys).decode()  # the master's key: the web opens its secrets
    server = await web_start(encryption_keys=keys)
    http = aiohttp.ClientSession()
    web_owner = await owner_client(http, server, Tenant(tid, owner, login))

    async def reads() -> None:
        status, page = await web_owner.call("GET", "/api/leads", params={"tenant_id": tid})
        assert status == 200, page
        assert [lead["name"] for lead in page["items"]] == ["Лид на pg2"]
        status, page = await web_owner.call(
            "GET", f"/api/tenants/{tid}/bookings", params={"day": noon.date().isoformat()}
        )
        assert status == 200, page
        assert [(b["id"], b["customer_name"]) for b in page["items"]] == [(booking, "Анна")]

    await reads()
    runtime = await server.deps.gate.runtime(tid)
    reached = parse_dsn(runtime.ctx.settings.database_url.get_secret_value())
    assert (reached.port, reached.user) == (pg2.port, tid)  # its own login, not pg2's admin
    assert pg2.password not in runtime.ctx.settings.database_url.get_secret_value()

    moved = await harness.api.call(
        "POST", f"/api/v1/tenants/{tid}/db-server", json={"db_server": "default"}
    )
    assert moved.status == 200 and moved.body["old_copy_dropped"], moved.body
    assert await tenant_objects(pg2.dsn, tid) == []
    await reads()  # from the platform's server now
    runtime = await server.deps.gate.runtime(tid)
    assert (
        parse_dsn(runtime.ctx.settings.database_url.get_secret_value()).port
        == parse_dsn(harness.pg_dsn).port
    )
    await http.close()
