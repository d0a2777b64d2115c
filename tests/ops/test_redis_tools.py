"""Redis tools: keys per tenant with SCAN, and redis-cli as the admin without a visible password."""

from __future__ import annotations

import secrets

from redis.asyncio import Redis

from scripts.redis_cli import command
from scripts.redis_keys import count_keys
from tests.ops.conftest import run_cli


async def test_keys_per_tenant_prefix(redis_url: str) -> None:
    db = 8  # a database of its own: other tests' keys do not disturb the counts
    url = redis_url.rsplit("/", 1)[0] + f"/{db}"
    redis = Redis.from_url(url)
    a, b = (f"client_{90_000_000_000 + secrets.randbelow(10**9)}" for _ in range(2))
    try:
        await redis.flushdb()
        await redis.mset({f"{a}:fsm:1:{i}:{i}:default:state": "x" for i in range(1200)})
        for i in range(3):
            await redis.set(f"{a}:throttle:{i}", 1)
            await redis.set(f"{b}:ai:{i}", 1)
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
    finally:
        await redis.flushdb()
        await redis.aclose()


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
