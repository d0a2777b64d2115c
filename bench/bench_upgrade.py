"""A fleet-wide upgrade of N dedicated bots (master_bot/upgrades.py) on this machine.

    python -m bench.bench_upgrade [--tenants 50] [--settle 2] [--batch 8] [--max-batch 64]

Tenant rows in a scratch database on DATABASE_URL's server (dropped afterwards); each bot is a
real process of the process backend running the stand-in client (tests/master/fake_bot.py:
starts in milliseconds, so what is measured is the upgrade's own machinery: stop, start, the
health gate's `settle`, the batches). The "images" are two release interpreters (wrappers of
this Python). Prints the total time, each batch (size, time to re-create, time to settle), the
most bots down at once and the longest time one bot was down (stop until its new process runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from bench.bench_reconcile import insert_tenants
from core.secrets import SecretBox
from database.dsn import parse_dsn
from database.migrator import migrate_control
from master_bot.deploy.process import ProcessBackend
from master_bot.deps import Deps, MasterConfig
from master_bot.rollout import RolloutPolicy
from master_bot.spec import build_spec
from master_bot.store import TenantStore
from master_bot.telegram import TelegramGateway
from master_bot.upgrades import Progress, Upgrades, UpgradeState

STAND_IN = "tests.master.fake_bot"
BASE = 7 * 10**10


def release(folder: Path, name: str) -> str:
    path = folder / f"python-{name}"
    path.write_text(f'#!/bin/sh\nexport BOTFLEET_RELEASE={name}\nexec {sys.executable} "$@"\n')
    path.chmod(0o755)
    return str(path)


async def seed(conn: asyncpg.Connection, box: SecretBox, n: int) -> list[str]:
    return await insert_tenants(conn, box, "start", {BASE + i: "active" for i in range(1, n + 1)})


async def main(args: argparse.Namespace) -> None:
    server = os.environ["DATABASE_URL"]
    name = f"botfleet_bench_upgrade_{os.getpid()}"
    dsn = parse_dsn(server).with_database(name)
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)
    work = Path(tempfile.mkdtemp(prefix="bench-upgrade-"))
    redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    backend = ProcessBackend(
        work / "clients", python=release(work, "v1"), module=STAND_IN, stop_timeout=5
    )
    try:
        box = SecretBox(Fernet.generate_key().decode())
        async with pool.acquire() as conn:
            await migrate_control(conn)
            tenants = await seed(conn, box, args.tenants)
        config = MasterConfig(
            tenant_database_url=dsn,
            tenant_redis_url="redis://127.0.0.1:6379/0",
            telegram_api_url="http://127.0.0.1:9",
            clients_dir=work / "clients",
            backups_dir=work / "backups",
        )
        deps = Deps(
            config=config,
            pool=pool,
            redis=redis,
            backend=backend,
            box=box,
            telegram=TelegramGateway("http://127.0.0.1:9"),
            store=TenantStore(pool),
        )
        store = TenantStore(pool)
        started = time.perf_counter()
        sem = asyncio.Semaphore(8)

        async def first(tid: str) -> None:
            async with sem:
                tenant = await store.get(tid)
                assert tenant is not None
                await backend.deploy(build_spec(config, box, tenant))

        await asyncio.gather(*(first(t) for t in tenants))
        print(
            f"{len(tenants)} stand-in bots started on v1 in {time.perf_counter() - started:.1f} s"
        )

        policy = RolloutPolicy(
            first_batch=1,
            batch_size=args.batch,
            max_batch=args.max_batch,
            settle=args.settle,
            timeout=max(60.0, args.settle * 4),
        )
        upgrades = Upgrades(deps, None, policy=policy, poll=0.1, concurrency=args.concurrency)
        down: dict[str, float] = {}
        longest = [0.0]
        most = [0]
        recreate = upgrades._recreate

        async def timed(unit: str) -> None:  # how long each bot is down, how many at once
            down[unit] = time.perf_counter()
            most[0] = max(most[0], len(down))
            try:
                await recreate(unit)
            finally:
                longest[0] = max(longest[0], time.perf_counter() - down.pop(unit))

        upgrades._recreate = timed  # type: ignore[method-assign]
        batches: list[dict[str, float]] = []

        async def watch(event: str, p: Progress) -> None:
            now = time.perf_counter()
            if p.batches > len(batches):
                if batches:
                    batches[-1]["end"] = now
                batches.append({"start": now, "size": len(p.in_flight), "end": now})

        ended = asyncio.Event()

        async def end(event: str, p: Progress) -> None:
            if p.state in (UpgradeState.FINISHED, UpgradeState.HALTED):
                ended.set()

        upgrades.watch(watch)
        upgrades.watch(end)
        t0 = time.perf_counter()
        await upgrades.start(release(work, "v2"), migrate=False)
        await ended.wait()
        total = time.perf_counter() - t0
        p = upgrades.snapshot()
        if batches:
            batches[-1]["end"] = time.perf_counter()
        await upgrades.close()
        print(
            f"upgrade {p.state.value}: {p.done}/{p.total} bots in {total:.1f} s, "
            f"{len(batches)} batches (settle {args.settle:g} s, batches 1, {args.batch}, "
            f"doubling to {args.max_batch})"
        )
        for i, b in enumerate(batches, 1):
            print(f"  batch {i:2d}: {int(b['size']):3d} bots  {b['end'] - b['start']:6.2f} s")
        print(f"most bots down at once: {most[0]}; longest one bot was down: {longest[0]:.2f} s")
        per = total / max(1, p.done)
        print(f"per bot: {per * 1000:.0f} ms of wall time (settle-bound: {len(batches)} x settle)")
    finally:
        for tid in list(await backend.list()):
            await backend.remove(tid)
        await backend.close()
        await redis.aclose()
        await pool.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
