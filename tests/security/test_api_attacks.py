"""Attacks on the HTTP surfaces (the master's REST API and the YooKassa webhook).

Each test sends what an attacker (or a buggy client) would send, over real HTTP to a master or a
sales bot running on real PostgreSQL and Redis, and checks what a client would see: the status,
the error in the JSON body, and the rows in the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import tests.master.conftest as master_fixtures
import tests.sales.conftest as sales_fixtures
from core.tenant_id import InvalidTenantIdError, validate_tenant_id
from master_bot.api import build_api
from tests.master.conftest import API_TOKEN, Api, Harness
from tests.master.procs import processes_of
from tests.sales.conftest import TRUSTED, Shop

# The fixtures of tests/master and tests/sales, used here by name.
emulator = master_fixtures.emulator
make_harness = master_fixtures.make_harness
harness = master_fixtures.harness
tg = sales_fixtures.tg
kassa = sales_fixtures.kassa
stub = sales_fixtures.stub
clean_sales = sales_fixtures.clean_sales
make_shop = sales_fixtures.make_shop
shop = sales_fixtures.shop

JSON = {"Content-Type": "application/json"}


def body_of(**fields: Any) -> dict[str, Any]:
    return {
        "plan": "basic",
        "period_days": 30,
        "business_name": "Салон «Ромашка»",
        "bot_token": "",
        "owner_telegram_id": 7001,
        "locale": "ru",
        "timezone": "Europe/Moscow",
        **fields,
    }


def message(reply: Any) -> str:
    return str(reply.body["error"]["message"])


async def post_webhook(shop: Shop, raw: bytes) -> tuple[int, Any]:
    """POST raw bytes to the webhook from the trusted YooKassa address; (status, JSON body)."""
    connector = aiohttp.TCPConnector(local_addr=(TRUSTED, 0), force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(shop.webhook_url, data=raw, headers=JSON) as resp,
    ):
        return resp.status, await resp.json()


# ------------------------------------------------------------------ 1. trailing newlines
async def test_tenant_id_with_a_trailing_newline_is_not_a_tenant_id(harness: Harness) -> None:
    with pytest.raises(InvalidTenantIdError):
        validate_tenant_id("client_001\n")
    token = await harness.new_bot()
    created = await harness.api.provision(token)
    assert created.status == 201
    tenant_id = created.body["tenant_id"]
    for method, path in (
        ("GET", f"/api/v1/tenants/{tenant_id}%0A"),
        ("POST", f"/api/v1/tenants/{tenant_id}%0A/stop"),
    ):
        reply = await harness.api.call(method, path)
        assert reply.status == 404, (path, reply.status, reply.body)
        # refused as a malformed id, before any lookup, with the expected form
        assert "ids look like client_001" in message(reply), reply.body
    [row] = await harness.fetch("SELECT status FROM control.tenants")
    assert row["status"] == "active"


async def test_webhook_object_id_with_a_trailing_newline_is_400(shop: Shop) -> None:
    raw = b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "2f00abc\\n"}}'
    status, body = await post_webhook(shop, raw)
    assert status == 400, body
    assert "object.id" in body["status"]
    assert await shop.fetch("SELECT 1 FROM control.sales_notifications") == []


# ------------------------------------------------------------------ 2. Idempotency-Key races
async def test_one_key_six_different_bodies_at_once_is_one_201_and_five_409(
    harness: Harness,
) -> None:
    token = await harness.new_bot()
    key = {"Idempotency-Key": f"order-{secrets.token_hex(6)}"}
    names = [f"Business {i}" for i in range(6)]
    replies = await asyncio.gather(
        *(
            harness.api.call(
                "POST", "/api/v1/tenants", json=body_of(bot_token=token, business_name=n),
                headers=key,
            )
            for n in names
        )
    )  # fmt: skip
    statuses = sorted(r.status for r in replies)
    assert statuses == [201, 409, 409, 409, 409, 409], [(r.status, r.body) for r in replies]
    [winner] = [r for r in replies if r.status == 201]
    for reply in replies:
        if reply.status == 409:
            assert reply.error_code == "idempotency_key_reused", reply.body
            assert "Idempotency-Key" in message(reply) and "different request" in message(reply)
    rows = await harness.fetch("SELECT tenant_id, business_name FROM control.tenants")
    assert [(r["tenant_id"], r["business_name"]) for r in rows] == [
        (winner.body["tenant_id"], winner.body["business_name"])
    ]
    # The winning body again is a retry: 200 and the same tenant.
    again = await harness.api.call(
        "POST",
        "/api/v1/tenants",
        json=body_of(bot_token=token, business_name=winner.body["business_name"]),
        headers=key,
    )
    assert again.status == 200, again.body
    assert again.body["tenant_id"] == winner.body["tenant_id"]


async def test_one_key_six_identical_bodies_at_once_is_one_tenant(harness: Harness) -> None:
    token = await harness.new_bot()
    key = {"Idempotency-Key": f"order-{secrets.token_hex(6)}"}
    replies = await asyncio.gather(
        *(
            harness.api.call("POST", "/api/v1/tenants", json=body_of(bot_token=token), headers=key)
            for _ in range(6)
        )
    )
    assert sorted(r.status for r in replies) == [200] * 5 + [201], [r.body for r in replies]
    assert len({r.body["tenant_id"] for r in replies}) == 1
    assert len(await harness.fetch("SELECT 1 FROM control.tenants")) == 1


async def test_key_race_across_two_masters_has_one_winner(make_harness: Any) -> None:
    """Two masters on one database: the database itself must refuse the reused key."""
    one, two = await make_harness(), await make_harness()
    key = {"Idempotency-Key": f"order-{secrets.token_hex(6)}"}
    tokens = [await one.new_bot() for _ in range(6)]
    replies = await asyncio.gather(
        *(
            (one if i % 2 else two).api.call(
                "POST", "/api/v1/tenants", json=body_of(bot_token=t), headers=key
            )
            for i, t in enumerate(tokens)
        )
    )
    assert sorted(r.status for r in replies) == [201] + [409] * 5, [r.body for r in replies]
    assert {r.error_code for r in replies if r.status == 409} == {"idempotency_key_reused"}
    assert len(await one.fetch("SELECT 1 FROM control.tenants")) == 1


async def test_extend_one_key_different_days_at_once_applies_once(harness: Harness) -> None:
    token = await harness.new_bot()
    created = await harness.api.provision(token)
    tenant_id = created.body["tenant_id"]
    [before] = await harness.fetch(
        "SELECT expires_at FROM control.tenants WHERE tenant_id = $1", tenant_id
    )
    key = {"Idempotency-Key": f"renew-{secrets.token_hex(6)}"}
    replies = await asyncio.gather(
        *(
            harness.api.call(
                "POST", f"/api/v1/tenants/{tenant_id}/extend", json={"days": d}, headers=key
            )
            for d in range(1, 7)
        )
    )
    assert sorted(r.status for r in replies) == [200] + [409] * 5, [r.body for r in replies]
    for reply in replies:
        if reply.status == 409:
            assert reply.error_code == "idempotency_key_reused"
            assert "different request" in message(reply)
    [after] = await harness.fetch(
        "SELECT expires_at FROM control.tenants WHERE tenant_id = $1", tenant_id
    )
    added = after["expires_at"] - before["expires_at"]
    assert timedelta(days=1) <= added <= timedelta(days=6)
    days = added.days
    again = await harness.api.call(
        "POST", f"/api/v1/tenants/{tenant_id}/extend", json={"days": days}, headers=key
    )
    assert again.status == 200, again.body
    [still] = await harness.fetch(
        "SELECT expires_at FROM control.tenants WHERE tenant_id = $1", tenant_id
    )
    assert still["expires_at"] == after["expires_at"]


# ------------------------------------------------------------------ 3. deeply nested JSON
async def test_deeply_nested_json_to_the_webhook_is_400(shop: Shop) -> None:
    depth = 30_000
    raw = (
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "2f00", "x": '
        + b"[" * depth
        + b"]" * depth
        + b"}}"
    )
    status, body = await post_webhook(shop, raw)
    assert status == 400, body
    assert "nested too deeply" in body["status"]
    assert await shop.fetch("SELECT 1 FROM control.sales_notifications") == []
    # and the webhook still serves
    ok = b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "2f01"}}'
    assert (await post_webhook(shop, ok))[0] == 200


async def test_deeply_nested_json_to_the_master_is_400(harness: Harness) -> None:
    depth = 20_000
    raw = b'{"plan": ' + b"[" * depth + b"]" * depth + b"}"
    reply = await harness.api.call(
        "POST",
        "/api/v1/tenants",
        data=raw,
        headers={**JSON, "Idempotency-Key": "order-deep"},
    )
    assert reply.status == 400, reply.body
    assert reply.error_code == "json_too_deep"
    assert "nested too deeply" in message(reply)
    assert await harness.fetch("SELECT 1 FROM control.tenants") == []


# ------------------------------------------------------------------ 4. dates past 9999
async def test_extend_past_year_9999_is_422_and_changes_nothing(harness: Harness) -> None:
    token = await harness.new_bot()
    tenant_id = (await harness.api.provision(token)).body["tenant_id"]
    far = datetime(9998, 6, 1, tzinfo=UTC)
    conn_rows = await harness.fetch(
        "UPDATE control.tenants SET expires_at = $2 WHERE tenant_id = $1 RETURNING 1",
        tenant_id,
        far,
    )
    assert conn_rows
    key = {"Idempotency-Key": "renew-far"}
    reply = await harness.api.call(
        "POST", f"/api/v1/tenants/{tenant_id}/extend", json={"days": 3000}, headers=key
    )
    assert reply.status == 422, reply.body
    assert reply.error_code == "expiry_out_of_range"
    assert "9999-01-01" in message(reply)
    [row] = await harness.fetch(
        "SELECT expires_at FROM control.tenants WHERE tenant_id = $1", tenant_id
    )
    assert row["expires_at"] == far
    # the refused request did not use up its key
    ok = await harness.api.call(
        "POST", f"/api/v1/tenants/{tenant_id}/extend", json={"days": 30}, headers=key
    )
    assert ok.status == 200, ok.body
    [row] = await harness.fetch(
        "SELECT expires_at FROM control.tenants WHERE tenant_id = $1", tenant_id
    )
    assert row["expires_at"] == far + timedelta(days=30)
    # out-of-range day counts are refused by the model, naming the field
    for days in (0, -5, 3661, 10**12):
        bad = await harness.api.call(
            "POST",
            f"/api/v1/tenants/{tenant_id}/extend",
            json={"days": days},
            headers={"Idempotency-Key": f"renew-{days}"},
        )
        assert bad.status == 422, (days, bad.body)
        assert bad.body["error"]["details"]["problems"][0]["field"] == "days"


# ------------------------------------------------------------------ 5. Content-Type
async def test_bodies_must_be_application_json(harness: Harness) -> None:
    token = await harness.new_bot()
    raw = json.dumps(body_of(bot_token=token)).encode()
    key = {"Idempotency-Key": f"order-{secrets.token_hex(6)}"}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = dict(key)
        if content_type:
            headers["Content-Type"] = content_type
        reply = await harness.api.call("POST", "/api/v1/tenants", data=raw, headers=headers)
        assert reply.status == 415, (content_type, reply.status, reply.body)
        assert reply.error_code == "unsupported_media_type"
        assert "application/json" in message(reply)
    assert await harness.fetch("SELECT 1 FROM control.tenants") == []
    stop = await harness.api.call(
        "POST",
        "/api/v1/tenants/client_404404/stop",
        data=b"a=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert stop.status == 415
    ok = await harness.api.call(
        "POST",
        "/api/v1/tenants",
        data=raw,
        headers={**key, "Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status == 201, ok.body


# ------------------------------------------------------------------ 6. /metrics needs a token
async def test_metrics_need_a_bearer_token(harness: Harness) -> None:
    anonymous = await harness.api.call("GET", "/metrics", auth=False)
    assert anonymous.status == 401
    assert anonymous.error_code == "unauthorized"
    wrong = await harness.api.call(
        "GET", "/metrics", auth=False, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status == 401
    scraped = await harness.api.call("GET", "/metrics")
    assert scraped.status == 200
    assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE botfleet_tenants gauge" in scraped.body


async def test_a_separate_metrics_token_opens_only_metrics(harness: Harness) -> None:
    metrics_token = "metrics-" + secrets.token_hex(16)
    app = build_api(harness.master, API_TOKEN, metrics_token=metrics_token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(f"http://127.0.0.1:{port}", session)
            scraper = {"Authorization": f"Bearer {metrics_token}"}
            assert (await api.call("GET", "/metrics", auth=False, headers=scraper)).status == 200
            assert (await api.call("GET", "/metrics")).status == 200  # the API token too
            tenants = await api.call("GET", "/api/v1/tenants", auth=False, headers=scraper)
            assert tenants.status == 401
            assert (await api.call("GET", "/metrics", auth=False)).status == 401
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ 7. /health sees bots down
async def test_health_is_degraded_while_a_bot_that_should_run_is_down(harness: Harness) -> None:
    healthy = await harness.api.call("GET", "/health", auth=False)
    assert healthy.status == 200
    assert healthy.body["tenants"] == {"should_run": 0, "running": 0, "down": []}

    token = await harness.new_bot()
    tenant_id = (await harness.api.provision(token)).body["tenant_id"]
    healthy = await harness.api.call("GET", "/health", auth=False)
    assert healthy.status == 200, healthy.body
    assert healthy.body["status"] == "ok"
    assert healthy.body["tenants"] == {"should_run": 1, "running": 1, "down": []}

    for pid in processes_of(tenant_id):
        os.kill(pid, signal.SIGKILL)  # the bot dies; nobody restarts it (no reconciler here)

    async def degraded() -> bool:
        reply = await harness.api.call("GET", "/health", auth=False)
        return reply.status == 503

    await harness.wait_for(degraded)
    reply = await harness.api.call("GET", "/health", auth=False)
    assert reply.body["status"] == "degraded"
    assert reply.body["tenants"] == {"should_run": 1, "running": 0, "down": [tenant_id]}
    assert all(check["ok"] for check in reply.body["checks"].values()), reply.body
    # the dependencies-only probe (for a startup healthcheck) still answers 200, and says why
    deps_only = await harness.api.call("GET", "/health", auth=False, params={"fleet": "false"})
    assert deps_only.status == 200 and deps_only.body["status"] == "ok"
    assert deps_only.body["tenants"]["down"] == [tenant_id]
    metrics = await harness.api.call("GET", "/metrics")
    assert "botfleet_tenants_down 1" in metrics.body
    assert "botfleet_tenants_should_run 1" in metrics.body

    # stopped on purpose is not "down"
    stopped = await harness.api.call("POST", f"/api/v1/tenants/{tenant_id}/stop")
    assert stopped.status == 200, stopped.body
    reply = await harness.api.call("GET", "/health", auth=False)
    assert reply.status == 200, reply.body
    assert reply.body["tenants"] == {"should_run": 0, "running": 0, "down": []}
