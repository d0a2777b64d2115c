"""The owner's web: dashboard API latency with a big tenant (issue 15 Benchmark).

    python -m bench.bench_web [--leads 10000] [--bookings 20000] [--requests 200]

A scratch tenant (schema, login role, Redis ACL user in a scratch database) gets `--leads` leads
(a tenth with a note) and `--bookings` bookings (20 a day of one staff member, over past and
future days, every tenth cancelled) written as the tenant's role; the real web app (`web.app`,
accounts, JWT, the tenant gate as the tenant's own role) serves on a local port and an owner
logged in by a one-time link asks for the dashboard's pages over HTTP, one at a time.

Per page: the server time (from the request entering the app to the response, measured by a
middleware around the web's own) and the time the client waited, median and p95. The aim is a
p95 under 50 ms of server time. The CSV exports of all leads and bookings are timed too.

Then the website widget (`--widget-turns`, 0 to skip): visitors post to `POST /api/widget/{key}/
chat` as a site's chat would, the tenant's assistant answering through the real `openai` SDK from
the project's OpenAI emulator (a local server answering at once). A plain answer (one model call)
and a booking (find_free_slots → create_booking → answer), each visitor with 19 messages of
history, as bench_assistant does for the bot. "Overhead" is the server time minus the time spent
inside the model calls: what the web and the assistant cost per turn (aim < 30 ms, like the
bot's). The widget's per-IP limit is lifted for the run (every request comes from 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import asyncpg
from aiohttp import web
from pydantic import SecretStr

from bench.bench_assistant import HISTORY, TimedModel, free_starts, script_booking
from bench.scratch import scratch_tenant, summary
from client_bot.store import Store
from core.secrets import SecretBox, generate_key
from core.settings import WebSettings
from database.dsn import parse_dsn, split_password
from database.pool import create_pool
from openai_emulator import OpenAIEmulator
from tests.client.conftest import seed_business
from tests.support import free_port
from web import handlers
from web.app import build_app, close_deps, open_deps
from web.chat import WIDGET, web_customer_id
from web.tokens import generate_key as generate_jwt_key
from web.tokens import issue_login_link

TENANT = "client_71500000015"  # apart from fleet_seed's client_7000000xxxx
OWNER = 870_000_015


async def fill(dsn: str, leads: int, bookings: int) -> None:
    """Leads, notes, customers and bookings, written as the tenant's own role."""
    pool = await create_pool(dsn, min_size=0, max_size=1)
    try:
        await seed_business(Store(pool))
    finally:
        await pool.close()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO leads (customer_id, name, phone, interest, comment, status, taken_by,"
            " created_at, updated_at)"
            " SELECT 1000 + i, 'Клиент ' || i, '+7900' || lpad(i::text, 7, '0'), 'стрижка',"
            " '', (ARRAY['new', 'in_work', 'won', 'lost'])[1 + i % 4],"
            " CASE WHEN i % 4 = 0 THEN NULL ELSE $2::bigint END,"
            " now() - make_interval(mins => i * 7), now() - make_interval(mins => i * 7)"
            " FROM generate_series(1, $1) AS i",
            leads,
            OWNER,
        )
        await conn.execute(
            "INSERT INTO lead_notes (lead_id, author_id, via, body)"
            " SELECT id, $1, 'web', 'перезвонить' FROM leads WHERE id % 10 = 0",
            OWNER,
        )
        customers = max(1, bookings // 4)
        await conn.execute(
            "INSERT INTO customers (telegram_id, first_name, phone)"
            " SELECT 1000 + i, 'Клиент ' || i, '+7900' || lpad(i::text, 7, '0')"
            " FROM generate_series(1, $1) AS i",
            customers,
        )
        # 20 half-hour bookings a day from 10:00 Moscow, half of them in the past.
        first_day = (datetime.now(UTC) - timedelta(days=bookings // 40)).replace(
            hour=7, minute=0, second=0, microsecond=0
        )
        await conn.execute(
            "INSERT INTO bookings (customer_id, service_id, starts_at, ends_at, status,"
            " customer_name, phone)"
            " SELECT 1000 + 1 + i % $2, (SELECT min(id) FROM services),"
            "  $3::timestamptz + make_interval(days => i / 20, mins => (i % 20) * 30),"
            "  $3::timestamptz + make_interval(days => i / 20, mins => (i % 20) * 30 + 30),"
            "  CASE WHEN i % 10 = 0 THEN 'cancelled' WHEN i % 10 = 1 THEN 'no_show'"
            "  ELSE 'confirmed' END, 'Клиент ' || i, '+79001112233'"
            " FROM generate_series(0, $1 - 1) AS i",
            bookings,
            customers,
            first_day,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def register(
    control_dsn: str, box: SecretBox, tenant_id: str, password: str, redis_pw: str
) -> None:
    conn = await asyncpg.connect(control_dsn)
    try:
        await conn.execute(
            "INSERT INTO control.tenants (tenant_id, number, status, plan, business_name,"
            " owner_telegram_id, db_password_enc, redis_password_enc, provision_step)"
            " VALUES ($1, $2, 'active', 'business', 'Салон', $3, $4, $5, 'done')",
            tenant_id,
            int(tenant_id.removeprefix("client_")),
            OWNER,
            box.encrypt(tenant_id, password),
            box.encrypt(tenant_id, redis_pw),
        )
    finally:
        await conn.close()


def server_timer(
    spent: list[float], cpu: list[float]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Wall time inside the app, and this process's CPU time meanwhile (the client waits idle
    then): the CPU figure holds on a loaded machine, the wall one does not."""

    @web.middleware
    async def timed(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        began, began_cpu = time.perf_counter(), time.process_time()
        try:
            return await handler(request)
        finally:
            spent.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)

    return timed


async def run(args: argparse.Namespace) -> None:
    async with scratch_tenant(TENANT, "web") as tenant:
        scratch_db = parse_dsn(tenant.dsn).database
        control_dsn = parse_dsn(os.environ["DATABASE_URL"]).with_database(scratch_db)
        began = time.perf_counter()
        await fill(tenant.dsn, args.leads, args.bookings)
        print(
            f"filled {args.leads} leads, {args.bookings} bookings in {time.perf_counter() - began:.1f} s"
        )
        keys = generate_key()
        box = SecretBox(keys)
        db_password = split_password(tenant.dsn)[1] or ""
        redis_password = unquote(urlsplit(tenant.redis_url).password or "")
        await register(control_dsn, box, TENANT, db_password, redis_password)
        port = free_port()
        settings = WebSettings(
            database_url=control_dsn,
            redis_url=os.environ["REDIS_URL"],
            encryption_keys=keys,
            web_jwt_keys=generate_jwt_key(),
            web_port=port,
            web_public_url=f"http://127.0.0.1:{port}",
            web_redis_prefix=f"benchweb{secrets.token_hex(4)}:",
            _env_file=None,
        )
        emulator = OpenAIEmulator(api_key="bench-key", default_reply="Стрижка стоит 1500 ₽.")
        await emulator.start()
        settings = settings.model_copy(
            update={
                "openai_api_key": SecretStr("bench-key"),
                "openai_base_url": emulator.base_url,
                "assistant_daily_tokens": 0,
                "assistant_rate_limit": 1000,
            }
        )
        deps = await open_deps(settings)
        spent: list[float] = []
        cpu: list[float] = []
        app = build_app(deps)
        app.middlewares.insert(0, server_timer(spent, cpu))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                link = issue_login_link(deps.keys, OWNER, 60)
                async with http.post(f"{base}/api/auth/link", json={"token": link}) as r:
                    token = (await r.json())["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                today = datetime.now(UTC).date()
                pages: list[tuple[str, str, dict[str, Any]]] = [
                    ("leads: newest 50", "/api/leads", {"limit": "50"}),
                    ("leads: status new, 50", "/api/leads", {"status": "new", "limit": "50"}),
                    ("leads: mine, 200", "/api/leads", {"mine": "true", "limit": "200"}),
                    (
                        "leads: page 41 of 50 (offset 2000)",
                        "/api/leads",
                        {"limit": "50", "offset": "2000"},
                    ),
                    ("bookings: a day", f"/api/tenants/{TENANT}/bookings", {"day": str(today)}),
                    (
                        "bookings: a week",
                        f"/api/tenants/{TENANT}/bookings",
                        {"day": str(today), "days": "7"},
                    ),
                    (
                        "bookings: a week, no-shows",
                        f"/api/tenants/{TENANT}/bookings",
                        {"day": str(today - timedelta(days=7)), "days": "7", "status": "no_show"},
                    ),
                ]
                print(f"{args.requests} requests per page, one at a time; server = inside the app")
                for label, path, params in pages:
                    async with http.get(base + path, params=params, headers=headers) as r:
                        assert r.status == 200, await r.text()
                        shown = len((await r.json())["items"])
                    spent.clear()
                    cpu.clear()
                    waited: list[float] = []
                    for _ in range(args.requests):
                        began = time.perf_counter()
                        async with http.get(base + path, params=params, headers=headers) as r:
                            await r.read()
                        waited.append(time.perf_counter() - began)
                    print(summary(f"{label} ({shown} rows) server", spent, 52))
                    print(summary(f"{label} ({shown} rows) client", waited, 52))
                    print(summary(f"{label} ({shown} rows) web CPU", cpu, 52))
                for what in ("leads", "bookings"):
                    spent.clear()
                    for _ in range(5):
                        async with http.get(
                            f"{base}/api/tenants/{TENANT}/{what}.csv", headers=headers
                        ) as r:
                            size = len(await r.read())
                    print(summary(f"export {what}.csv ({size // 1024} KiB) server", spent, 52))
                if args.widget_turns:
                    timers = (spent, cpu)
                    await widget_turns(
                        http, base, headers, deps, emulator, timers, args.widget_turns
                    )
        finally:
            await runner.cleanup()
            await close_deps(deps)
            await emulator.stop()


async def widget_turns(
    http: aiohttp.ClientSession,
    base: str,
    headers: dict[str, str],
    deps: Any,
    emulator: OpenAIEmulator,
    timers: tuple[list[float], list[float]],
    turns: int,
) -> None:
    spent, cpu = timers
    async with http.get(f"{base}/api/tenants/{TENANT}/widget", headers=headers) as r:
        assert r.status == 200, await r.text()
        key = (await r.json())["key"]
    handlers.WIDGET_IP_LIMIT = 10**9  # one client IP sends every visitor's turns here
    url = f"{base}/api/widget/{key}/chat"

    async def post(visitor: str, text: str) -> dict[str, Any]:
        async with http.post(url, json={"visitor_id": visitor, "text": text}) as r:
            assert r.status == 200, await r.text()
            answer: dict[str, Any] = await r.json()
            return answer

    await post("bench-warm-up", "Сколько стоит стрижка?")  # builds the tenant's runtime
    runtime = await deps.gate.runtime(TENANT)
    model = TimedModel(runtime.assistant.model)
    runtime.assistant.model = model
    service = (await runtime.ctx.store.services())[0]
    zone = (await runtime.ctx.business()).zone
    print(f"widget: {turns} turns of each kind, one at a time; overhead = server minus model")
    for kind in ("answer", "booking"):
        visitors = [f"bench-{kind}-{i:05d}" for i in range(turns)]
        for visitor in visitors:  # history to load, not measured
            customer = web_customer_id(WIDGET, visitor)
            await runtime.ctx.store.touch_customer(customer, "Посетитель", None, None)
            for j in range(HISTORY):
                role = "user" if j % 2 == 0 else "assistant"
                await runtime.ctx.store.assistant.add_message(customer, role, f"сообщение {j} " * 8)
        starts = await free_starts(runtime.ctx, turns) if kind == "booking" else []
        whole: list[float] = []
        overhead: list[float] = []
        cpus: list[float] = []
        for i, visitor in enumerate(visitors):
            if kind == "booking":
                script_booking(emulator, service.id, starts[i].astimezone(zone))
            model.waited = 0.0
            spent.clear()
            cpu.clear()
            answer = await post(visitor, "Хочу записаться на стрижку, Bench, +79000000000")
            assert answer["outcome"] == "answer" and answer["reply"], answer
            whole.append(spent[0])
            overhead.append(spent[0] - model.waited)
            cpus.append(cpu[0])
        assert emulator.pending() == 0, "scripted answers left: a turn did not run"
        print(summary(f"widget {kind} turn: server time, instant fake model", whole, 52))
        print(summary(f"widget {kind} turn: overhead (minus model calls)", overhead, 52))
        print(summary(f"widget {kind} turn: CPU of this process (web, SDK, fake model)", cpus, 52))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_web", description=__doc__)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--widget-turns", type=int, default=100, help="0: no widget turns")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
