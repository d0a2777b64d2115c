"""Updates by webhook through a real reverse proxy (issue 13.3, docs/scaling.md).

The production path, with nothing faked but Telegram: the master's routes are rendered and
loaded into a real Caddy (Debian's, started here on free ports) through its admin API, the
master's gateway sets the webhook on the Telegram emulator, which POSTs each update with the
bot's secret to Caddy, which forwards it to a real `python -m client_bot` process serving
aiogram's webhook handler. Then the attacks: a wrong or missing secret through the proxy (401,
nothing handled, counted), a token guessed in the path (404 at the proxy and at the bot).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from client_bot.clock import ManualClock
from client_bot.hub import STATUS, TENANTS, Hub, TenantState
from client_bot.store import Store
from core.secrets import SecretBox, generate_key
from core.settings import ClientBotSettings
from database.pool import create_pool
from master_bot.deploy.memory import MemoryBackend
from master_bot.deps import Deps
from master_bot.fleet import Fleet
from master_bot.ingress import ensure_secret, publish, reload_routes, render_caddyfile, withdraw
from master_bot.provision import Provisioner, ProvisionOrder
from master_bot.spec import SpecError, build_spec, webhook_url
from master_bot.store import TenantRecord, TenantStatus, TenantStore
from master_bot.telegram import TelegramGateway
from tests.client.conftest import T0, Customer, TenantCreds, seed_business
from tests.client.test_hub import (  # noqa: F401 (hub_tenant: a fixture)
    assign,
    hub_tenant,
    status,
    until,
)
from tests.client.test_process import BotProcess, contract_env
from tests.master.test_spec import config as master_config
from tests.master.test_spec import tenant as tenant_row
from tests.support import free_port, wait_until

TOKEN = "6000013:test-webhook-bot-token-abcdefghijk"
SECRET = "webhook-secret-of-this-test-0123456789"


def caddy_binary() -> str:
    """Debian's caddy, installed by scripts/caddy.sh (make test runs it): never skipped."""
    path = os.environ.get("BOTFLEET_CADDY") or shutil.which("caddy")
    if not path:
        out = subprocess.run(
            ["scripts/caddy.sh", "up"],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        path = out.strip().rpartition("=")[2]
    return path


@dataclass
class Caddy:
    proc: asyncio.subprocess.Process
    port: int
    admin: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def caddy(tmp_path: Path) -> AsyncIterator[Caddy]:
    port, admin = free_port(), free_port()
    config = master_config(
        clients_dir=tmp_path / "clients",
        caddy_admin_url=f"http://127.0.0.1:{admin}",
        webhook_proxy_listen=f":{port}",
    )
    first = tmp_path / "Caddyfile"
    first.write_text(render_caddyfile(config, {}))  # no routes yet: the master loads them
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = await asyncio.create_subprocess_exec(
        caddy_binary(), "run", "--config", str(first), "--adapter", "caddyfile",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server = Caddy(proc, port, admin)

    async def listening() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{server.url}/") as r:
                return r.status == 404
        except aiohttp.ClientError:
            return False

    try:
        await wait_until(listening, timeout=20)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 20)


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


class Routes:
    """The master's store, as far as the routes need it: the live tenants."""

    def __init__(self, *rows: Any) -> None:
        self.rows = list(rows)

    async def live(self) -> list[Any]:
        return self.rows


async def post(url: str, body: dict[str, Any], secret: str | None) -> int:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        return r.status


def start_update(user_id: int, update_id: int) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Mallory"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_800_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Mallory"},
            "from": user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def test_start_through_caddy_wrong_secret_refused_and_no_token_in_the_url(
    emulator, tenant, caddy, tmp_path
):
    server, client = emulator
    await client.register_bot(TOKEN, "webhook_test_bot")
    bot_port = free_port()
    box = SecretBox(generate_key())
    # The tenant as the master holds it: its secret encrypted, a process backend's port.
    row = tenant_row(
        box,
        "basic",
        tenant_id=tenant.tenant_id,
        number=bot_port - 20000,
        bot_token_enc=box.encrypt(tenant.tenant_id, TOKEN),
        db_password_enc=box.encrypt(tenant.tenant_id, "db-secret"),
        redis_password_enc=box.encrypt(tenant.tenant_id, "redis-secret"),
        webhook_secret_enc=box.encrypt(tenant.tenant_id, SECRET),
    )
    config = master_config(
        clients_dir=tmp_path / "clients",
        telegram_api_url=server.base_url,
        webhook_base_url=caddy.url,
        webhook_port_base=20000,
        caddy_admin_url=f"http://127.0.0.1:{caddy.admin}",
        webhook_proxy_listen=f":{caddy.port}",
    )
    spec = build_spec(config, box, row)
    assert spec.env["WEBHOOK_SECRET"] == SECRET
    assert spec.env["WEBHOOK_LISTEN"] == f"127.0.0.1:{bot_port}"
    assert spec.env["WEBHOOK_BASE_URL"] == caddy.url

    # The master's routes, loaded into the running Caddy through its admin API.
    deps = cast(Deps, SimpleNamespace(config=config, store=Routes(row)))
    caddyfile = await reload_routes(deps)
    assert f"handle /tg/{tenant.tenant_id} {{" in caddyfile
    assert (tmp_path / "clients" / "caddy" / "Caddyfile").read_text() == caddyfile
    assert TOKEN not in caddyfile and SECRET not in caddyfile

    env = contract_env(tenant, server.base_url, BOT_TOKEN=TOKEN)
    env.update({k: spec.env[k] for k in ("WEBHOOK_BASE_URL", "WEBHOOK_SECRET", "WEBHOOK_LISTEN")})
    bot = BotProcess(env)
    await bot.start()

    async def bot_listens() -> bool:  # (the master sets the webhook once the runtime is up)
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", bot_port)
        except OSError:
            return False
        writer.close()
        return True

    try:
        await wait_until(bot_listens, timeout=60)
        # The master's gateway sets the webhook: the tenant's path, never its token.
        url = webhook_url(config, tenant.tenant_id)
        await TelegramGateway(server.base_url).set_webhook(TOKEN, url, SECRET)
        info = await client.webhook_info(TOKEN)
        assert info["url"] == f"{caddy.url}/tg/{tenant.tenant_id}"
        assert TOKEN not in info["url"] and TOKEN.split(":")[1] not in info["url"]
        with pytest.raises(ValueError, match="token"):
            await TelegramGateway(server.base_url).set_webhook(
                TOKEN, f"{caddy.url}/{TOKEN}", SECRET
            )

        # A customer's /start: emulator -> Caddy -> the bot, answered.
        anna = Customer(client, TOKEN, 1301, "Анна")
        before = await anna.seen()
        await anna.send("/start")
        await anna.wait("Добро пожаловать", after=before, timeout=60)
        assert await client.calls(TOKEN, "getUpdates") == []  # it never polled

        async def delivered() -> bool:  # the bot's 200 may come just after its answer
            return (await client.webhook_info(TOKEN))["pending_update_count"] == 0

        await wait_until(delivered, timeout=10)

        # Attacks through the proxy, each a /start forged as Anna (whose chat the bot can
        # answer): a wrong secret, none, almost the right one, then the token in the path.
        answered_anna = len(await client.messages(TOKEN, anna.id))
        path = f"{caddy.url}/tg/{tenant.tenant_id}"
        forged = start_update(anna.id, 900001)
        assert await post(path, forged, "wrong-secret-0123456789") == 401
        assert await post(path, forged, None) == 401
        assert await post(path, forged, SECRET[:-1]) == 401
        assert await post(f"{caddy.url}/tg/{TOKEN}", forged, SECRET) == 404
        assert await post(f"{caddy.url}/bot{TOKEN}", forged, SECRET) == 404
        direct = f"http://127.0.0.1:{bot_port}"
        assert await post(f"{direct}/tg/{TOKEN}", forged, SECRET) == 404
        assert await post(f"{direct}/tg/client_999999", forged, SECRET) == 404
        # Nothing of it was handled: the bot answers the next customer, and Anna got nothing.
        boris = Customer(client, TOKEN, 1302, "Борис")
        before = await boris.seen()
        await boris.send("/start")
        await boris.wait("Добро пожаловать", after=before, timeout=30)
        assert len(await client.messages(TOKEN, anna.id)) == answered_anna
        # The same forged update with the right secret is handled (answered before the 200):
        # the refusals were the secret's.
        assert await post(path, forged, SECRET) == 200
        assert len(await client.messages(TOKEN, anna.id)) == answered_anna + 1
    finally:
        output = (await bot.stop()).decode()
    # Counted and logged, without the secret or the token.
    assert output.count(f"webhook of {tenant.tenant_id}: a wrong secret token refused") == 2
    assert output.count(f"webhook of {tenant.tenant_id}: no secret token refused") == 1
    assert SECRET not in output and TOKEN not in output


def test_the_spec_polls_without_a_secret_or_in_a_hub() -> None:
    box = SecretBox(generate_key())
    config = master_config(webhook_base_url="https://bots.example.com", webhook_port_base=0)
    row = tenant_row(box, "basic", webhook_secret_enc=box.encrypt("client_0000000042", SECRET))
    env = build_spec(config, box, row).env
    assert env["WEBHOOK_LISTEN"] == "0.0.0.0:8080"
    assert webhook_url(config, row.tenant_id) == "https://bots.example.com/tg/client_0000000042"
    # In a hub container: its secret, and no WEBHOOK_LISTEN (the hub listens for all).
    shared = tenant_row(box, "basic", placement="shared", webhook_secret_enc=row.webhook_secret_enc)
    env = build_spec(config, box, shared).env
    assert env["WEBHOOK_SECRET"] == SECRET and "WEBHOOK_LISTEN" not in env
    # Not yet given a secret, or placed in a hub process (which polls): explicitly long
    # polling, so a WEBHOOK_BASE_URL in a stray .env cannot decide it.
    processes = dataclasses.replace(config, webhook_port_base=20000)
    for settings, other in ((config, tenant_row(box, "basic")), (processes, shared)):
        env = build_spec(settings, box, other).env
        assert env["WEBHOOK_BASE_URL"] == "" and "WEBHOOK_SECRET" not in env
    # A process backend's port per tenant: refused rather than wrapped past 65535.
    far = dataclasses.replace(row, number=50_000)
    with pytest.raises(SpecError, match="no webhook port"):
        build_spec(
            master_config(webhook_base_url="https://b.example", webhook_port_base=20000), box, far
        )
    # Webhooks off in the master: the contract is as before (no re-deploy of every bot).
    assert "WEBHOOK_BASE_URL" not in build_spec(master_config(), box, row).env


async def test_a_hub_serves_its_tenants_webhooks_on_one_port_behind_caddy(
    emulator,
    hub_tenant,  # noqa: F811 - the fixture imported above
    caddy,
    tmp_path,
):
    """Two tenants of one hub, one port, routed by path: each answered by its own bot, and one
    tenant's secret is refused on its neighbour's path."""
    server, client = emulator
    a, b = await hub_tenant(), await hub_tenant()
    secrets = {a.tenant_id: SECRET + "-a", b.tenant_id: SECRET + "-b"}
    hub_port = free_port()
    config = master_config(
        clients_dir=tmp_path / "clients",
        webhook_base_url=caddy.url,
        caddy_admin_url=f"http://127.0.0.1:{caddy.admin}",
        webhook_proxy_listen=f":{caddy.port}",
    )
    text = render_caddyfile(config, {t.tenant_id: f"127.0.0.1:{hub_port}" for t in (a, b)})
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{config.caddy_admin_url}/load",
            data=text.encode(),
            headers={"Content-Type": "text/caddyfile"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
    hub = Hub(
        tmp_path / "hub", capacity=10, clock=ManualClock(T0), webhook_listen=f"127.0.0.1:{hub_port}"
    )
    (hub.folder / TENANTS).mkdir(parents=True)
    for t in (a, b):
        path = assign(hub, t, server.base_url)
        with path.open("a") as fh:
            fh.write(f"WEBHOOK_BASE_URL={caddy.url}\nWEBHOOK_SECRET={secrets[t.tenant_id]}\n")
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(0.2, stop))
    try:
        for t in (a, b):
            await until(hub, t.tenant_id, TenantState.RUNNING)
            url = webhook_url(config, t.tenant_id)
            await TelegramGateway(server.base_url).set_webhook(t.token, url, secrets[t.tenant_id])
        for t, user in ((a, 1401), (b, 1402)):
            customer = t.customer(user)
            before = await customer.seen()
            await customer.send("/start")
            await customer.wait("Добро пожаловать", after=before, timeout=30)
            assert await client.calls(t.token, "getUpdates") == []
        # A's secret on B's path: refused, counted for B, nothing handled for B.
        forged = start_update(1402, 910001)
        seen_b = len(await client.messages(b.token, 1402))
        assert await post(f"{caddy.url}/tg/{b.tenant_id}", forged, secrets[a.tenant_id]) == 401
        assert hub.webhooks is not None and hub.webhooks.refused == {b.tenant_id: 1}
        assert await post(f"{caddy.url}/tg/{b.tenant_id}", forged, secrets[b.tenant_id]) == 200
        assert len(await client.messages(b.token, 1402)) == seen_b + 1
        # A's token revoked at @BotFather while A runs: by webhook nothing comes from
        # getUpdates, so the first call of A's bot that Telegram refuses (the answer to an update
        # still in flight) marks A for the master and A stops taking updates; B runs on.
        await client.revoke_bot(a.token)
        await post(
            f"{caddy.url}/tg/{a.tenant_id}", start_update(1401, 910002), secrets[a.tenant_id]
        )
        await until(hub, a.tenant_id, TenantState.TOKEN_REFUSED)
        assert "refused" in status(hub)[a.tenant_id]["detail"]
        assert a.token not in (hub.folder / STATUS).read_text()
        assert await post(f"{caddy.url}/tg/{b.tenant_id}", forged, secrets[b.tenant_id]) == 200
        assert len(await client.messages(b.token, 1402)) == seen_b + 2
        # A tenant removed from the hub: its path answers 404, its neighbour runs on.
        (hub.folder / TENANTS / f"{a.tenant_id}.env").unlink()

        async def a_gone() -> bool:
            return await post(f"http://127.0.0.1:{hub_port}/tg/{a.tenant_id}", forged, "x") == 404

        await wait_until(a_gone, timeout=20)
        assert await post(f"{caddy.url}/tg/{b.tenant_id}", forged, secrets[b.tenant_id]) == 200
        # The hub's /metrics counts its webhook requests by outcome (core/metrics.py).
        outcomes = {
            s.labels["outcome"]: s.value
            for family in text_string_to_metric_families(hub.dispatcher.metrics.render().decode())
            for s in family.samples
            if s.name == "botfleet_webhook_requests_total"
        }
        # The forged one, and the probes of A's path that came before A was gone: as many as
        # the hub refused (and logged).
        assert outcomes["unauthorized"] == sum(hub.webhooks.refused.values()) >= 1, outcomes
        assert outcomes["not_found"] >= 1, outcomes
        assert outcomes["ok"] >= 4, outcomes  # two /start, the forged update twice with B's
    finally:
        stop.set()
        await running


class Tenants:
    """The master's store as ingress.py uses it: the live rows, and set_secret."""

    def __init__(self, *rows: TenantRecord) -> None:
        self.rows = {r.tenant_id: r for r in rows}

    async def live(self) -> list[TenantRecord]:
        return list(self.rows.values())

    async def set_secret(self, tenant_id: str, column: str, ciphertext: str) -> TenantRecord:
        row = dataclasses.replace(self.rows[tenant_id], **{column: ciphertext})  # type: ignore[arg-type]
        self.rows[tenant_id] = row
        return row


async def caddy_config(caddy: Caddy) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{caddy.admin}/config/") as r,
    ):
        return await r.text()


async def test_the_master_sets_and_removes_webhooks_and_routes(emulator, caddy, tmp_path):
    """ingress.py as provisioning, suspension and placement moves call it: the secret stored
    encrypted, setWebhook with the tenant's path (no token) and its secret once Caddy has the
    route; deleteWebhook and no route when the bot stops; no webhook for a hub's (polling)
    tenant."""
    server, client = emulator
    box = SecretBox(generate_key())
    token = "6000014:test-webhook-master-token-abcdefgh"
    await client.register_bot(token, "webhook_master_bot")
    config = master_config(
        clients_dir=tmp_path / "clients",
        telegram_api_url=server.base_url,
        webhook_base_url=caddy.url,
        webhook_port_base=20000,
        caddy_admin_url=f"http://127.0.0.1:{caddy.admin}",
        webhook_proxy_listen=f":{caddy.port}",
    )
    row = tenant_row(box, "basic")
    row = dataclasses.replace(row, bot_token_enc=box.encrypt(row.tenant_id, token))
    store = Tenants(row)
    deps = cast(
        Deps,
        SimpleNamespace(
            config=config, store=store, box=box, telegram=TelegramGateway(server.base_url)
        ),
    )
    row = await ensure_secret(deps, row)
    assert row.webhook_secret_enc is not None
    secret = box.decrypt(row.tenant_id, row.webhook_secret_enc)
    assert len(secret) >= 32 and secret not in row.webhook_secret_enc
    assert await ensure_secret(deps, row) is row  # generated once
    assert build_spec(config, box, row).env["WEBHOOK_SECRET"] == secret

    await publish(deps, row)  # provisioning / start: the route, then setWebhook
    info = await client.webhook_info(token)
    assert info["url"] == f"{caddy.url}/tg/{row.tenant_id}"
    assert token.split(":")[1] not in info["url"]
    assert f"/tg/{row.tenant_id}" in await caddy_config(caddy)
    # Telegram (the emulator) delivers to it with that secret: an update is POSTed with it.
    set_call = (await client.calls(token, "setWebhook"))[-1]
    assert set_call.params["secret_token"] == secret
    assert set_call.params.get("drop_pending_updates") in (None, False)

    suspended = dataclasses.replace(row, status=TenantStatus.SUSPENDED)
    store.rows[row.tenant_id] = suspended
    await withdraw(deps, suspended)  # suspension: no webhook, no route
    assert (await client.webhook_info(token))["url"] == ""
    assert f"/tg/{row.tenant_id}" not in await caddy_config(caddy)

    store.rows[row.tenant_id] = row
    await publish(deps, row)
    assert (await client.webhook_info(token))["url"] == f"{caddy.url}/tg/{row.tenant_id}"
    shared = dataclasses.replace(row, placement="shared")  # moved into a hub, which polls
    store.rows[row.tenant_id] = shared
    await publish(deps, shared)
    assert (await client.webhook_info(token))["url"] == ""
    assert await reload_routes(deps) and f"/tg/{row.tenant_id}" not in await caddy_config(caddy)


def test_webhook_settings_are_checked() -> None:
    base: dict[str, Any] = {"tenant_id": "client_001", "bot_token": TOKEN}
    assert ClientBotSettings(**base, webhook_secret="").webhook_secret is None  # .env.example
    assert not ClientBotSettings(**base).webhook_on  # no base URL: long polling
    bad: list[tuple[dict[str, Any], str]] = [
        ({"webhook_base_url": "https://bots.example.com"}, "WEBHOOK_SECRET is required"),
        ({"webhook_secret": "short"}, "16-256 characters"),
        ({"webhook_secret": "x" * 20 + " ;"}, "16-256 characters"),
        ({"webhook_listen": "8080"}, "host:port"),
        ({"webhook_base_url": "ftp://bots.example.com"}, "http:// or https://"),
    ]
    for values, reason in bad:
        with pytest.raises(ValidationError, match=reason):
            ClientBotSettings(**base, **values)
    on = ClientBotSettings(**base, webhook_base_url="https://b.example/", webhook_secret=SECRET)
    assert on.webhook_on and on.webhook_base_url == "https://b.example"


async def test_provisioning_suspension_resumption_and_removal_drive_the_webhook(
    emulator, caddy, tmp_path, pg_dsn, redis_url, redis_admin
):
    """The master's own steps, on its real store (migration 0014), with the emulator and Caddy:
    provisioning ends with the webhook set and routed, suspension removes both, resumption
    sets them again, removal removes them; the secret is stored encrypted and given only in
    the bot's spec."""
    server, client = emulator
    token = "6000015:test-webhook-lifecycle-token-abcdef"
    await client.register_bot(token, "webhook_lifecycle_bot")
    config = master_config(
        tenant_database_url=pg_dsn,
        tenant_redis_url=redis_url,
        admin_database_url=pg_dsn,
        clients_dir=tmp_path / "clients",
        backups_dir=tmp_path / "backups",
        telegram_api_url=server.base_url,
        webhook_base_url=caddy.url,
        caddy_admin_url=f"http://127.0.0.1:{caddy.admin}",
        webhook_proxy_listen=f":{caddy.port}",
    )
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    box = SecretBox(generate_key())
    backend = MemoryBackend()
    deps = Deps(
        config=config,
        pool=pool,
        redis=redis_admin,
        backend=backend,
        box=box,
        telegram=TelegramGateway(server.base_url, timeout=5),
        store=TenantStore(pool),
    )
    order = ProvisionOrder("basic", 30, "Webhook Salon", token, 7001, "ru", "Europe/Moscow")
    tid = ""
    try:
        tenant, _ = await Provisioner(deps).provision(order, "webhook-order-1", actor="test")
        tid = tenant.tenant_id
        assert tenant.status is TenantStatus.ACTIVE and tenant.webhook_secret_enc
        secret = box.decrypt(tid, tenant.webhook_secret_enc)
        stored = await pool.fetchval(
            "SELECT webhook_secret_enc FROM control.tenants WHERE tenant_id = $1", tid
        )
        assert stored == tenant.webhook_secret_enc and secret not in stored
        env = backend.specs[tid].env
        assert env["WEBHOOK_SECRET"] == secret and env["WEBHOOK_LISTEN"] == "0.0.0.0:8080"
        info = await client.webhook_info(token)
        assert info["url"] == f"{caddy.url}/tg/{tid}" and token.split(":")[1] not in info["url"]
        routes = await caddy_config(caddy)
        assert f"/tg/{tid}" in routes and f"botfleet-{tid}:8080" in routes

        fleet = Fleet(deps)
        await fleet.suspend(tid, actor="test")
        assert (await client.webhook_info(token))["url"] == ""
        assert f"/tg/{tid}" not in await caddy_config(caddy)
        await fleet.resume(tid, actor="test")
        assert (await client.webhook_info(token))["url"] == f"{caddy.url}/tg/{tid}"
        assert f"/tg/{tid}" in await caddy_config(caddy)
        # The same secret after the resumption: generated once.
        resumed = await deps.store.get(tid)
        assert resumed is not None and resumed.webhook_secret_enc == tenant.webhook_secret_enc

        await fleet.delete(tid, actor="test", backup=False)
        assert (await client.webhook_info(token))["url"] == ""
        assert f"/tg/{tid}" not in await caddy_config(caddy)
        tid = ""
    finally:
        if tid:
            await Fleet(deps).delete(tid, actor="test", backup=False)
        await pool.close()
