"""The YooKassa webhook under a burst: N concurrent notifications (issue: 200, p99 < 100 ms).

    python -m bench.bench_webhook [--notifications 200] [--rounds 3]

Three processes, as in production: the sales bot's webhook (this process, with its PostgreSQL
from DATABASE_URL in a scratch database that is dropped afterwards, and REDIS_URL), the YooKassa
fake (`python -m yookassa_emulator`), and a sender (`python -m bench.http_burst`) that opens N
fresh connections from 127.0.0.2 (the trusted address) at once and posts one notification on
each. Each notification is a distinct succeeded payment of a distinct order. Prints the latency
of the webhook's answers as the sender sees them (p50/p95/p99/max), and how long after the first
notification every order was paid (the work after the answers: re-reading each payment through
the SDK and settling the order). Then the same burst against a do-nothing aiohttp handler in
this process: the floor of this machine and this sender, and the webhook's p99 as a ratio of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from cryptography.fernet import Fernet

from bench.scratch import free_port
from core.settings import SalesSettings
from database.dsn import parse_dsn
from sales_bot.app import SalesApp
from sales_bot.orders import OrderKind, idempotence_key, new_order_id
from sales_bot.store import NewOrder

MADE_UP: dict[str, Any] = {  # the fake's and nobody's credentials
    "sales_bot_token": "4242424242:bench-sales-bot-token-xxxxxxxx",
    "master_api_token": "bench-master-token",
    "yookassa_secret_key": "test_fake_secret",
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(p / 100 * len(ordered) + 0.5) - 1))]


# ---------------------------------------------------------------------- the webhook process
async def burst(
    app: SalesApp, fake_url: str, http: aiohttp.ClientSession, url: str, n: int
) -> tuple[list[float], float]:
    orders = []
    bodies = []
    for _ in range(n):
        order_id = new_order_id()
        order = await app.store.create_order(
            NewOrder(
                order_id=order_id, kind=OrderKind.NEW, user_id=1, locale="ru", plan="start",
                period_days=30, amount=Decimal("990.00"), currency="RUB",
                email="bench@example.com", idempotence_key=idempotence_key(order_id),
            )
        )  # fmt: skip
        order = await app.billing.checkout(order, description="bench", item="bench")
        async with http.post(f"{fake_url}/_fake/payments/{order.payment_id}/succeed") as resp:
            payment: dict[str, Any] = await resp.json()
        bodies.append(
            json.dumps({"type": "notification", "event": "payment.succeeded", "object": payment})
        )
        orders.append(order)
    started, latencies = await (await start_sender(url, bodies))
    # Polled only after the answers, so that the polling does not load the webhook's loop.
    ids = [o.order_id for o in orders]
    query = "SELECT count(*) FROM control.sales_orders WHERE status = 'paid' AND order_id = ANY($1)"
    while await app.pool.fetchval(query, ids) < n:  # noqa: ASYNC110 - polling the database
        await asyncio.sleep(0.01)
    return latencies, time.time() - started


async def start_sender(url: str, bodies: list[str]) -> asyncio.Task[tuple[float, list[float]]]:
    """Start `bench.http_burst` against `url` once it is ready to send (it imports nothing of
    the project, so it starts in a few ms); its task gives (wall start, latencies)."""
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.http_burst", url, "--source", "127.0.0.2",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip

    async def result() -> tuple[float, list[float]]:
        out, _ = await sender.communicate(json.dumps(bodies).encode())
        if sender.returncode != 0:
            raise RuntimeError(f"the sender failed (exit {sender.returncode})")
        answer = json.loads(out)
        return answer["started"], answer["latencies"]

    return asyncio.create_task(result())


async def send_burst(url: str, bodies: list[str]) -> list[float]:
    _, latencies = await (await start_sender(url, bodies))
    return latencies


async def baseline_p99(n: int, rounds: int) -> float:
    """p99 of a do-nothing aiohttp handler under the same burst: this machine's floor."""

    async def nothing(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/yookassa/webhook", nothing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    body = json.dumps({"type": "notification", "event": "payment.succeeded", "object": {}})
    try:
        p99s = []
        for _ in range(rounds):
            latencies = await send_burst(f"http://127.0.0.1:{port}/yookassa/webhook", [body] * n)
            p99s.append(percentile([v * 1000 for v in latencies], 99))
        return statistics.median(p99s)
    finally:
        await runner.cleanup()


async def main(n: int, rounds: int) -> None:
    server = os.environ["DATABASE_URL"]
    name = f"botfleet_bench_{os.getpid()}"
    dsn = parse_dsn(server).with_database(name)
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    fake_port = free_port()
    fake = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yookassa_emulator", "--port", str(fake_port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert fake.stdout is not None
    await fake.stdout.readline()  # "YooKassa fake: ..."
    fake_url = f"http://127.0.0.1:{fake_port}"
    settings = SalesSettings(
        database_url=dsn,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        telegram_api_url="http://127.0.0.1:9",
        master_api_url="http://127.0.0.1:9",
        encryption_keys=Fernet.generate_key().decode(),
        yookassa_shop_id="100500",
        **MADE_UP,
        yookassa_api_url=f"{fake_url}/v3",
        yookassa_trusted_networks="127.0.0.2/32",
        _env_file=None,
    )
    app = await SalesApp.create(settings)
    try:
        port = await app.start_webhook(port=0)
        url = f"http://127.0.0.1:{port}/yookassa/webhook"
        print(f"{n} concurrent notifications per round, {rounds} rounds (answers in ms)")
        p99s = []
        async with aiohttp.ClientSession() as http:
            for round_no in range(1, rounds + 1):
                latencies, settled = await burst(app, fake_url, http, url, n)
                ms = [v * 1000 for v in latencies]
                p99s.append(percentile(ms, 99))
                print(
                    f"round {round_no}: p50 {statistics.median(ms):6.1f}"
                    f"  p95 {percentile(ms, 95):6.1f}  p99 {percentile(ms, 99):6.1f}"
                    f"  max {max(ms):6.1f}  | all {n} orders paid {settled:5.2f} s after the first was sent"
                )
        floor = await baseline_p99(n, rounds)
        ours = statistics.median(p99s)
        print(
            f"baseline: a do-nothing aiohttp handler under the same burst, p99 {floor:6.1f} ms;"
            f" the webhook's median p99 {ours:6.1f} ms = {ours / floor:.2f}x the baseline"
        )
    finally:
        await app.close()
        fake.terminate()
        await fake.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.notifications, args.rounds))
