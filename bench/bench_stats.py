"""`make stats` over N tenants (issue 7: under 2 s for 500).

    python -m bench.bench_stats [--tenants 500] [--runs 3]

A scratch database with N seeded tenant schemas (DATABASE_URL's server), an in-memory deploy
backend with every bot running. Compares the strategies: chunked UNION ALL queries in parallel
(what scripts.stats does), also with `--staff` (bookings per staff member), one UNION ALL over
every tenant, and one query per tenant.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bench.fleet_seed import scratch_fleet
from database.pool import create_pool
from master_bot.deploy.base import RuntimeState
from master_bot.deploy.memory import MemoryBackend
from scripts.stats import collect_stats


async def main(tenants: int, runs: int) -> None:
    started = time.perf_counter()
    async with scratch_fleet(tenants, owner_roles=True) as (dsn, ids):
        print(f"seeded {tenants} tenants in {time.perf_counter() - started:.1f} s")
        backend = MemoryBackend()
        for tenant_id in ids:
            backend.states[tenant_id] = RuntimeState.RUNNING
        strategies = [
            ("chunks of 50, 4 in parallel (default)", 50, 4, False),
            ("the same with --staff (bookings per staff member)", 50, 4, True),
            ("one UNION ALL over all tenants", tenants, 1, False),
            ("one query per tenant, 8 in parallel", 1, 8, False),
        ]
        for label, chunk, concurrency, per_staff in strategies:
            # A new pool per strategy, as `make stats` opens one per run (connect time included).
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                pool = await create_pool(dsn, max_size=concurrency + 1)
                try:
                    stats = await collect_stats(
                        pool, backend, chunk=chunk, concurrency=concurrency, staff=per_staff
                    )
                finally:
                    await pool.close()
                times.append(time.perf_counter() - t0)
            counted = sum(1 for t in stats.tenants if t.customers == 20)
            assert counted == tenants, counted
            if per_staff:  # each seeded tenant's first staff member holds its 10 bookings
                staffed = sum(1 for t in stats.tenants if t.staff and t.staff[0].week >= 0)
                assert staffed == tenants, staffed
            print(
                f"{label}: median {statistics.median(times):.3f} s, best {min(times):.3f} s"
                f" ({tenants} tenants, {runs} runs)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.tenants, args.runs))
