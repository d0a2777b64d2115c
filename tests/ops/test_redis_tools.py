"""Redis tools: keys per tenant with SCAN, and redis-cli as the admin without a visible password."""

from __future__ import annotations

import json
import secrets

from redis.asyncio import Redis

from scripts.redis_cli import command
from scripts.redis_keys import count_keys, human_bytes, measure, tenant_usage
from tests.ops.conftest import run_cli


async def test_keys_per_tenant_prefix(redis_url: str) -> None:
    db = 8  # a database of its own: other tests' keys do not disturb the counts
    url = redis_url.rsplit("/", 1)[0] + f"/{db}"
    redis = Redis.from_url(url)
    a, b = (f"client_{90_000_000_000 + secrets.randbelow(10**9)}" for _ in range(2))
    try:
        await redis.flushdb()
        await redis.mset({f"{{{a}}}:fsm:1:{i}:{i}:default:state": "x" for i in range(1200)})
        for i in range(3):
            await redis.set(f"{{{a}}}:throttle:{i}", 1)
            await redis.set(f"{b}:ai:{i}", 1)  # before hash tags
        await redis.set("sales:draft:1", 1)
        await redis.set("orphan", 1)
        counts = await count_keys(redis, count=100)
        assert counts.total == 1208
        assert counts.tenants == dict(sorted({a: 1203, b: 3}.items()))
        assert counts.families[a] == {"fsm": 1200, "throttle": 3}
        assert counts.to_json()["other"] == {"(no prefix)": 1, "sales": 1}
        result = await run_cli("scripts.redis_keys", "--families", env={"REDIS_URL": url})
        assert result.returncode == 0, result.stderr
        assert "Redis keys: 1208" in result.stdout and "fsm=1200" in result.stdout
        assert "memory (est.)" in result.stdout
        # Memory: sampled, scaled to the key count; exact when every key is sampled.
        await redis.set(f"{b}:ai:big", "z" * 100_000)
        sampled = await count_keys(redis, count=100, sample=20)
        assert {p: len(k) for p, k in sampled.samples.items() if p in (a, b)} == {a: 20, b: 4}
        await measure(redis, sampled)
        exact = sum([int(await redis.memory_usage(f"{b}:ai:{i}") or 0) for i in "012"])
        exact += int(await redis.memory_usage(f"{b}:ai:big") or 0)
        assert sampled.memory[b] == exact and exact > 100_000
        one = int(await redis.memory_usage(f"{{{a}}}:fsm:1:1:1:default:state") or 0)
        assert 0.5 * 1203 * one < sampled.memory[a] < 2 * 1203 * one
        usage = await tenant_usage(redis, [a, b, "client_1"])
        assert [u.keys for u in usage.values()] == [1203, 4, 0]
        assert usage["client_1"].bytes == 0
        as_json = await run_cli("scripts.redis_keys", "--json", env={"REDIS_URL": url})
        data = json.loads(as_json.stdout)
        assert data["tenants"][b] == 4 and data["memory_bytes"][b] > 100_000
    finally:
        await redis.flushdb()
        await redis.aclose()


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (None, 0, 1023, 1536, 5 * 2**20, 3 * 2**40)] == [
        "n/a",
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 MiB",
        "3072.0 GiB",
    ]


def test_redis_cli_command_keeps_the_password_off_the_command_line() -> None:
    argv, env = command("redis://admin:s3cr%40t@10.0.0.5:6380/2", ["info"])
    assert argv == [
        "redis-cli",
        "-h",
        "10.0.0.5",
        "-p",
        "6380",
        "-n",
        "2",
        "--user",
        "admin",
        "info",
    ]
    assert env == {"REDISCLI_AUTH": "s3cr@t"}
    argv, env = command("rediss://:pw@redis/0", [])
    assert (
        argv == ["redis-cli", "-h", "redis", "-p", "6379", "--tls"] and env["REDISCLI_AUTH"] == "pw"
    )


async def test_redis_cli_runs_as_admin(redis_url: str) -> None:
    result = await run_cli("scripts.redis_cli", "ping", env={"REDIS_URL": redis_url})
    assert result.returncode == 0 and result.stdout.strip() == "PONG"
