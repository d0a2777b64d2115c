"""Keys per tenant prefix in Redis, counted with SCAN (never KEYS, which blocks the server).

    python -m scripts.redis_keys [--json] [--families] [--count 1000]

Every key of a tenant starts with `<tenant_id>:` (DESIGN.md); the second segment is its family
(`fsm`, `throttle`, `ai`, ...). Other prefixes (`sales:` of the sales bot) are listed under
their own name, keys without a colon under "(no prefix)". Needs the admin REDIS_URL: tenant ACL
users may not SCAN.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from core.settings import RedisSettings, load_settings
from core.tenant_id import TENANT_ID_RE

NO_PREFIX = "(no prefix)"


@dataclass(slots=True)
class KeyCounts:
    total: int = 0
    prefixes: Counter[str] = field(default_factory=Counter)
    families: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def tenants(self) -> dict[str, int]:
        return {p: n for p, n in sorted(self.prefixes.items()) if TENANT_ID_RE.match(p)}

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "tenants": self.tenants,
            "other": {p: n for p, n in sorted(self.prefixes.items()) if not TENANT_ID_RE.match(p)},
            "families": {p: dict(sorted(f.items())) for p, f in sorted(self.families.items())},
        }


async def count_keys(redis: Redis, *, match: str = "*", count: int = 1000) -> KeyCounts:
    """One pass of SCAN over the keyspace, grouped by `<prefix>:` and `<prefix>:<family>:`."""
    result = KeyCounts()
    async for raw in redis.scan_iter(match=match, count=count):
        key = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        prefix, sep, rest = key.partition(":")
        if not sep:
            prefix = NO_PREFIX
        result.total += 1
        result.prefixes[prefix] += 1
        if sep:
            result.families[prefix][rest.partition(":")[0] or "(none)"] += 1
    return result


def render(counts: KeyCounts, console: Console, *, families: bool) -> None:
    table = Table(title=f"Redis keys: {counts.total}", title_justify="left")
    table.add_column("prefix")
    table.add_column("keys", justify="right")
    if families:
        table.add_column("families")
    for prefix, n in sorted(counts.prefixes.items(), key=lambda kv: (-kv[1], kv[0])):
        row = [prefix, str(n)]
        if families:
            row.append(
                ", ".join(f"{f}={c}" for f, c in sorted(counts.families.get(prefix, {}).items()))
            )
        table.add_row(*row)
    console.print(table)
    console.print(f"tenants with keys: {len(counts.tenants)}")


async def run(args: argparse.Namespace) -> int:
    url = load_settings(RedisSettings).redis_url.get_secret_value()
    redis = Redis.from_url(url)
    try:
        counts = await count_keys(redis, match=args.match, count=args.count)
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
    parser.add_argument("--match", default="*", help="SCAN MATCH pattern (default all keys)")
    parser.add_argument("--count", type=int, default=1000, help="SCAN COUNT hint")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
