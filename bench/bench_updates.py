"""CPU per update of one client bot: /start, the calendar and the booking confirmation.

    python -m bench.bench_updates [--users 120] [--compare REV | --webhook] [--profile FILE]

A real `python -m client_bot` process (its tenant's schema and login role, its Redis ACL user)
polls the project's Telegram emulator; simulated customers walk the whole booking dialog, one
step for all of them at a time: /start → Book → a service (the month calendar) → a day → a time
→ the phone → Confirm. For each step the bot process's CPU time (utime + stime from /proc) over
the step is divided by the updates of that step. The mix is /start, calendar and confirm in
equal parts: updates/s per core = 1000 / its mean CPU ms. Polling (getUpdates), the Bot API
calls, the admin's notice of each booking and the workers are all in the process's CPU, as in
production.

--compare REV also runs the code of git revision REV (its client_bot, core, database and
middlewares, unpacked into a temporary folder; its tenant made by its own migrations) side by
side with the working tree, each step measured on one bot then on the other, and prints both
and their ratio.
--webhook also runs a second bot of the working tree that takes its updates by webhook (aiogram's
handler on the bot's own aiohttp server, WEBHOOK_BASE_URL set, the emulator POSTing each update
with the bot's secret, as Telegram does) side by side with the polling one: the cost of the
webhook path itself, without a proxy or containers in between.
--profile FILE runs the working tree's bot under cProfile and writes FILE (read it with
`python -m pstats FILE`); the figures of such a run include cProfile's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import asyncpg
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from redis.asyncio import Redis

from bench.scratch import ScratchTenant, free_port
from client_bot.callbacks import ConfirmAction, ConfirmCb, MenuAction, MenuCb
from client_bot.webhook import webhook_path
from database.dsn import parse_dsn
from database.redis_tenants import remove_tenant_redis
from database.tenants import drop_tenant_database
from telegram_emulator import EmulatorClient, EmulatorServer, SentMessage

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("client_bot", "core", "database", "middlewares")
ADMIN = 7100001
FIRST_USER = 7200000
MIX = ("start", "calendar", "confirm")
STEPS = ("start", "book", "calendar", "day", "time", "phone", "confirm")
TICK = os.sysconf("SC_CLK_TCK")
WARM = 5  # customers walking first, unmeasured
BEFORE = ("client_71000000011", "7100011:bench-updates-before-abcdefgh")
AFTER_TOKEN = "7100012:bench-updates-after-abcdefghi"
# `python -m cProfile -m client_bot` writes nothing: the bot ends with os._exit (exit_flushed).
PROFILED = (
    "import cProfile, runpy, sys, core.logs; core.logs.exit_flushed = sys.exit;"
    " cProfile.run(\"runpy.run_module('client_bot', run_name='__main__')\", sys.argv[1])"
)
CONCURRENCY = 40  # customers acting at once (the emulator queues their updates for the bot)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Step:
    updates: int = 0
    cpu: float = 0.0
    wall: float = 0.0

    @property
    def cpu_ms(self) -> float:
        return self.cpu * 1000 / self.updates if self.updates else float("nan")


@dataclass
class Run:
    label: str
    steps: dict[str, Step] = field(default_factory=dict)

    def mix_ms(self) -> float:
        return sum(self.steps[k].cpu_ms for k in MIX) / len(MIX)

    def per_core(self) -> float:
        return 1000 / self.mix_ms()


# Run in a child process inside the tree being measured (`python -c`), so that the schema and
# the seeded rows are those of that tree's own migrations and store.
SETUP = """
import asyncio, json, os, sys
from datetime import time
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from client_bot.store import Store
from database.dsn import parse_dsn
from database.migrator import migrate_control
from database.pool import create_pool
from database.redis_tenants import create_tenant_redis_user
from database.tenants import create_tenant_database


async def setup(db_name, tenant_id):
    server_dsn, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    dsn = parse_dsn(server_dsn).with_database(db_name)
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    await admin.close()
    conn = await asyncpg.connect(dsn)
    await migrate_control(conn)
    tenant, _ = await create_tenant_database(conn, tenant_id, server_dsn=dsn)
    await conn.close()
    admin_redis = Redis.from_url(redis_url)
    user = await create_tenant_redis_user(admin_redis, tenant_id, server_url=redis_url)
    await admin_redis.aclose()
    # One 30-minute service, open every day 09:00-21:00 in 30-minute steps: every customer of
    # the walk gets a time of their own.
    pool = await create_pool(tenant.dsn, min_size=0, max_size=2)
    store = Store(pool)
    await store.update_business(
        name="Bench salon", welcome_text="Welcome!", locale="en", slot_step=30,
        lead_time_min=0, horizon_days=60,
    )
    for weekday in range(7):
        await store.set_hours(weekday, [(time(9), time(21))])
    await store.add_service("Haircut", Decimal("1500"), 30)
    await pool.close()
    print(json.dumps({"dsn": tenant.dsn, "redis_url": user.url}))


asyncio.run(setup(*sys.argv[1:]))
"""


@asynccontextmanager
async def bench_tenant(tree: Path, tenant_id: str, label: str) -> AsyncIterator[ScratchTenant]:
    """A seeded tenant (schema, role, Redis user) in a scratch database, made by `tree`'s code;
    everything is dropped afterwards."""
    server_dsn, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    db_name = f"botfleet_bench_{label}_{os.getpid()}"
    made = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SETUP, db_name, tenant_id, cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await made.communicate()
    try:
        if made.returncode != 0:
            raise RuntimeError(f"the tenant of {label} was not set up (exit {made.returncode})")
        values = json.loads(out.decode().strip().splitlines()[-1])
        yield ScratchTenant(tenant_id, values["dsn"], values["redis_url"])
    finally:
        admin_redis = Redis.from_url(redis_url)
        await remove_tenant_redis(admin_redis, tenant_id, drop_data=True)
        await admin_redis.aclose()
        with suppress(asyncpg.InvalidCatalogNameError):
            conn = await asyncpg.connect(parse_dsn(server_dsn).with_database(db_name))
            await drop_tenant_database(conn, tenant_id, drop_data=True)
            await conn.close()
        admin = await asyncpg.connect(server_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()


class Walk:
    """Customers walking the booking dialog against one running bot."""

    def __init__(
        self, client: EmulatorClient, token: str, users: Sequence[int], offset: int = 0
    ) -> None:
        self.client, self.token, self.users = client, token, list(users)
        self.offset = offset  # this walk's customers come after `offset` others (own slots)
        self.days = 1
        self.last: dict[int, SentMessage] = {}
        self.gate = asyncio.Semaphore(CONCURRENCY)

    async def _act(
        self, user: int, act: Callable[[], Awaitable[object]], ok: Callable[[SentMessage], bool]
    ) -> None:
        last = self.last.get(user)
        after = last.message_id if last is not None else 0
        async with self.gate:
            await act()
        self.last[user] = await self.client.wait_for_message(
            self.token, user, predicate=ok, after_message_id=after, timeout=60
        )

    async def step(self, name: str, pid: int | None) -> Step:
        """Every customer takes step `name`; the bot's CPU seconds over it (with a pid)."""
        actions = [self._action(name, user, i) for i, user in enumerate(self.users)]
        began_cpu = cpu_seconds(pid) if pid else 0.0
        began = time.perf_counter()
        await asyncio.gather(
            *(self._act(u, act, ok) for u, (act, ok) in zip(self.users, actions, strict=True))
        )
        wall = time.perf_counter() - began
        await asyncio.sleep(0.3)  # work after the reply (the buttons removed, admin notices)
        cpu = cpu_seconds(pid) - began_cpu if pid else 0.0
        return Step(len(self.users), cpu, wall)

    def _action(
        self, name: str, user: int, index: int
    ) -> tuple[Callable[[], Awaitable[object]], Callable[[SentMessage], bool]]:
        """What the customer does, and how their answer is recognised."""
        c, token = self.client, self.token
        last = self.last.get(user)

        def click(data: str) -> Callable[[], Awaitable[object]]:
            assert last is not None
            return lambda: c.click(token, user, last.message_id, callback_data=data)

        def has_button(prefix: str) -> Callable[[SentMessage], bool]:
            return lambda m: any(d.startswith(prefix) for d in _data(m))

        if name == "start":
            return (
                lambda: c.send_message(token, user, "/start", language_code="en"),
                has_button(MenuCb(action=MenuAction.book).pack()),
            )
        assert last is not None, f"{name} before /start"
        buttons = _data(last)
        if name == "book":
            return click(MenuCb(action=MenuAction.book).pack()), has_button("bs:")
        if name == "calendar":
            return click(next(d for d in buttons if d.startswith("bs:"))), has_button("bc:")
        if name == "day":  # customers spread over the days (today's times may be over)
            days = [d for d in buttons if _is_day(d)]
            days = days[1:] or days
            self.days = len(days)
            return click(days[(self.offset + index) % len(days)]), has_button("bt:")
        if name == "time":  # then over each day's times
            times = [d for d in buttons if d.startswith("bt:")]
            slot = (self.offset + index) // self.days
            if slot >= len(times):
                raise SystemExit("more customers than free times this month: lower --users")
            return click(times[slot]), lambda m: "phone" in m.plain_text
        if name == "phone":
            phone = f"+7 900 {user % 1000:03d}-00-00"
            return (
                lambda: c.send_message(token, user, phone, language_code="en"),
                has_button(ConfirmCb(action=ConfirmAction.confirm).pack()),
            )
        if name == "confirm":
            return (
                click(ConfirmCb(action=ConfirmAction.confirm).pack()),
                lambda m: "You are booked" in m.plain_text,
            )
        raise ValueError(name)


def _data(message: SentMessage) -> list[str]:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return [str(b.get("callback_data", "")) for row in rows for b in row]


def _is_day(data: str) -> bool:
    """A calendar day button: bc:<service>:<day>:<month>:<staff> with day != 0."""
    parts = data.split(":")
    return parts[0] == "bc" and len(parts) >= 3 and parts[2] != "0"


@asynccontextmanager
async def running_bot(
    tree: Path,
    tenant_id: str,
    token: str,
    emulator: EmulatorServer,
    client: EmulatorClient,
    profile: Path | None,
    webhook: bool = False,
) -> AsyncIterator[int]:
    """`python -m client_bot` of `tree` for a fresh tenant, answering; yields its pid. With
    `webhook`, the bot serves a webhook on a free local port and the emulator delivers to it."""
    async with bench_tenant(tree, tenant_id, f"updates_{tenant_id[-2:]}") as tenant:
        await client.register_bot(token, f"bench{tenant_id[-4:]}_bot")
        env = {
            "PATH": os.environ.get("PATH", ""), "TENANT_ID": tenant_id, "BOT_TOKEN": token,
            "DATABASE_URL": tenant.dsn, "REDIS_URL": tenant.redis_url,
            "TELEGRAM_API_URL": emulator.base_url, "LOG_LEVEL": "WARNING",
            "ADMIN_IDS": str(ADMIN), "LOCALE": "en",
        }  # fmt: skip
        if webhook:  # what the master does for a bot with WEBHOOK_BASE_URL, minus the proxy
            port, secret = free_port(), secrets.token_urlsafe(24)
            base = f"http://127.0.0.1:{port}"
            env |= {"WEBHOOK_BASE_URL": base, "WEBHOOK_SECRET": secret,
                    "WEBHOOK_LISTEN": f"127.0.0.1:{port}"}  # fmt: skip
            async with Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(
                emulator.base_url))) as bot:  # fmt: skip
                await bot.set_webhook(f"{base}{webhook_path(tenant_id)}", secret_token=secret)
        command = [sys.executable, "-m", "client_bot"]
        if profile is not None:
            command = [sys.executable, "-c", PROFILED, str(profile)]
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=tree, env=env, stdout=asyncio.subprocess.DEVNULL
        )
        try:
            await client.send_message(token, ADMIN, "/start", language_code="en")
            await client.wait_for_message(token, ADMIN, contains="", timeout=120)
            yield proc.pid
        finally:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()


def baseline_tree(rev: str, into: Path) -> Path:
    """The bot's packages at `rev`, unpacked (git archive) into `into`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, *PACKAGES],  # noqa: S607 - git from PATH, as make does
        cwd=ROOT, check=True, capture_output=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def report(runs: list[Run]) -> None:
    pair = len(runs) == 2
    head = f"{'update (CPU ms per update of the bot process)':<48}"
    print(head + "".join(f"{r.label:>14}" for r in runs) + (f"{'ratio':>9}" if pair else ""))
    for name in STEPS:
        line = f"{name + (' *' if name in MIX else ''):<48}"
        line += "".join(f"{r.steps[name].cpu_ms:14.2f}" for r in runs)
        if pair:
            line += f"{runs[0].steps[name].cpu_ms / runs[1].steps[name].cpu_ms:8.1f}x"
        print(line)
    line = f"{'mix * (start, calendar, confirm): ms per update':<48}"
    print(line + "".join(f"{r.mix_ms():14.2f}" for r in runs))
    line = f"{'mix: updates/s per core':<48}" + "".join(f"{r.per_core():14.0f}" for r in runs)
    if pair:
        line += f"{runs[1].per_core() / runs[0].per_core():8.1f}x"
    print(line)
    for r in runs:
        total = sum(s.updates for s in r.steps.values())
        wall = sum(s.wall for s in r.steps.values())
        cpu = sum(s.cpu for s in r.steps.values())
        print(
            f"{r.label}: {total} updates in {wall:.1f} s wall ({total / wall:.0f}/s; the "
            f"emulator and the customers share the cores), bot CPU {cpu:.2f} s"
        )


async def main(users: int, compare: str | None, profile: Path | None, webhook: bool) -> None:
    emulator = EmulatorServer()
    emulator.webhook_max_attempts = 300  # as Telegram, keep delivering while a bot starts
    await emulator.start()
    client = EmulatorClient(emulator.base_url)
    runs: list[Run] = []
    try:
        async with AsyncExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_updates_")))
            bots = [("working tree", ROOT, "client_71000000012", AFTER_TOKEN, profile, False)]
            if compare is not None:
                bots.insert(0, (compare[:12], baseline_tree(compare, tmp), *BEFORE, None, False))
            elif webhook:
                bots = [("polling", ROOT, *BEFORE, None, False),
                        ("webhook", ROOT, "client_71000000012", AFTER_TOKEN, profile, True)]  # fmt: skip
            walks: list[tuple[Walk, int]] = []
            ids = [FIRST_USER + i for i in range(users + WARM)]
            for label, tree, tenant_id, token, prof, hooked in bots:
                pid = await stack.enter_async_context(
                    running_bot(tree, tenant_id, token, emulator, client, prof, hooked)
                )
                warm = Walk(client, token, ids[:WARM])  # answers, locales, caches: not measured
                for name in STEPS:
                    await warm.step(name, None)
                walks.append((Walk(client, token, ids[WARM:], offset=WARM), pid))
                runs.append(Run(label))
            # Both bots run side by side, each step measured on one then on the other, so that
            # the load of this shared machine weighs on both alike.
            for name in STEPS:
                for run, (walk, pid) in zip(runs, walks, strict=True):
                    run.steps[name] = await walk.step(name, pid)
    finally:
        await client.close()
        await emulator.stop()
    report(runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=120, help="customers walking at once")
    parser.add_argument("--compare", metavar="REV", help="also run git revision REV, side by side")
    parser.add_argument("--webhook", action="store_true", help="polling and webhook side by side")
    parser.add_argument("--profile", type=Path, help="cProfile the working tree's bot to FILE")
    args = parser.parse_args()
    asyncio.run(main(args.users, args.compare, args.profile, args.webhook))
