"""Memory per tenant in a hub: one real `python -m client_bot.hub` process, tenants added to it.

    python -m bench.bench_hub [--tenants 100] [--base 10]

Each tenant has its own login role and schema in a scratch database, its own Redis ACL user and
its own bot in the local Telegram emulator (this process). The hub learns them from env files,
as the master assigns them. With `--base` tenants running, every one of them answering a /start,
the hub's RSS and PSS are read from /proc/<pid>/smaps_rollup; then the other tenants are added,
each answers a /start, and the figures are read again. The marginal cost of a tenant is the
difference divided by the tenants added (issue 13 measured ~1.7 MiB per tenant with one
ClientBot per tenant, each with its own HTTP session and catalogs, before hubs existed; ~1.2 MiB
with a Dispatcher and router tree per tenant, before one Dispatcher served the whole hub).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_idle_backends import Tenant, scratch_tenants
from client_bot.hub import STATUS, TENANTS
from master_bot.deploy.hub import render_env
from telegram_emulator import EmulatorClient, EmulatorServer

ROOT = Path(__file__).resolve().parents[1]
CUSTOMER = 4242


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    return fields["Rss"] / 1024, fields["Pss"] / 1024


def assign(folder: Path, tenant: Tenant, api_url: str) -> None:
    env = {
        "TENANT_ID": tenant.tenant_id,
        "BOT_TOKEN": tenant.token,
        "DATABASE_URL": tenant.dsn,
        "REDIS_URL": tenant.redis_url,
        "TELEGRAM_API_URL": api_url,
        "ADMIN_IDS": "7001",
        "BUSINESS_NAME": f"Салон {tenant.tenant_id[-4:]}",
    }
    path = folder / TENANTS / f"{tenant.tenant_id}.env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_env(env))


async def all_running(folder: Path, tenants: list[Tenant], timeout: float) -> None:
    want = {t.tenant_id for t in tenants}
    deadline = time.monotonic() + timeout
    while True:
        try:
            reported = json.loads((folder / STATUS).read_text())["tenants"]
        except (OSError, ValueError, KeyError):
            reported = {}
        states = {tid: reported.get(tid, {}).get("state") for tid in want}
        if all(s == "running" for s in states.values()):
            return
        bad = {tid: s for tid, s in states.items() if s == "token_refused"}  # failed: retried
        if bad or time.monotonic() > deadline:
            raise SystemExit(f"tenants not running: {bad or states}")
        await asyncio.sleep(0.2)


async def answer_all(client: EmulatorClient, tenants: list[Tenant]) -> float:
    """Every tenant answers a /start; the seconds until the last answered."""
    started = time.perf_counter()
    await asyncio.gather(
        *(client.send_message(t.token, CUSTOMER, "/start", first_name="Анна") for t in tenants)
    )
    await asyncio.gather(
        *(client.wait_for_message(t.token, CUSTOMER, timeout=120) for t in tenants)
    )
    return time.perf_counter() - started


async def settle_and_measure(pid: int, seconds: float) -> tuple[float, float]:
    await asyncio.sleep(seconds)  # pools closed after their idle time, allocations settled
    return memory_mib(pid)


async def main(args: argparse.Namespace) -> None:
    if not 1 <= args.base < args.tenants:
        raise SystemExit("--base must be at least 1 and below --tenants")
    server = EmulatorServer()
    await server.start("127.0.0.1", 0)
    client = EmulatorClient(server.base_url)
    folder = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    (folder / TENANTS).mkdir()
    try:
        async with scratch_tenants(args.tenants) as (_, tenants):
            for i, t in enumerate(tenants):
                await client.register_bot(t.token, f"benchhub{i}_bot", "Salon")
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": str(ROOT),
                "HUB_DIR": str(folder),
                "HUB_SCAN_INTERVAL": "0.5",
                "HUB_CAPACITY": str(args.tenants),
                "LOG_LEVEL": "WARNING",
            }
            hub = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "client_bot.hub", env=env, cwd=str(ROOT)
            )
            try:
                await measure(args, client, server.base_url, folder, hub.pid, tenants)
            finally:  # before the tenants' roles and users are dropped
                await stop(hub)
    finally:
        for path in (folder / TENANTS).iterdir() if (folder / TENANTS).exists() else []:
            path.unlink()
        await client.close()
        await server.stop()


async def stop(hub: asyncio.subprocess.Process) -> None:
    if hub.returncode is None:
        hub.terminate()
        try:
            await asyncio.wait_for(hub.wait(), 60)
        except TimeoutError:
            hub.kill()
            await hub.wait()


async def measure(
    args: argparse.Namespace,
    client: EmulatorClient,
    api_url: str,
    folder: Path,
    pid: int,
    tenants: list[Tenant],
) -> None:
    await asyncio.sleep(1)
    baseline = memory_mib(pid)
    first, rest = tenants[: args.base], tenants[args.base :]
    for t in first:
        assign(folder, t, api_url)
    await all_running(folder, first, timeout=120)
    took = await answer_all(client, first)
    rss1, pss1 = await settle_and_measure(pid, args.settle)
    for t in rest:
        assign(folder, t, api_url)
    await all_running(folder, tenants, timeout=600)
    took_all = await answer_all(client, tenants)
    rss2, pss2 = await settle_and_measure(pid, args.settle)
    added = len(rest)
    print(f"hub process before any tenant: RSS {baseline[0]:.1f} MiB, PSS {baseline[1]:.1f} MiB")
    print(
        f"{args.base} tenants: RSS {rss1:.1f} MiB, PSS {pss1:.1f} MiB "
        f"(all answered /start in {took:.1f} s)"
    )
    print(
        f"{args.tenants} tenants: RSS {rss2:.1f} MiB, PSS {pss2:.1f} MiB "
        f"(all answered /start in {took_all:.1f} s)"
    )
    print(
        f"marginal per tenant ({args.base} -> {args.tenants}): "
        f"RSS {(rss2 - rss1) / added:.2f} MiB, PSS {(pss2 - pss1) / added:.2f} MiB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--base", type=int, default=10)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds before measuring")
    asyncio.run(main(parser.parse_args()))
