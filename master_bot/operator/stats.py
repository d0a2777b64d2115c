"""/stats: fleet totals, this month's revenue, expiring subscriptions, crash loops.

Gathered from the data layer, the deploy backend and the reconciler's memory; no aiogram here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from database.subscription_figures import SubscriptionFigures, subscription_figures
from master_bot.deploy.base import DeployError, RuntimeState
from master_bot.services import Master
from master_bot.store import TenantStatus

EXPIRING_DAYS = 7
_WATCHED = (TenantStatus.ACTIVE, TenantStatus.STOPPED)


@dataclass(frozen=True, slots=True)
class FleetStats:
    now: datetime
    counts: Mapping[str, int]
    runtimes: Mapping[RuntimeState, int]
    revenue: Mapping[str, Decimal] | None  # None: no orders table on this master
    expiring: list[tuple[str, datetime]] = field(default_factory=list)
    in_grace: list[str] = field(default_factory=list)  # expired, not suspended yet
    crash_looping: list[str] = field(default_factory=list)
    horizon_days: int = EXPIRING_DAYS
    subscriptions: SubscriptionFigures | None = None  # MRR, renewals, churn (None: no sales bot)


def month_bounds(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Start of `now`'s calendar month in `zone` and the start of the next one."""
    local = now.astimezone(zone)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following


async def collect(master: Master, now: datetime, zone: ZoneInfo) -> FleetStats:
    store = master.deps.store
    counts = await store.counts_by_status()
    try:
        runtimes = await master.deps.backend.list()
    except DeployError:
        runtimes = {}
    by_state = {state: 0 for state in RuntimeState}
    for status in runtimes.values():
        by_state[status.state] += 1
    since, until = month_bounds(now, zone)
    revenue = await store.revenue(since, until)
    expiring: list[tuple[str, datetime]] = []
    in_grace: list[str] = []
    for tenant in await store.expiring(now + timedelta(days=EXPIRING_DAYS)):
        if tenant.status not in _WATCHED or tenant.expires_at is None:
            continue
        if tenant.expires_at >= now:
            expiring.append((tenant.tenant_id, tenant.expires_at))
        else:
            in_grace.append(tenant.tenant_id)
    looping = sorted(tid for tid, memory in master.reconciler.memory.items() if memory.alerted)
    async with master.deps.pool.acquire() as conn:
        figures = await subscription_figures(conn, now, since)
    return FleetStats(
        now, counts, by_state, revenue, expiring, in_grace, looping, subscriptions=figures
    )
