"""Keys and memory per tenant prefix in Redis, counted with SCAN (never KEYS, which blocks).

    python -m scripts.redis_keys [--json] [--families] [--no-memory] [--count 1000]

Every key of a tenant starts with `{<tenant_id>}:` (docs/architecture.md; `<tenant_id>:` before
hash tags), listed under the tenant id; the next segment is its family (`fsm`, `throttle`, `ai`, ...). Other prefixes (`sales:` of the sales bot) are listed under
their own name, keys without a colon under "(no prefix)". Needs the admin REDIS_URL: tenant ACL
users may not SCAN.

One SCAN pass covers every prefix (a SCAN MATCH per tenant would walk the whole keyspace once
per tenant). Memory is an estimate per prefix (`--no-memory` skips it): MEMORY USAGE of up to
`--sample` keys picked at random from the prefix, times its key count (exact when the prefix has
no more keys than that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from core.redis import key_owner, redis_client
from core.settings import RedisSettings, load_settings
from core.tenant_id import TENANT_ID_RE

NO_PREFIX = "(no prefix)"
DEFAULT_SAMPLE = 20


@dataclass(slots=True)
class KeyCounts:
    total: int = 0
    prefixes: Counter[str] = field(default_factory=Counter)
    families: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    samples: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    memory: dict[str, int] = field(default_factory=dict)  # estimated bytes, after measure()

    @property
    def tenants(self) -> dict[str, int]:
        return {p: n for p, n in sorted(self.prefixes.items()) if TENANT_ID_RE.match(p)}

    def to_json(self) -> dict[str, object]:
        result: dict[str, object] = {
            "total": self.total,
            "tenants": self.tenants,
            "other": {p: n for p, n in sorted(self.prefixes.items()) if not TENANT_ID_RE.match(p)},
            "families": {p: dict(sorted(f.items())) for p, f in sorted(self.families.items())},
        }
        if self.memory:
            result["memory_bytes"] = dict(sorted(self.memory.items()))
        return result


@dataclass(frozen=True, slots=True)
class TenantUsage:
    keys: int
    bytes: int  # estimated (see the module docstring); 0 without keys


async def count_keys(
    redis: Redis, *, match: str = "*", count: int = 1000, sample: int = 0
) -> KeyCounts:
    """One pass of SCAN over the keyspace, grouped by `<prefix>:` and `<prefix>:<family>:`.

    With `sample > 0`, up to that many keys per prefix are kept (reservoir sampling: uniform
    over the prefix) for `measure`.
    """
    result = KeyCounts()
    rng = random.Random()  # noqa: S311 - sampling, not security
    async for raw in redis.scan_iter(match=match, count=count):
        key = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        owner = key_owner(key)
        if owner is not None:
            prefix, sep, rest = owner, ":", key[len(owner) + 3 :]
        else:
            prefix, sep, rest = key.partition(":")
        if not sep:
            prefix = NO_PREFIX
        result.total += 1
        result.prefixes[prefix] += 1
        if sep:
            result.families[prefix][rest.partition(":")[0] or "(none)"] += 1
        if sample > 0:
            kept = result.samples[prefix]
            seen = result.prefixes[prefix]
            raw_key = raw if isinstance(raw, bytes) else str(raw).encode()
            if len(kept) < sample:
                kept.append(raw_key)
            elif (slot := rng.randrange(seen)) < sample:
                kept[slot] = raw_key
    return result


async def measure(redis: Redis, counts: KeyCounts, *, batch: int = 500) -> None:
    """Estimated bytes per prefix: MEMORY USAGE of its sampled keys, scaled to its key count."""
    items = [(p, k) for p, keys in counts.samples.items() for k in keys]
    sizes: list[int | None] = []
    for start in range(0, len(items), batch):
        async with redis.pipeline(transaction=False) as pipe:
            for _, key in items[start : start + batch]:
                pipe.memory_usage(key)
            sizes.extend(await pipe.execute())
    per: dict[str, list[int]] = defaultdict(list)
    for (prefix, _), size in zip(items, sizes, strict=True):
        per[prefix].append(int(size or 0))  # None: deleted meanwhile
    for prefix, n in counts.prefixes.items():
        got = per.get(prefix)
        counts.memory[prefix] = round(sum(got) / len(got) * n) if got else 0


async def tenant_usage(
    redis: Redis, tenant_ids: Iterable[str], *, count: int = 1000, sample: int = DEFAULT_SAMPLE
) -> dict[str, TenantUsage]:
    """Keys and estimated memory of each tenant in `tenant_ids` (zero when it has no keys)."""
    counts = await count_keys(redis, count=count, sample=sample)
    await measure(redis, counts)
    return {t: TenantUsage(counts.prefixes.get(t, 0), counts.memory.get(t, 0)) for t in tenant_ids}


def human_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def render(counts: KeyCounts, console: Console, *, families: bool) -> None:
    table = Table(title=f"Redis keys: {counts.total}", title_justify="left")
    table.add_column("prefix")
    table.add_column("keys", justify="right")
    if counts.memory:
        table.add_column("memory (est.)", justify="right")
    if families:
        table.add_column("families")
    for prefix, n in sorted(counts.prefixes.items(), key=lambda kv: (-kv[1], kv[0])):
        row = [prefix, str(n)]
        if counts.memory:
            row.append(human_bytes(counts.memory.get(prefix)))
        if families:
            row.append(
                ", ".join(f"{f}={c}" for f, c in sorted(counts.families.get(prefix, {}).items()))
            )
        table.add_row(*row)
    console.print(table)
    console.print(f"tenants with keys: {len(counts.tenants)}")


async def run(args: argparse.Namespace) -> int:
    url = load_settings(RedisSettings).redis_url.get_secret_value()
    redis = redis_client(url)  # redis+cluster://: SCAN walks every primary node
    try:
        counts = await count_keys(
            redis, match=args.match, count=args.count, sample=0 if args.no_memory else args.sample
        )
        if not args.no_memory:
            await measure(redis, counts)
    finally:
        await redis.aclose()
    if args.json:
        print(json.dumps(counts.to_json(), indent=2))
    else:
        render(counts, Console(), families=args.families)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.redis_keys", description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--families", action="store_true", help="break down by key family")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the memory estimate (MEMORY USAGE samples)"
    )
    parser.add_argument(
        "--sample", type=int, default=DEFAULT_SAMPLE, help="keys sampled per prefix for memory"
    )
    parser.add_argument("--match", default="*", help="SCAN MATCH pattern (default all keys)")
    parser.add_argument("--count", type=int, default=1000, help="SCAN COUNT hint")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
