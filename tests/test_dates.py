"""One "paid until" everywhere (issue 12.6): the sales bot, the operators' bot and `make stats`
show the same day for one tenant — the last paid day, inclusive, in Moscow time (core/dates.py).

The tenant's subscription ends at midnight Moscow time, the case that used to read
"31.12.2026" in the sales bot and "01.01.2027" in the operators' bot.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from core.dates import DATE_ZONE, last_paid_day, paid_until
from master_bot.api.models import TenantOut
from master_bot.operator import text as operator_text
from master_bot.store import TenantStore
from sales_bot.handlers.subscription import _card
from sales_bot.i18n import build_i18n
from sales_bot.master import Tenant
from sales_bot.orders import OrderKind, OrderStatus
from sales_bot.store import Order
from tests.ops import conftest as ops
from tests.ops.conftest import Fleet

fleet = ops.fleet  # a platform database of its own (tests/ops/conftest.py)
ROOT = Path(__file__).resolve().parents[1]


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=DATE_ZONE)


def test_the_last_paid_day_is_inclusive_in_moscow_time() -> None:
    assert paid_until(msk(2027, 1, 1)) == "31.12.2026"  # ends at midnight: 31.12 is the last day
    assert paid_until(msk(2027, 1, 1, 0, 1)) == "01.01.2027"
    assert paid_until(msk(2027, 1, 1, 12, 40)) == "01.01.2027"
    # 21:30 UTC on 31 December is already 00:30 on 1 January in Moscow.
    assert paid_until(datetime(2026, 12, 31, 21, 30, tzinfo=UTC)) == "01.01.2027"
    assert last_paid_day(datetime(2026, 12, 31, 21, 0)) == msk(2026, 12, 31).date()  # naive = UTC
    assert paid_until(None) == "—"


def sales_order(tenant_id: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        order_id="ord_" + "0" * 24, kind=OrderKind.NEW, status=OrderStatus.PAID,
        user_id=7101, locale="ru", plan="basic", period_days=30, amount=Decimal("990.00"),
        currency="RUB", email="owner@example.com", business_name="Салон", category="beauty",
        timezone="Europe/Moscow", bot_id=1, bot_username="salon_bot", bot_token_enc=None,
        bot_token_sha256=None, tenant_id=tenant_id, idempotence_key="k", payment_id=None,
        confirmation_url=None, failure=None, created_at=now, paid_at=now, fulfilled_at=now,
    )  # fmt: skip


async def test_sales_bot_operators_bot_and_make_stats_say_the_same_day(fleet: Fleet) -> None:
    now = datetime.now(UTC)
    # Midnight Moscow time four days from now: within `make stats`' 7-day expiry window.
    ends = datetime.combine(
        now.astimezone(DATE_ZONE).date() + timedelta(days=4), datetime.min.time(), DATE_ZONE
    )
    tenant_id = await fleet.add_tenant(expires_in=ends - now, now=now, schema=False)
    expected = (ends - timedelta(days=1)).strftime("%d.%m.%Y")

    pool = await asyncpg.create_pool(fleet.dsn, min_size=1, max_size=1)
    try:
        record = await TenantStore(pool).get(tenant_id)
    finally:
        await pool.close()
    assert record is not None and record.expires_at == ends

    # The operators' bot: the list line, the card, the /stats line.
    line = operator_text.tenant_line(record)
    card = operator_text.card(record, None, None, now)
    assert f"до {expected} ·" in line
    assert f"Подписка до: {expected} включительно" in card

    # The sales bot: what the master's API says about the tenant, in the owner's /subscription.
    tenant = Tenant.from_json(TenantOut.of(record).model_dump(mode="json"))
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        owner_card = _card(sales_order(tenant_id), tenant, "Старт")
    assert f"Оплачено до: {expected}" in owner_card

    # make stats (the CLI behind it), as JSON and as the table.
    env = {**os.environ, "DATABASE_URL": fleet.dsn, "COLUMNS": "200"}
    outputs = []
    for args in (["--json"], ["--width", "200"]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.stats", "--no-runtime", "--no-redis", *args,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        outputs.append(out.decode())
    [expiring] = [e for e in json.loads(outputs[0])["expiring"] if e["tenant_id"] == tenant_id]
    assert expiring["paid_until"] == expected
    [row] = [line for line in outputs[1].splitlines() if tenant_id in line and expected in line]
    assert row
