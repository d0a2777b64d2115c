"""The proxy's routes follow the runtimes even when the master died before publish() (issue 13).

A master that moved a tenant's runtime (dedicated -> a hub, as here; or started, restarted it)
and died before `publish()` loaded the new route into Caddy left the route pointing where the
tenant was. Real Caddy (its admin API), the real master (PostgreSQL, Redis, REST API, the
Telegram emulator delivering webhooks with the secret); the runtimes are the in-memory backend's,
and the hub's webhook server a small one of this test's, which answers in the webhook reply
only an update that carries the tenant's secret. No Docker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from master_bot.deploy.base import RuntimeState
from master_bot.deploy.docker import container_name
from master_bot.deploy.hub import LABEL_PLACEMENT
from master_bot.deploy.memory import MemoryBackend
from master_bot.ingress import WebhookSync, publish, render_caddyfile, sync_webhooks
from master_bot.spec import build_spec
from master_bot.store import TenantStatus
from master_bot.telegram import TelegramGateway
from tests.client.conftest import Customer
from tests.client.test_webhook import Caddy, caddy, caddy_config  # noqa: F401 - caddy: a fixture
from tests.master.conftest import Harness
from tests.support import free_port


class HubsInMemory(MemoryBackend):
    """The in-memory backend, with a shared tenant reached at its hub's webhook server (as
    DockerHubs decides it: `webhook_upstreams`)."""

    def __init__(self, hub_address: str) -> None:
        super().__init__()
        self.hub_address = hub_address

    def webhook_upstreams(self) -> dict[str, str]:
        return {
            tid: self.hub_address
            for tid, spec in self.specs.items()
            if spec.labels.get(LABEL_PLACEMENT) == "shared"
            and self.states.get(tid) is RuntimeState.RUNNING
        }


class HubServer:
    """The hub's webhook server: a tenant's update with that tenant's secret is answered (the
    webhook reply), anything else 401."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        tid = request.match_info["tenant_id"]
        secret = self.secrets.get(tid)
        if secret is None or request.headers.get("X-Telegram-Bot-Api-Secret-Token") != secret:
            return web.Response(status=401)
        message = (await request.json())["message"]
        text = f"hub answers {message['text']}"
        return web.json_response(
            {"method": "sendMessage", "chat_id": message["chat"]["id"], "text": text}
        )

    async def __aenter__(self) -> HubServer:
        app = web.Application()
        app.router.add_post("/tg/{tenant_id}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def hub() -> AsyncIterator[HubServer]:
    async with HubServer() as server:
        yield server


def with_webhooks(harness: Harness, caddy: Caddy) -> None:  # noqa: F811 - the fixture's type
    harness.master.deps.config = replace(
        harness.master.deps.config,
        webhook_base_url=caddy.url,
        caddy_admin_url=f"http://127.0.0.1:{caddy.admin}",
        webhook_proxy_listen=f":{caddy.port}",
    )


async def test_a_new_master_routes_a_tenant_moved_before_the_old_one_published(
    make_harness: Any,
    caddy: Caddy,  # noqa: F811 - the fixture imported above
    hub: HubServer,
) -> None:
    backend = HubsInMemory(f"127.0.0.1:{hub.port}")
    first = await make_harness(backend=backend)
    with_webhooks(first, caddy)
    deps = first.master.deps
    token = await first.new_bot()
    provisioned = await first.api.provision(token)
    assert provisioned.status == 201, provisioned.body
    tid = provisioned.body["tenant_id"]
    tenant = await deps.store.get(tid)
    assert tenant is not None and tenant.webhook_secret_enc is not None
    hub.secrets[tid] = deps.box.decrypt(tid, tenant.webhook_secret_enc)
    assert (await first.tg.webhook_info(token))["url"] == f"{caddy.url}/tg/{tid}"
    container = f"{container_name(tid, deps.config.fleet_name)}:8080"
    assert container in await caddy_config(caddy)  # routed to its dedicated container

    # An operator moves it into a hub; the master records the placement and the backend moves
    # the runtime (as placement.move does), then the master dies before publish().
    moved = await deps.store.set_placement(tid, "shared", actor="operator")
    assert moved is not None
    await backend.deploy(build_spec(deps.config, deps.box, moved[0]))
    loaded = await caddy_config(caddy)
    assert container in loaded and f"127.0.0.1:{hub.port}" not in loaded  # the stale route

    # A new master: its reconciler has no runtime to fix, and routes the tenant to its hub.
    second = await make_harness(backend=backend)
    with_webhooks(second, caddy)
    assert await second.master.reconciler.run_once() == []
    loaded = await caddy_config(caddy)
    assert f"127.0.0.1:{hub.port}" in loaded and container not in loaded
    # The customer's /start reaches the hub through Caddy, with the secret, and is answered.
    anna = Customer(second.tg, token, 7101, "Анна")
    await anna.send("/start")
    await anna.wait("hub answers /start", timeout=10)

    # Later passes load the routes only when they changed: a route put in by hand stays...
    by_hand = {tid: f"127.0.0.1:{hub.port}", "client_0000000099": "127.0.0.1:9"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{caddy.admin}/load",
            data=render_caddyfile(second.master.deps.config, by_hand).encode(),
            headers={"Content-Type": "text/caddyfile"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
    assert await second.master.reconciler.run_once() == []
    assert "/tg/client_0000000099" in await caddy_config(caddy)
    # ...and a move back whose publish() did not happen (the master alive this time) is
    # routed by the next pass, not only by a master's first.
    back = await second.master.deps.store.set_placement(tid, "dedicated", actor="operator")
    assert back is not None
    await backend.deploy(build_spec(second.master.deps.config, deps.box, back[0]))
    assert await second.master.reconciler.run_once() == []
    loaded = await caddy_config(caddy)
    assert container in loaded and f"127.0.0.1:{hub.port}" not in loaded
    assert "/tg/client_0000000099" not in loaded


async def test_a_new_master_sets_again_the_webhooks_a_dead_one_left_behind(
    make_harness: Any,
    caddy: Caddy,  # noqa: F811 - the fixture imported above
    hub: HubServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A master died between a stop's deleteWebhook and the next start's setWebhook (tenant A,
    in a hub), and another between a stop's status change and its deleteWebhook (tenant B): a
    fresh master's first pass sets A's webhook again, with A's own secret, and deletes B's; a
    second pass asks Telegram nothing."""
    caplog.set_level(logging.INFO, logger="master_bot")
    backend = HubsInMemory(f"127.0.0.1:{hub.port}")
    first = await make_harness(backend=backend)
    with_webhooks(first, caddy)
    deps = first.master.deps
    bots = [await first.new_bot(), await first.new_bot()]
    replies = await asyncio.gather(*(first.api.provision(token) for token in bots))
    assert [r.status for r in replies] == [201, 201], [r.body for r in replies]
    tokens = {r.body["tenant_id"]: token for r, token in zip(replies, bots, strict=True)}
    a, b = tokens
    # A lives in the hub (a move the master finished), answered through Caddy with its secret.
    moved = await deps.store.set_placement(a, "shared", actor="operator")
    assert moved is not None
    await backend.deploy(build_spec(deps.config, deps.box, moved[0]))
    await publish(deps, moved[0])
    assert moved[0].webhook_secret_enc is not None
    secret = deps.box.decrypt(a, moved[0].webhook_secret_enc)
    hub.secrets[a] = secret
    # A is stopped (deleteWebhook, no route), then started: the master records it and starts
    # the runtime, and dies before publish().
    await first.master.fleet.stop(a, actor="operator")
    assert (await first.tg.webhook_info(tokens[a]))["url"] == ""
    started = await deps.store.set_status(
        a, TenantStatus.ACTIVE, actor="operator", action="tenant.start"
    )
    assert started is not None
    await backend.deploy(build_spec(deps.config, deps.box, started))
    # B is stopped: the master records it and stops the runtime, and dies before withdraw().
    stopped = await deps.store.set_status(
        b, TenantStatus.STOPPED, actor="operator", action="tenant.stop"
    )
    assert stopped is not None
    await backend.stop(b)
    assert (await first.tg.webhook_info(tokens[b]))["url"] == f"{caddy.url}/tg/{b}"

    second = await make_harness(backend=backend)
    with_webhooks(second, caddy)
    assert await second.master.reconciler.run_once() == []
    assert (await second.tg.webhook_info(tokens[a]))["url"] == f"{caddy.url}/tg/{a}"
    own_secret = (await second.tg.calls(tokens[a], "setWebhook"))[-1].params.get(
        "secret_token"
    ) == secret
    assert own_secret  # (not compared in the assertion: a failure would print the secret)
    assert (await second.tg.webhook_info(tokens[b]))["url"] == ""
    anna = Customer(second.tg, tokens[a], 7102, "Анна")
    await anna.send("/start")
    await anna.wait("hub answers /start", timeout=5)

    # Once per master: a later pass makes no Telegram call, even with a webhook gone again.
    await deps.telegram.delete_webhook(tokens[a])
    calls = [len(await second.tg.calls(t)) for t in tokens.values()]
    assert await second.master.reconciler.run_once() == []
    assert [len(await second.tg.calls(t)) for t in tokens.values()] == calls

    # The next master start: B's token revoked is logged and skipped, A's webhook set again;
    # Telegram unreachable gives up after `concurrency` failures in a row. Nothing raises, and
    # no token or secret is logged.
    await second.tg.revoke_bot(tokens[b])
    third = second.master.deps
    assert await sync_webhooks(third) == WebhookSync(checked=1, set_again=1, failed=1)
    assert (await second.tg.webhook_info(tokens[a]))["url"] == f"{caddy.url}/tg/{a}"
    down = replace(third, telegram=TelegramGateway(f"http://127.0.0.1:{free_port()}", timeout=1))
    assert await sync_webhooks(down, concurrency=1) == WebhookSync(failed=1, skipped=1)
    logged = caplog.text
    assert "not synced" in logged
    leaked = [s for s in (*tokens.values(), secret) if s in logged or s.split(":")[-1] in logged]
    assert not leaked, f"{len(leaked)} secret(s) logged"
