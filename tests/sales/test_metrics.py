"""The sales bot's /metrics: YooKassa notifications by outcome and its Telegram updates."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.sales.conftest import UNTRUSTED, Shop
from tests.support import free_port


async def scrape(url: str, token: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as anonymous:
            assert anonymous.status == 401  # METRICS_TOKEN set: never open
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
            text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_show_notifications_by_outcome_and_updates(make_shop) -> None:
    port, token = free_port(), "sales-scrape-token-1"
    shop: Shop = await make_shop(
        polling=True, metrics_listen=f"127.0.0.1:{port}", metrics_token=token
    )
    await shop.app.start_metrics()
    order = await shop.order()  # the owner's /start, then a checkout
    assert order.payment_id is not None
    assert await shop.notify("payment.succeeded", order.payment_id, source=UNTRUSTED) == 403
    assert await shop.notify("payment.succeeded", "x", body=b"{not json") == 400
    assert await shop.pay(order) == 200

    key = ("botfleet_bot_update_seconds_count", frozenset({("update", "message")}))
    for _ in range(100):  # the owner's /start is handled by polling, meanwhile
        samples = await scrape(f"http://127.0.0.1:{port}/metrics", token)
        if samples.get(key):
            break
        await asyncio.sleep(0.05)
    outcomes = {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples.items()
        if name == "botfleet_webhook_requests_total"
    }
    assert outcomes == {"unauthorized": 1.0, "invalid": 1.0, "ok": 1.0}
    assert samples.get(key, 0) >= 1, "the owner's /start went through the dispatcher"
