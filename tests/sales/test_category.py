"""The business category picked while buying travels with the paid order to the master."""

from __future__ import annotations

from tests.sales.conftest import Shop
from tests.sales.master_stub import MasterStub


async def test_a_paid_order_asks_the_master_for_its_category(shop: Shop, stub: MasterStub) -> None:
    order = await shop.order()  # picked "beauty" in the form
    assert await shop.pay(order) == 200
    await shop.settle(order)
    [tenant] = stub.tenants.values()
    assert tenant.category == "beauty"
