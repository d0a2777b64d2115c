"""The webhook: who may call it, what it accepts, and that it never acts on the body alone."""

from __future__ import annotations

import aiohttp
import pytest

from sales_bot.allowlist import SenderPolicy, yookassa_networks
from sales_bot.orders import OrderStatus
from tests.sales.conftest import UNTRUSTED, Shop
from tests.sales.master_stub import MasterStub


async def test_forged_notification_from_an_untrusted_address_is_rejected(
    shop: Shop, stub: MasterStub
) -> None:
    order = await shop.order()
    assert order.payment_id is not None
    body = shop.kassa.notification("payment.succeeded", order.payment_id)
    body["object"].update(status="succeeded", paid=True)
    status = await shop.notify("payment.succeeded", order.payment_id, source=UNTRUSTED, body=body)
    assert status == 403
    await shop.app.billing.drain()
    await shop.app.relay.run_once()
    assert (await shop.reload(order)).status is OrderStatus.PENDING
    assert await shop.fetch("SELECT 1 FROM control.sales_notifications") == []
    assert stub.calls == []


async def test_trusted_sender_but_the_api_says_pending(shop: Shop, stub: MasterStub) -> None:
    order = await shop.order()
    assert order.payment_id is not None
    body = shop.kassa.notification("payment.succeeded", order.payment_id)
    body["object"].update(status="succeeded", paid=True)  # the body lies; the API does not
    assert await shop.notify("payment.succeeded", order.payment_id, body=body) == 200
    await shop.app.billing.drain()
    await shop.app.relay.run_once()
    assert (await shop.reload(order)).status is OrderStatus.PENDING
    assert await shop.fetch("SELECT 1 FROM control.sales_outbox") == []
    assert stub.calls == []
    # Not final: when the payment really succeeds, the same notification still counts.
    [row] = await shop.fetch("SELECT processed_at, outcome FROM control.sales_notifications")
    assert row["processed_at"] is None and "pending" in row["outcome"]
    await shop.pay(order)
    await shop.settle(order)
    assert stub.created == 1


async def test_amount_mismatch_is_never_paid(shop: Shop, stub: MasterStub) -> None:
    order = await shop.order()
    assert order.payment_id is not None
    shop.kassa.succeed(order.payment_id)
    shop.kassa.payments[order.payment_id]["amount"]["value"] = "1.00"
    await shop.notify("payment.succeeded", order.payment_id)
    await shop.app.billing.drain()
    assert (await shop.reload(order)).status is OrderStatus.PENDING
    assert stub.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[]",
        b"null",
        b'{"type": "notification"}',
        b'{"type": "notification", "event": "payment.succeeded"}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": []}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": 5}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "../x"}}',
        b'{"type": "other", "event": "payment.succeeded", "object": {"id": "abc"}}',
        b'{"type": "notification", "event": 7, "object": {"id": "abc"}}',
        b'{"type": "notification", "event": ["payment.succeeded"], "object": {"id": "abc"}}',
        b'{"type": "notification", "object": {"id": "abc"}}',
    ],
)
async def test_malformed_notifications_are_400(shop: Shop, body: bytes) -> None:
    status = await shop.notify("payment.succeeded", "x", body=body)
    assert status == 400


async def test_oversized_body_and_wrong_method(shop: Shop) -> None:
    assert await shop.notify("payment.succeeded", "x", body=b"{" + b" " * 70_000 + b"}") == 413
    async with aiohttp.ClientSession() as session, session.get(shop.webhook_url) as resp:
        assert resp.status == 405


async def test_unknown_payment_is_answered_and_recorded(shop: Shop, stub: MasterStub) -> None:
    body = {"type": "notification", "event": "payment.succeeded", "object": {"id": "2f00-unknown"}}
    assert await shop.notify("payment.succeeded", "2f00-unknown", body=body) == 200
    await shop.app.billing.drain()
    [row] = await shop.fetch("SELECT processed_at, outcome FROM control.sales_notifications")
    assert row["processed_at"] is not None and "rejected" in row["outcome"]
    assert stub.calls == []


async def test_forwarded_for_is_read_only_from_trusted_proxies(make_shop, stub: MasterStub) -> None:
    shop = await make_shop(
        yookassa_trusted_networks="10.1.2.0/24", webhook_trusted_proxies="127.0.0.1/32"
    )
    order = await shop.order()
    assert order.payment_id is not None
    pid = order.payment_id
    via = {"X-Forwarded-For": "8.8.8.8, 10.1.2.3"}
    assert await shop.notify("payment.succeeded", pid, source="127.0.0.1", headers=via) == 200
    bad = {"X-Forwarded-For": "10.1.2.3, 8.8.8.8"}
    assert await shop.notify("payment.succeeded", pid, source="127.0.0.1", headers=bad) == 403
    # Not a proxy: its X-Forwarded-For is ignored and its own address is not allowed.
    assert await shop.notify("payment.succeeded", pid, source="127.0.0.2", headers=via) == 403


def test_default_allowlist_is_the_sdk_list() -> None:
    policy = SenderPolicy([])
    assert "185.71.76.0/27" in yookassa_networks()
    assert policy.allows(policy.sender("185.71.76.10", None))
    assert policy.allows(policy.sender("2a02:5180:0:1509::1", None))
    assert policy.allows(policy.sender("::ffff:77.75.156.11", None))
    assert not policy.allows(policy.sender("127.0.0.1", None))
    assert not policy.allows(policy.sender("127.0.0.1", "185.71.76.10"))  # no proxy trusted
    assert not policy.allows(policy.sender(None, None))
    with pytest.raises(ValueError, match="not an IP"):
        SenderPolicy(["nonsense"])
