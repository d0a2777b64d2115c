"""Provisioning latency: from `POST /api/v1/tenants` to the new client bot answering /start.

    python -m bench.bench_provision [--backend process|docker] [--runs 3]

Runs the real `python -m master_bot` (its REST API and deploy backend) against a scratch
database, the local Telegram emulator and Redis; each run provisions a new tenant and times the
API call, then the first answer to /start. The docker backend needs an engine and the image
(`scripts/docker_engine.sh up` exports DOCKER_HOST and BOTFLEET_CLIENT_IMAGE).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg

from core.secrets import generate_key
from database.dsn import parse_dsn
from telegram_emulator import EmulatorClient, EmulatorServer

ROOT = Path(__file__).resolve().parents[1]


async def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def main(backend: str, runs: int) -> None:
    server_dsn = os.environ["DATABASE_URL"]
    name = f"botfleet_bench_prov_{os.getpid()}"
    dsn = parse_dsn(server_dsn).with_database(name)
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    emulator = EmulatorServer()
    await emulator.start()
    client = EmulatorClient(emulator.base_url)
    port = 18600
    api_token = secrets.token_urlsafe(16)
    run_dir = Path(f"/tmp/botfleet-bench-provision-{os.getpid()}")  # noqa: S108 - scratch
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "TELEGRAM_API_URL": emulator.base_url,
        "ENCRYPTION_KEYS": generate_key(),
        "MASTER_API_TOKEN": api_token,
        "MASTER_API_PORT": str(port),
        "DEPLOY_BACKEND": backend,
        "CLIENT_IMAGE": os.environ.get("BOTFLEET_CLIENT_IMAGE", "botfleet-client:test"),
        "CLIENTS_DIR": str(run_dir / "clients"),
        "BACKUPS_DIR": str(run_dir / "backups"),
        "MASTER_BOT_TOKEN": "",
        "LOG_LEVEL": "WARNING",
    }
    master = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "master_bot", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {api_token}"}
    api_seconds, total_seconds, tenants = [], [], []
    try:
        await wait_http(f"{api}/health")
        async with aiohttp.ClientSession(headers=headers) as session:
            for i in range(runs):
                token = f"{8100000 + i}:bench-provision-token-{secrets.token_hex(8)}"
                await client.register_bot(token, f"bench_prov_{i}_bot")
                body = {
                    "plan": "basic", "period_days": 30, "business_name": f"Bench {i}",
                    "bot_token": token, "owner_telegram_id": 7001,
                }  # fmt: skip
                began = time.perf_counter()
                async with session.post(
                    f"{api}/api/v1/tenants", json=body, headers={"Idempotency-Key": f"bench-{i}"}
                ) as resp:
                    reply = await resp.json()
                    assert resp.status == 201, reply
                api_seconds.append(time.perf_counter() - began)
                tenants.append(reply["tenant_id"])
                await client.send_message(token, 4242, "/start")
                await client.wait_for_message(token, 4242, timeout=120)
                total_seconds.append(time.perf_counter() - began)
            for tenant_id in tenants:
                async with session.delete(f"{api}/api/v1/tenants/{tenant_id}?backup=false"):
                    pass
    finally:
        master.terminate()
        await master.wait()
        await client.close()
        await emulator.stop()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        for tenant_id in tenants:
            await admin.execute(f'DROP ROLE IF EXISTS "{tenant_id}"')
        await admin.close()
    print(f"backend: {backend}, runs: {runs}")
    print(f"API call (schema, role, migrations, Redis user, folder, runtime started): "
          f"median {statistics.median(api_seconds):.2f} s")  # fmt: skip
    print(f"API call → the new bot answers /start: median {statistics.median(total_seconds):.2f} s, "
          f"all {', '.join(f'{s:.2f}' for s in total_seconds)} s")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["process", "docker"], default="process")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.backend, args.runs))
