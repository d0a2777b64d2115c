"""`make stats` over N tenants (issue 7: under 2 s for 500).

    python -m bench.bench_stats [--tenants 500] [--runs 3]

A scratch database with N seeded tenant schemas (DATABASE_URL's server), an in-memory deploy
backend with every bot running. Compares the strategies: chunked UNION ALL queries in parallel
(what scripts.stats does), one UNION ALL over every tenant, and one query per tenant.
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
    async with scratch_fleet(tenants) as (dsn, ids):
        print(f"seeded {tenants} tenants in {time.perf_counter() - started:.1f} s")
        backend = MemoryBackend()
        for tenant_id in ids:
            backend.states[tenant_id] = RuntimeState.RUNNING
        strategies = [
            ("chunks of 50, 4 in parallel (default)", 50, 4),
            ("one UNION ALL over all tenants", tenants, 1),
            ("one query per tenant, 8 in parallel", 1, 8),
        ]
        for label, chunk, concurrency in strategies:
            # A new pool per strategy, as `make stats` opens one per run (connect time included).
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                pool = await create_pool(dsn, max_size=concurrency + 1)
                try:
                    stats = await collect_stats(pool, backend, chunk=chunk, concurrency=concurrency)
                finally:
                    await pool.close()
                times.append(time.perf_counter() - t0)
            counted = sum(1 for t in stats.tenants if t.customers == 20)
            assert counted == tenants, counted
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
