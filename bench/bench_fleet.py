"""A fleet in the shared placement: N tenants provisioned through the master's REST API, in hubs.

    python -m bench.bench_fleet [--tenants 1000] [--dedicated 10] [--concurrency 4]
                                [--idle-long SECONDS] [--provision-for SECONDS]
                                [--placement process|docker]

Runs the real `python -m master_bot` (`--placement process`, the default: DEPLOY_BACKEND=process,
hubs are processes that long-poll, each tenant of the dedicated plan a process of its own;
`--placement docker`: DEPLOY_BACKEND=docker, hubs and dedicated tenants are containers and every
update arrives by webhook, emulator -> Caddy -> the container; see `Engine`) against a scratch
database, a fleet name of its own
(FLEET_NAME: its roles, Redis ACL users and keys carry that prefix), the shared Redis and the
local Telegram emulator (this process). A plans file gives two plans: `fleet_shared` (placement
shared) and `fleet_dedicated` (placement dedicated). Reported in one run:
- provisioning: N tenants of the shared plan through `POST /api/v1/tenants`, `--concurrency` at a
  time, tenants/s (a line every 250; with `--provision-for SECONDS` it stops after that long and
  the rest is measured on the tenants made by then); then every tenant answers a /start (all
  answering, and how long that took);
- memory: total PSS of the hub processes (/proc/<pid>/smaps_rollup; in containers, of every
  process the engine lists in each, and also the engine's figure: the cgroup's usage less its
  inactive page cache, what `docker stats` shows) and the marginal MiB per tenant between the
  first `--base` tenants and all N (each time all answered, then settled);
- idle (after `--idle` seconds without updates): the PostgreSQL backends of the scratch database
  by whom (shared tenants, dedicated tenants, the master) and their PSS; the Redis clients of the
  fleet's ACL users and the memory of its keys; the Redis clients before and after every tenant
  got its first update, and per hub (do they grow with tenants or with activity?);
- latency: /start to 200 random tenants (`--probes`) while 5% of the tenants (`--busy`) each
  receive a /start every `1/--rate` seconds; the hubs' CPU ms per update over that window;
- the update mix: `--walkers` tenants (English, one service, open every day) each walked by
  `--mix-users` customers through bench_updates' booking dialog, all in step; the hubs' CPU ms
  per update of each step (their background rate measured just before is subtracted) and for
  the mix of /start, calendar and confirm in equal parts, as updates/s per core;
- the same for `--dedicated` tenants of the dedicated plan (a process each), printed as ratios;
- with `--idle-long SECONDS`, at the end: the backends every 30 s for that long (shared,
  dedicated, all with the master's), and the mean of the last 5 minutes: the steady state once
  the tenants' periodic passes have backed off (the admin-notice retry needs ~30 minutes).
Hub processes poll (webhooks go through the proxy only to hub containers: `--placement docker`).

Everything it created is removed at the end, also on Ctrl-C: the processes (from their pid
files) or the containers, Caddy, the network and the relays, the scratch database, the fleet's
roles, ACL users and keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import docker
from docker.models.containers import Container
from redis.asyncio import Redis

from bench.bench_hub import memory_mib
from bench.bench_provision import wait_http
from bench.bench_updates import MIX, STEPS, WARM, Walk
from bench.bench_updates import Run as MixRun
from bench.bench_updates import Step as MixStep
from bench.scratch import free_port
from client_bot.store import Store
from core.redis import tenant_key_prefix
from core.secrets import generate_key
from database.dsn import parse_dsn
from database.identifiers import quote_ident
from database.redis_tenants import ACL_OWNERS_KEY
from database.roles import fleet_prefix
from master_bot.deploy.docker import LABEL_FLEET, LABEL_HUB, DockerBackend
from telegram_emulator import EmulatorClient, EmulatorServer

ROOT = Path(__file__).resolve().parents[1]
SHARED, DEDICATED = "fleet_shared", "fleet_dedicated"
PROBE_USER, BUSY_USER, CHECK_USER = 5_100_000, 5_200_000, 5_300_000
OWNER = 7001
MIX_USER = 5_400_000
HZ = os.sysconf("SC_CLK_TCK")
PROGRESS = 250  # a line every so many tenants provisioned
RETRIES = 5  # of a provisioning call answered 503 provisioning_incomplete


@dataclass
class Tenant:
    token: str
    tenant_id: str = ""


@dataclass
class Engine:
    """`--placement docker`: the Docker Engine (DOCKER_HOST, scripts/docker_engine.sh), a bridge
    network of the run's own (made as the master makes CLIENT_NETWORK), Caddy in a container on
    it as compose runs it (tests/master/test_hub_containers.caddy_container), and TCP relays
    (tests/test_docker_backend.Relay): on the network's gateway to PostgreSQL and Redis, which
    listen on the host's loopback, and on 127.0.0.1 to Caddy, since the emulator delivers
    webhooks to 127.0.0.1 only. The emulator itself listens on the gateway address."""

    api: docker.DockerClient
    image: str
    network: str
    gateway: str
    relays: list[Any] = field(default_factory=list)  # tests.test_docker_backend.Relay
    caddy: Container | None = None
    caddy_ip: str = ""

    @classmethod
    async def up(cls, fleet: str, run_dir: Path) -> Engine:
        from tests.master.test_hub_containers import caddy_container

        api = docker.from_env(timeout=120)
        # A tag of the run's own: the image rebuilt under its usual tag meanwhile (another
        # `scripts/docker_engine.sh up`) would be drift, and the master would roll it out.
        image = f"botfleet-client:bench-{fleet}"
        api.images.get(os.environ.get("BOTFLEET_CLIENT_IMAGE", "botfleet-client:test")).tag(image)
        network = f"bf-bench-{fleet}"
        backend = DockerBackend(image, network=network, fleet=fleet)
        try:
            gateway = await backend.network_gateway()  # the network, made as the master would
        finally:
            await backend.close()
        if not gateway:
            raise SystemExit(f"the Docker network {network} has no gateway address")
        engine = cls(api, image, network, gateway)
        engine.caddy, engine.caddy_ip = await asyncio.to_thread(
            caddy_container, engine.api, network, run_dir / "caddy"
        )
        return engine

    async def relay(self, url: str, on: str = "") -> str:
        """`url` (a server on the host's loopback) as reachable from `on` (the gateway)."""
        from tests.test_docker_backend import Relay

        relay = Relay(on or self.gateway)
        self.relays.append(relay)
        return str(await relay.expose(url))

    def containers(self, fleet: str, hubs: bool) -> list[Container]:
        """The fleet's running hub containers (or dedicated ones)."""
        found = self.api.containers.list(
            filters={"label": f"{LABEL_FLEET}={fleet}", "status": "running"}
        )
        return [c for c in found if (LABEL_HUB in c.labels) == hubs]

    @staticmethod
    def pids(container: Container) -> list[int]:
        """The container's processes (the init and the bot) as the host sees them."""
        top = container.top()
        column = top["Titles"].index("PID")
        return [int(row[column]) for row in top["Processes"] or []]

    @staticmethod
    def memory_mib(container: Container) -> float:
        """The engine's figure (`docker stats`): the cgroup's usage less the inactive page cache,
        as DockerBackend reports a container's memory."""
        data = container.client.api.stats(container.id, stream=False, one_shot=True)
        mem = data.get("memory_stats") or {}
        inner = mem.get("stats") or {}
        cache = inner.get("total_inactive_file", inner.get("inactive_file", inner.get("cache", 0)))
        return max(int(mem.get("usage") or 0) - int(cache or 0), 0) / 2**20

    async def down(self, fleet: str) -> int:
        """Remove the fleet's containers, Caddy (its routes with it), the network; close the
        relays. Returns how many containers were removed."""

        def remove() -> int:
            found = self.api.containers.list(all=True, filters={"label": f"{LABEL_FLEET}={fleet}"})
            for container in [*found, *([self.caddy] if self.caddy is not None else [])]:
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
            for net in self.api.networks.list(names=[self.network]):
                with contextlib.suppress(docker.errors.APIError):
                    net.remove()
            with contextlib.suppress(docker.errors.APIError):
                self.api.images.remove(self.image)  # the run's tag only: the image stays
            return len(found)

        for relay in self.relays:
            await relay.close()
        removed = await asyncio.to_thread(remove)
        self.api.close()
        return removed


@dataclass
class Run:
    fleet: str
    db: str
    dsn: str
    run_dir: Path
    api: str
    headers: dict[str, str]
    emulator: EmulatorClient
    engine: Engine | None = None
    bots: int = 0
    retried: int = 0  # provisioning calls repeated after a 503 provisioning_incomplete
    made: list[Tenant] = field(default_factory=list)


def plans_file(folder: Path) -> Path:
    def plan(plan_id: str, placement: str) -> dict[str, object]:
        return {
            "id": plan_id,
            "title": {"ru": plan_id, "en": plan_id},
            "price_rub": "990.00",
            "period_days": 30,
            "features": ["booking", "reminders", "admin_panel"],
            "placement": placement,
        }

    path = folder / "plans.json"
    path.write_text(json.dumps({"plans": [plan(SHARED, "shared"), plan(DEDICATED, "dedicated")]}))
    path.chmod(0o644)
    return path


def pids(run_dir: Path, hubs: bool) -> dict[str, int]:
    """Live runtimes under the clients folder, from their pid files: hubs or dedicated bots."""
    found = {}
    for path in (run_dir / "clients").glob("*/bot.pid"):
        name = path.parent.name
        if name.startswith("hub-") != hubs:
            continue
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = int(json.loads(path.read_text())["pid"])
            if Path(f"/proc/{pid}").exists():
                found[name] = pid
    return found


def pss_mib(pid_list: Iterable[int]) -> float:
    total = 0.0
    for pid in pid_list:
        with contextlib.suppress(OSError):
            total += memory_mib(pid)[1]
    return total


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def runtimes(run: Run, hubs: bool) -> dict[str, list[int]]:
    """The live hubs (or dedicated runtimes), each with its processes: a process from its pid
    file, or a container's processes as the engine lists them."""
    engine = run.engine
    if engine is None:
        return {name: [pid] for name, pid in pids(run.run_dir, hubs).items()}

    def listed() -> dict[str, list[int]]:
        return {c.name: engine.pids(c) for c in engine.containers(run.fleet, hubs)}

    return await asyncio.to_thread(listed)


async def runtime_pids(run: Run, hubs: bool) -> list[int]:
    return [pid for found in (await runtimes(run, hubs)).values() for pid in found]


async def engine_mib(run: Run, hubs: bool) -> float | None:
    """The engine's memory figure of the hub (or dedicated) containers; None for processes."""
    engine = run.engine
    if engine is None:
        return None

    def total() -> float:
        return sum(engine.memory_mib(c) for c in engine.containers(run.fleet, hubs))

    return await asyncio.to_thread(total)


def cpu_seconds(pid_list: Iterable[int]) -> float:
    total = 0
    for pid in pid_list:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / HZ


async def seed_for_walk(run: Run, tenant_id: str) -> None:
    """What bench_updates' walk needs of a fresh tenant (locale en from provisioning): one
    30-minute service and hours 09:00-21:00 every day, written before the tenant's first update
    (its hub caches services and hours on first use)."""
    pool = await asyncpg.create_pool(
        run.dsn, min_size=0, max_size=1, server_settings={"search_path": tenant_id}
    )
    try:
        store = Store(pool)
        for weekday in range(7):
            await store.set_hours(weekday, [(dtime(9), dtime(21))])
        await store.add_service("Haircut", Decimal("1500"), 30)
    finally:
        await pool.close()


async def provision(
    run: Run, session: aiohttp.ClientSession, plan: str, n: int, conc: int, walkers: int = 0,
    until: float | None = None,
) -> list[Tenant]:  # fmt: skip
    """n tenants of `plan` through the API, or as many as were started before `until` (a
    time.monotonic() deadline); the first `walkers` in English and seeded for the update mix
    (`seed_for_walk`)."""
    semaphore = asyncio.Semaphore(conc)
    began, done = time.perf_counter(), [0]

    async def one(k: int) -> Tenant | None:
        async with semaphore:
            if until is not None and time.monotonic() > until:
                return None
            run.bots += 1
            i = run.bots
            tenant = Tenant(f"{8_800_000_000 + i}:bench-fleet-{secrets.token_hex(8)}")
            await run.emulator.register_bot(tenant.token, f"bench_fleet_{i}_bot", f"Salon {i}")
            body = {
                "plan": plan, "period_days": 30, "business_name": f"Салон {i}",
                "bot_token": tenant.token, "owner_telegram_id": OWNER,
                "locale": "en" if k < walkers else "ru",
            }  # fmt: skip
            for attempt in range(RETRIES + 1):
                async with session.post(
                    f"{run.api}/api/v1/tenants", json=body,
                    headers={"Idempotency-Key": f"fleet-{i}"},
                ) as resp:  # fmt: skip
                    reply = await resp.json()
                if resp.status in (200, 201):  # 200: a repeated call found it done
                    break
                code = (reply.get("error") or {}).get("code")
                if resp.status != 503 or code != "provisioning_incomplete" or attempt == RETRIES:
                    raise SystemExit(f"provisioning tenant {i}: HTTP {resp.status} {reply}")
                # e.g. a new hub container not up in time: the same request again, as the
                # API says (the same Idempotency-Key continues from the step it stopped at)
                run.retried += 1
                print(f"    tenant {i}: {reply['error']['message']}; retrying", flush=True)
                await asyncio.sleep(2)
        tenant.tenant_id = reply["tenant_id"]
        if k < walkers:
            await seed_for_walk(run, tenant.tenant_id)
        run.made.append(tenant)
        done[0] += 1
        if done[0] % PROGRESS == 0:  # how far a long run got, should something give out
            took, hubs = time.perf_counter() - began, len(await runtimes(run, True))
            print(f"    {time.strftime('%H:%M:%S')} {len(run.made)} tenants provisioned"
                  f" ({done[0] / took:.2f}/s in this batch); hubs {hubs},"
                  f" MemAvailable {mem_available_mib():.0f} MiB", flush=True)  # fmt: skip
        return tenant

    return [t for t in await asyncio.gather(*(one(k) for k in range(n))) if t is not None]


async def answer_all(run: Run, tenants: list[Tenant], conc: int = 50) -> tuple[int, float]:
    """Every tenant gets a /start; (how many answered within 120 s, seconds until the last)."""
    semaphore = asyncio.Semaphore(conc)
    began = time.perf_counter()

    async def one(t: Tenant) -> bool:
        async with semaphore:
            before = len(await run.emulator.messages(t.token, CHECK_USER))
            await run.emulator.send_message(t.token, CHECK_USER, "/start", first_name="Анна")
            try:
                await run.emulator.wait_for_message(
                    t.token, CHECK_USER, timeout=120, count=before + 1
                )
            except TimeoutError:
                return False
            return True

    answered = sum(await asyncio.gather(*(one(t) for t in tenants)))
    return answered, time.perf_counter() - began


async def traffic(run: Run, busy: list[Tenant], rate: float, sent: list[int]) -> None:
    """Each busy tenant gets a /start from a customer of its own every 1/rate seconds."""

    async def one(k: int, t: Tenant) -> None:
        await asyncio.sleep(random.random() / rate)
        while True:
            await run.emulator.send_message(t.token, BUSY_USER + k, "/start", first_name="Пётр")
            sent[0] += 1
            await asyncio.sleep(1 / rate)

    await asyncio.gather(*(one(k, t) for k, t in enumerate(busy)))


async def probe(run: Run, tenants: list[Tenant], n: int) -> list[float]:
    """/start to n random tenants, two at a time, each from a new customer: seconds to answer."""
    seconds: list[float] = []
    picks = [random.choice(tenants) for _ in range(n)]
    semaphore = asyncio.Semaphore(2)

    async def one(k: int, t: Tenant) -> None:
        async with semaphore:
            user = PROBE_USER + run.bots * 1000 + k
            began = time.perf_counter()
            await run.emulator.send_message(t.token, user, "/start", first_name="Олег")
            await run.emulator.wait_for_message(t.token, user, timeout=60)
            seconds.append(time.perf_counter() - began)

    await asyncio.gather(*(one(k, t) for k, t in enumerate(picks)))
    return seconds


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Figures:
    tenants: int
    pss: float  # MiB, the runtimes
    engine: float | None  # MiB, the containers as the engine counts them (None: processes)
    backends: int  # mean while idle
    backends_max: int
    backends_pss: float
    redis_clients: int
    redis_bytes: int
    p50: float = 0.0
    p95: float = 0.0
    cpu_ms: float = 0.0


async def idle_figures(
    run: Run, admin: asyncpg.Connection, redis: Redis, roles: set[str], seconds: float,
) -> tuple[float, int, float, int, int]:  # fmt: skip
    """Over `seconds`: mean and max PostgreSQL backends of `roles` in the scratch database and
    their PSS at the busiest sample; the Redis clients of those users and the memory of their
    connections and keys."""
    counts: list[int] = []
    backend_pss = 0.0  # at the busiest sample
    deadline = time.monotonic() + seconds
    while True:
        rows = await admin.fetch(
            "SELECT pid, usename FROM pg_stat_activity WHERE datname = $1"
            " AND backend_type = 'client backend'",
            run.db,
        )
        ours = [r["pid"] for r in rows if r["usename"] in roles]
        if not counts or len(ours) > max(counts):
            backend_pss = pss_mib(ours)
        counts.append(len(ours))
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.5)
    clients = [c for c in await redis.client_list() if c.get("user") in roles]
    used = sum(int(c.get("tot-mem", 0)) for c in clients)  # the connections' buffers
    prefixes = tuple(tenant_key_prefix(role) for role in roles)  # {<fleet>_client_001}:
    async for key in redis.scan_iter(match=f"{{{fleet_prefix(run.fleet)}*", count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        if name.startswith(prefixes):
            used += await redis.memory_usage(key) or 0
    return statistics.mean(counts), max(counts), backend_pss, len(clients), used


async def measure(
    run: Run, args: argparse.Namespace, admin: asyncpg.Connection, redis: Redis,
    tenants: list[Tenant], hubs: bool, busy: list[Tenant],
) -> Figures:  # fmt: skip
    roles = {fleet_prefix(run.fleet) + t.tenant_id for t in tenants}
    await asyncio.sleep(args.settle)
    procs = await runtime_pids(run, hubs)
    pss, engine = pss_mib(procs), await engine_mib(run, hubs)
    mean, peak, bpss, clients, used = await idle_figures(run, admin, redis, roles, args.idle)
    figures = Figures(len(tenants), pss, engine, round(mean), peak, bpss, clients, used)
    sent = [0]
    load = asyncio.create_task(traffic(run, busy, args.rate, sent))
    try:
        await asyncio.sleep(3)  # the traffic steady
        cpu0, sent0 = cpu_seconds(procs), sent[0]
        seconds = await probe(run, tenants, args.probes)
        cpu1, sent1 = cpu_seconds(procs), sent[0]
    finally:
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await load
    figures.p50, figures.p95 = pct(seconds, 0.5) * 1000, pct(seconds, 0.95) * 1000
    updates = args.probes + (sent1 - sent0)
    figures.cpu_ms = (cpu1 - cpu0) * 1000 / updates
    print(
        f"  /start latency ({args.probes} probes, {len(busy)} busy tenants at {args.rate}/s each,"
        f" {updates} updates): p50 {figures.p50:.0f} ms, p95 {figures.p95:.0f} ms;"
        f" runtimes' CPU {figures.cpu_ms:.1f} ms per update"
    )
    return figures


async def update_mix(run: Run, walkers: list[Tenant], users: int) -> MixRun:
    """bench_updates' booking walk, `users` customers per walker tenant at once, every walker
    tenant in step: CPU ms per update of the hubs (utime+stime of all hub processes over the step,
    less their background rate measured just before over a quiet 10 s: polling and periodic
    passes of all tenants) for each step, and the mix of /start, calendar and confirm."""
    procs = await runtime_pids(run, hubs=True)
    for t in walkers:  # the owner's chat exists: the booking notices reach it
        await run.emulator.send_message(t.token, OWNER, "/start", language_code="en")
        await run.emulator.wait_for_message(t.token, OWNER, timeout=60)
    ids = [MIX_USER + i for i in range(WARM + users)]
    warm = [Walk(run.emulator, t.token, ids[:WARM]) for t in walkers]
    for name in STEPS:  # answers, locales, caches: not measured
        await asyncio.gather(*(w.step(name, None) for w in warm))
    walks = [Walk(run.emulator, t.token, ids[WARM:], offset=WARM) for t in walkers]
    await asyncio.sleep(2)
    cpu0, t0 = cpu_seconds(procs), time.monotonic()
    await asyncio.sleep(10)
    background = (cpu_seconds(procs) - cpu0) / (time.monotonic() - t0)
    mix = MixRun("hubs")
    for name in STEPS:
        cpu0, t0 = cpu_seconds(procs), time.monotonic()
        steps = await asyncio.gather(*(w.step(name, None) for w in walks))
        cpu = cpu_seconds(procs) - cpu0 - background * (time.monotonic() - t0)
        mix.steps[name] = MixStep(sum(x.updates for x in steps), cpu, max(x.wall for x in steps))
    per_step = ", ".join(f"{k} {mix.steps[k].cpu_ms:.2f}" for k in STEPS)
    print(f"  update mix ({len(walkers)} tenants x {users} customers walking the booking dialog;"
          f" hubs' background {background * 1000:.0f} ms CPU per s, subtracted):"
          f" CPU ms per update {per_step}")  # fmt: skip
    print(f"  mix of {', '.join(MIX)} in equal parts: {mix.mix_ms():.2f} ms per update,"
          f" {mix.per_core():.0f} updates/s per core")  # fmt: skip
    return mix


async def idle_window(
    run: Run, admin: asyncpg.Connection, groups: dict[str, set[str]], seconds: float,
    every: float = 30.0, tail: float = 300.0,
) -> dict[str, tuple[float, int]]:  # fmt: skip
    """PostgreSQL backends of the scratch database every `every` seconds for `seconds`, by
    group of roles (and all of them, the master's included), each sample printed; per group
    (mean over the last `tail` seconds, max over the window)."""
    samples: list[tuple[float, dict[str, int]]] = []
    began = time.monotonic()
    while True:
        rows = await admin.fetch(
            "SELECT usename FROM pg_stat_activity WHERE datname = $1"
            " AND backend_type = 'client backend'",
            run.db,
        )
        users = [r["usename"] for r in rows]
        counts = {g: sum(u in roles for u in users) for g, roles in groups.items()}
        counts["all"] = len(users)  # the master's too (this sampler is in another database)
        at = time.monotonic() - began
        samples.append((at, counts))
        print(f"    idle +{at:4.0f} s: backends {counts}", flush=True)
        if at >= seconds:
            break
        await asyncio.sleep(min(every, seconds - at))
    end = samples[-1][0]
    out = {}
    for g in [*groups, "all"]:
        last = [c[g] for at, c in samples if at >= end - tail]
        out[g] = (statistics.mean(last), max(c[g] for _, c in samples))
    return out


async def bench(
    run: Run, args: argparse.Namespace, admin: asyncpg.Connection, redis: Redis
) -> None:
    async with aiohttp.ClientSession(headers=run.headers) as session:
        base = max(1, min(args.base, args.tenants - 1))
        updates = "webhooks through Caddy" if run.engine else "long polling"
        print(f"fleet {run.fleet}: {args.tenants} shared tenants (hub capacity {args.hub_capacity}),"
              f" {args.dedicated} dedicated; master DEPLOY_BACKEND={args.placement}, {updates}")  # fmt: skip
        began = time.perf_counter()
        walkers = min(args.walkers, base)
        first = await provision(run, session, SHARED, base, args.concurrency, walkers)
        answered, took = await answer_all(run, first)
        await asyncio.sleep(args.settle)
        pss_base = pss_mib(await runtime_pids(run, hubs=True))
        engine_base = await engine_mib(run, hubs=True)
        provisioning = time.perf_counter() - began - took - args.settle
        print(f"  {base} tenants: {answered} answered /start in {took:.1f} s;"
              f" hubs' PSS {pss_base:.1f} MiB{engine_says(engine_base)}")  # fmt: skip
        t0 = time.perf_counter()
        until = None if args.provision_for is None else time.monotonic() + args.provision_for
        rest = await provision(
            run, session, SHARED, args.tenants - base, args.concurrency, until=until
        )
        provisioning += time.perf_counter() - t0
        shared = first + rest
        rate = len(shared) / provisioning
        print(f"  provisioning: {len(shared)} tenants in {provisioning:.1f} s of API calls"
              f" ({rate:.2f} tenants/s at concurrency {args.concurrency}; {run.retried} calls"
              " repeated after a 503)")  # fmt: skip
        if len(shared) < args.tenants:
            print(f"  --provision-for {args.provision_for:.0f} s: stopped at {len(shared)} of"
                  f" {args.tenants} tenants; the figures below are for those", flush=True)  # fmt: skip
        roles = {fleet_prefix(run.fleet) + t.tenant_id for t in shared}
        before = len(await redis_users(redis, roles))
        answered, took = await answer_all(run, shared)
        hubs = await runtimes(run, hubs=True)
        print(f"  all {len(shared)}: {answered} answered /start in {took:.1f} s;"
              f" {len(hubs)} hubs; Redis clients of the tenants {before} before that first"
              f" /start of the {len(rest)} provisioned last, {len(await redis_users(redis, roles))}"
              " after")  # fmt: skip
        busy = random.sample(shared, max(1, round(len(shared) * args.busy)))
        sh = await measure(run, args, admin, redis, shared, True, busy)
        report("shared", sh, hubs=len(hubs), kind=runtime_kind(run))
        grown = len(shared) - base
        print(f"  hubs' PSS marginal per tenant ({base} -> {len(shared)}):"
              f" {(sh.pss - pss_base) / max(1, grown):.2f} MiB")  # fmt: skip
        if sh.engine is not None and engine_base is not None:
            print(f"  hub containers' memory (engine) marginal per tenant ({base} ->"
                  f" {len(shared)}): {(sh.engine - engine_base) / max(1, grown):.2f} MiB")  # fmt: skip
        await redis_by_hub(run, redis, roles)
        if walkers:
            await update_mix(run, first[:walkers], args.mix_users)
        ded: list[Tenant] = []
        if args.dedicated > 0:
            ded = await provision(run, session, DEDICATED, args.dedicated, args.concurrency)
            answered, took = await answer_all(run, ded)
            print(f"  {len(ded)} dedicated: {answered} answered /start in {took:.1f} s")
            busy = random.sample(ded, max(1, round(len(ded) * args.busy)))
            dd = await measure(run, args, admin, redis, ded, False, busy)
            report("dedicated", dd, hubs=len(await runtimes(run, False)), kind=runtime_kind(run))
            ratios(sh, dd)
        if args.idle_long > 0:
            prefix = fleet_prefix(run.fleet)
            groups = {
                "shared": {prefix + t.tenant_id for t in shared},
                "dedicated": {prefix + t.tenant_id for t in ded},
            }
            print(f"  long idle window: {args.idle_long:.0f} s without updates, backends of the"
                  " scratch database every 30 s (all = the master's too)", flush=True)  # fmt: skip
            seen = await idle_window(run, admin, groups, args.idle_long)
            print("  idle backends, mean of the last 5 minutes (max over the window): "
                  + "; ".join(f"{g} {m:.1f} ({x})" for g, (m, x) in seen.items()))  # fmt: skip


async def redis_users(redis: Redis, users: set[str]) -> list[str]:
    """The ACL user of every Redis client connected as one of `users`."""
    return [c["user"] for c in await redis.client_list() if c.get("user") in users]


async def redis_by_hub(run: Run, redis: Redis, users: set[str]) -> None:
    """Redis clients per hub: the clients' ACL users are the tenants', and every hub says in its
    status.json which tenants it runs (the clients all come through one relay in
    `--placement docker`, so their addresses do not tell the hubs apart)."""
    from tests.master.test_hub_containers import in_hubs

    where = await asyncio.to_thread(in_hubs, run.run_dir / "clients")
    prefix = fleet_prefix(run.fleet)
    tenants: dict[str, int] = {}
    clients: dict[str, int] = {}
    for hub in where.values():
        tenants[hub] = tenants.get(hub, 0) + 1
    for user in await redis_users(redis, users):
        hub = where.get(user.removeprefix(prefix), "no hub")
        clients[hub] = clients.get(hub, 0) + 1
    print("  Redis clients per hub: " + ", ".join(
        f"{hub} {clients.get(hub, 0)} ({tenants.get(hub, 0)} tenants)"
        for hub in sorted({*tenants, *clients}, key=lambda h: (len(h), h))
    ))  # fmt: skip


def runtime_kind(run: Run) -> str:
    return "containers" if run.engine else "processes"


def engine_says(mib: float | None) -> str:
    return "" if mib is None else f" (the engine's memory figure {mib:.1f} MiB)"


def report(label: str, f: Figures, *, hubs: int, kind: str) -> None:
    n = f.tenants
    engine = (
        "" if f.engine is None else f" (engine {f.engine:.1f} MiB, {f.engine / n:.2f} per tenant)"
    )
    print(f"  {label}: {n} tenants in {hubs} {kind}: PSS {f.pss:.1f} MiB ({f.pss / n:.2f} MiB"
          f" per tenant){engine}; idle PostgreSQL backends mean {f.backends} (max {f.backends_max}),"
          f" PSS {f.backends_pss:.1f} MiB; Redis clients {f.redis_clients},"
          f" their connections and keys {f.redis_bytes / 2**20:.2f} MiB")  # fmt: skip


def ratios(sh: Figures, dd: Figures) -> None:
    def per(value: float, n: int) -> float:
        return value / n if n else 0.0

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "n/a"

    rows = [
        ("PSS MiB per tenant", per(sh.pss, sh.tenants), per(dd.pss, dd.tenants)),
        *([("engine MiB per tenant", per(sh.engine, sh.tenants), per(dd.engine, dd.tenants))]
          if sh.engine is not None and dd.engine is not None else []),
        ("idle PG backends per tenant", per(sh.backends_max, sh.tenants),
         per(dd.backends_max, dd.tenants)),
        ("Redis clients per tenant", per(sh.redis_clients, sh.tenants),
         per(dd.redis_clients, dd.tenants)),
        ("Redis KiB per tenant", per(sh.redis_bytes, sh.tenants) / 1024,
         per(dd.redis_bytes, dd.tenants) / 1024),
        ("/start p50 ms", sh.p50, dd.p50),
        ("/start p95 ms", sh.p95, dd.p95),
        ("CPU ms per update", sh.cpu_ms, dd.cpu_ms),
    ]  # fmt: skip
    print(f"  {'shared / dedicated':<30} {'shared':>9} {'dedicated':>10} {'ratio':>7}")
    for name, a, b in rows:
        print(f"  {name:<30} {a:9.3f} {b:10.3f} {ratio(a, b):>7}")


def kill_runtimes(run_dir: Path) -> None:
    live = {**pids(run_dir, hubs=True), **pids(run_dir, hubs=False)}
    for pid in live.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in live.values()):
        time.sleep(0.2)
    for pid in live.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def cleanup(
    fleet: str, db: str, run_dir: Path, admin: asyncpg.Connection, redis: Redis
) -> None:
    await asyncio.to_thread(kill_runtimes, run_dir)
    await asyncio.to_thread(shutil.rmtree, run_dir, ignore_errors=True)
    await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(db)} WITH (FORCE)")
    prefix = fleet_prefix(fleet)
    for row in await admin.fetch(
        "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", prefix
    ):
        await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(row['rolname'])}")
    names = [u.decode() if isinstance(u, bytes) else u for u in await redis.acl_users()]
    users = [u for u in names if u.startswith(prefix)]
    for user in users:
        await redis.acl_deluser(user)
        await redis.hdel(ACL_OWNERS_KEY, user)
    # Tenant keys are hash-tagged: {<fleet>_client_001}:...
    batch = [k async for k in redis.scan_iter(match=f"{{{prefix}*", count=1000)]
    for i in range(0, len(batch), 500):
        await redis.unlink(*batch[i : i + 500])
    with contextlib.suppress(Exception):
        await redis.acl_save()
    print(f"cleaned up: {len(users)} ACL users, {len(batch)} keys, database {db}, roles {prefix}*")


async def main(args: argparse.Namespace) -> None:
    server_dsn, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    fleet = f"bfleet{os.getpid()}"
    db = f"botfleet_bench_fleet_{os.getpid()}"
    run_dir = Path(f"/tmp/botfleet-bench-fleet-{os.getpid()}")  # noqa: S108 - scratch
    await asyncio.to_thread(run_dir.mkdir)  # 0755: the runtimes' own uids reach their folders
    admin = await asyncpg.connect(server_dsn)
    redis = Redis.from_url(redis_url)
    emulator = EmulatorServer()
    port, api_token = free_port(), secrets.token_urlsafe(16)
    run: Run | None = None
    engine: Engine | None = None
    master = None
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or kill: to the cleanup below
        asyncio.get_running_loop().add_signal_handler(sig, main_task.cancel)
    try:
        if args.placement == "docker":
            engine = await Engine.up(fleet, run_dir)
        # Containers reach the emulator on their network's gateway.
        await emulator.start(engine.gateway if engine else "127.0.0.1", 0)
        run = Run(
            fleet, db, parse_dsn(server_dsn).with_database(db), run_dir,
            f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {api_token}"},
            EmulatorClient(emulator.base_url), engine,
        )  # fmt: skip
        await admin.execute(f"CREATE DATABASE {quote_ident(db)}")
        env = {
            **os.environ,
            "DATABASE_URL": run.dsn,
            "FLEET_NAME": fleet,
            "TELEGRAM_API_URL": emulator.base_url,
            "ENCRYPTION_KEYS": generate_key(),
            "MASTER_API_TOKEN": api_token,
            "MASTER_API_PORT": str(port),
            "DEPLOY_BACKEND": args.placement,
            "SALES_PLANS_FILE": str(plans_file(run_dir)),
            "HUB_CAPACITY": str(args.hub_capacity),
            "CLIENTS_DIR": str(run_dir / "clients"),
            "BACKUPS_DIR": str(run_dir / "backups"),
            "MASTER_BOT_TOKEN": "",
            "WEBHOOK_BASE_URL": "",
            "LOG_LEVEL": "WARNING",
        }
        if engine is not None:
            env |= await docker_env(engine, run, redis_url)
            # Telegram retries a webhook it could not deliver for a long while; the emulator
            # gives up after 1 s by default, shorter than a hub container's start-up.
            emulator.webhook_max_attempts = 300
        log = (run_dir / "master.log").open("wb")
        master = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "master_bot", cwd=ROOT, env=env, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
        await wait_http(f"{run.api}/health")
        began = time.perf_counter()
        await bench(run, args, admin, redis)
        print(f"  whole run {time.perf_counter() - began:.0f} s;"
              f" max_connections {await admin.fetchval('SHOW max_connections')}")  # fmt: skip
    finally:
        with contextlib.suppress(Exception):
            tail = (run_dir / "master.log").read_text(errors="replace").splitlines()[-5:]
            if tail:
                print("master log (last lines):", *tail, sep="\n  ")
        if master is not None and master.returncode is None:
            master.terminate()
            try:
                await asyncio.wait_for(master.wait(), 30)
            except TimeoutError:
                master.kill()
                await master.wait()
        if engine is not None:  # before the database goes: the bots stop first
            removed = await asyncio.shield(engine.down(fleet))
            print(f"removed {removed} containers, Caddy, the network {engine.network}")
        await asyncio.shield(cleanup(fleet, db, run_dir, admin, redis))
        if run is not None:
            await run.emulator.close()
        await emulator.stop()
        await redis.aclose()
        await admin.close()


async def docker_env(engine: Engine, run: Run, redis_url: str) -> dict[str, str]:
    """The master's settings for `--placement docker`: its containers on the run's network, the
    servers on the host's loopback through relays on the gateway, webhooks through Caddy."""
    await wait_status(f"http://{engine.caddy_ip}:8443/", 404)
    return {
        "CLIENT_IMAGE": engine.image,
        "CLIENT_NETWORK": engine.network,
        "TENANT_DATABASE_URL": await engine.relay(run.dsn),
        "TENANT_REDIS_URL": await engine.relay(redis_url),
        "WEBHOOK_BASE_URL": await engine.relay(f"http://{engine.caddy_ip}:8443", on="127.0.0.1"),
        "CADDY_ADMIN_URL": f"http://{engine.caddy_ip}:2019",
        "WEBHOOK_PROXY_LISTEN": ":8443",
    }


async def wait_status(url: str, status: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as response:
                    if response.status == status:
                        return
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer {status} within {timeout:.0f} s")
            await asyncio.sleep(0.3)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--base", type=int, default=20, help="tenants at the first memory point")
    parser.add_argument("--dedicated", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4, help="provisioning calls at once")
    parser.add_argument("--hub-capacity", type=int, default=200)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--busy", type=float, default=0.05, help="share of tenants with traffic")
    parser.add_argument("--rate", type=float, default=0.5, help="/start per s per busy tenant")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle sampling")
    parser.add_argument(
        "--idle-long", type=float, default=0.0, metavar="SECONDS",
        help="at the end, backends every 30 s for SECONDS; the mean of the last 5 minutes",
    )  # fmt: skip
    parser.add_argument(
        "--provision-for", type=float, metavar="SECONDS",
        help="stop provisioning after SECONDS and measure the tenants made by then",
    )  # fmt: skip
    parser.add_argument("--walkers", type=int, default=3, help="tenants walked for the mix")
    parser.add_argument("--mix-users", type=int, default=40, help="customers per walker")
    parser.add_argument(
        "--placement", choices=["process", "docker"], default="process",
        help="DEPLOY_BACKEND of the master: hub processes that poll, or hub containers with"
        " webhooks through Caddy",
    )  # fmt: skip
    arguments = parser.parse_args()
    if arguments.tenants < 2:
        raise SystemExit("--tenants must be at least 2")
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(main(arguments))
