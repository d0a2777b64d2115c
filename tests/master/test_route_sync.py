"""The proxy's routes follow the runtimes even when the master died before publish() (issue 13).

A master that moved a tenant's runtime (dedicated -> a hub, as here; or started, restarted it)
and died before `publish()` loaded the new route into Caddy left the route pointing where the
tenant was. Real Caddy (its admin API), the real master (PostgreSQL, Redis, REST API, the
Telegram emulator delivering webhooks with the secret); the runtimes are the in-memory backend's,
and the hub's webhook server a small one of this test's, which answers in the webhook reply
only an update that carries the tenant's secret. No Docker.
"""

from __future__ import annotations

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
from master_bot.ingress import render_caddyfile
from master_bot.spec import build_spec
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
