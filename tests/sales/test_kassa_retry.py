"""A YooKassa 5xx is retried in-process with a short backoff: the order is paid and provisioning
requested within seconds, not after the periodic check (60 s by default)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from sales_bot.kassa import KassaUnavailableError, YooKassa
from sales_bot.orders import OrderStatus
from tests.sales.conftest import Shop
from tests.sales.master_stub import MasterStub
from yookassa_emulator import YooKassaFake


async def test_two_500s_in_a_row_cost_seconds_not_minutes(
    make_shop: Callable[..., Awaitable[Shop]], kassa: YooKassaFake, stub: MasterStub
) -> None:
    # The periodic check is far away: only an in-process retry can settle the order in time.
    shop = await make_shop(workers=True, sales_check_interval=600, sales_check_after=600)
    order = await shop.order()
    assert order.payment_id is not None
    kassa.succeed(order.payment_id)
    kassa.fail_next = 2  # the next two API calls (the webhook's re-read) answer 500
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await shop.notify("payment.succeeded", order.payment_id) == 200

    async def provisioned() -> bool:
        return stub.provision_calls() == 1

    await shop.wait(provisioned, timeout=15)
    assert loop.time() - started < 10
    fresh = await shop.reload(order)
    assert fresh.status is OrderStatus.PAID
    rereads = [r for r in kassa.requests if r == ("GET", f"/v3/payments/{order.payment_id}")]
    assert len(rereads) >= 3  # two failed, then the one that answered
    assert kassa.fail_next == 0


async def test_a_lasting_outage_gives_up_within_the_budget(kassa: YooKassaFake) -> None:
    gateway = YooKassa(
        kassa.shop_id, kassa.secret_key, api_url=kassa.api_url, vat_code=1,
        return_url="https://t.me", timeout=5, retry_budget=1.5,
    )  # fmt: skip
    kassa.down = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(KassaUnavailableError):
        await gateway.get_payment("2f000000-000f-5000-9000-000000000000")
    elapsed = loop.time() - started
    assert elapsed < 4  # bounded, then the periodic check takes over
    assert len(kassa.requests) >= 2  # retried at least once


async def test_a_refusal_is_not_retried(kassa: YooKassaFake) -> None:
    gateway = YooKassa(
        kassa.shop_id, kassa.secret_key, api_url=kassa.api_url, vat_code=1,
        return_url="https://t.me", timeout=5,
    )  # fmt: skip
    with pytest.raises(Exception) as caught:
        await gateway.get_payment("2f000000-000f-5000-9000-000000000000")  # 404
    assert not isinstance(caught.value, KassaUnavailableError)
    assert len(kassa.requests) == 1
