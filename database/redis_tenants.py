"""Per-tenant Redis isolation: an ACL user per tenant and the tenant's key families.

Every key of a tenant starts with `<tenant_id>:`. The ACL user may touch only `~<tenant_id>:*`
and only the commands the client bot needs (aiogram's `RedisStorage` with its lock, counters,
throttling). Commands that ignore key patterns (SCAN, KEYS, RANDOMKEY, DBSIZE, SELECT, FLUSH*,
SCRIPT FLUSH, CONFIG) are not granted.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from core.tenant_id import validate_tenant_id

log = logging.getLogger(__name__)
_UNKNOWN_MODIFIER_RE = re.compile(r"modifier '([^']+)': Unknown command")

# What a client bot runs. Lua scripts come from redis-py's Lock (release/extend), which call
# GET, DEL, PEXPIRE and PTTL inside; ACL key patterns apply inside scripts too.
TENANT_COMMANDS: tuple[str, ...] = (
    # strings and keys
    "get",
    "set",
    "setex",
    "psetex",
    "getdel",
    "mget",
    "mset",
    "incr",
    "incrby",
    "decr",
    "decrby",
    "del",
    "unlink",
    "exists",
    "expire",
    "pexpire",
    "ttl",
    "pttl",
    # hashes, lists, sets, sorted sets (throttling windows, queues)
    "hget",
    "hset",
    "hdel",
    "hgetall",
    "hincrby",
    "hmget",
    "hexists",
    "lpush",
    "rpush",
    "lrange",
    "ltrim",
    "llen",
    "lpop",
    "rpop",
    "sadd",
    "srem",
    "smembers",
    "sismember",
    "scard",
    "zadd",
    "zrem",
    "zcard",
    "zrange",
    "zrangebyscore",
    "zremrangebyscore",
    "zscore",
    # transactions and the Lock's scripts
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "eval",
    "evalsha",
    "script|load",
    "script|exists",
    # connection housekeeping (redis-py sends CLIENT SETINFO on connect)
    "ping",
    "echo",
    "hello",
    "client|setinfo",
    "client|setname",
    "client|getname",
)


class InvalidRedisUrlError(ValueError):
    """A REDIS_URL that is not a redis:// or rediss:// URL."""


@dataclass(frozen=True, slots=True)
class TenantRedis:
    tenant_id: str
    username: str
    password: str
    url: str
    key_prefix: str

    def __repr__(self) -> str:  # never print the password
        return f"TenantRedis(tenant_id={self.tenant_id!r}, key_prefix={self.key_prefix!r})"


def key_prefix(tenant_id: str) -> str:
    return f"{validate_tenant_id(tenant_id)}:"


def tenant_redis_url(server_url: str, username: str, password: str) -> str:
    """The server of `server_url`, logging in as the tenant's ACL user."""
    parts = urlsplit(server_url)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise InvalidRedisUrlError(
            "REDIS_URL must look like redis://host:6379/0 (or rediss:// for TLS)"
        )
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}:{parts.port or 6379}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/0", parts.query, ""))


async def create_tenant_redis_user(
    admin: Redis, tenant_id: str, *, server_url: str, password: str | None = None
) -> TenantRedis:
    """Create or reset the tenant's ACL user (idempotent; a retry resets the password)."""
    validate_tenant_id(tenant_id)
    password = password or secrets.token_urlsafe(24)
    commands = [f"+{c}" for c in TENANT_COMMANDS]
    while True:
        try:
            await admin.acl_setuser(
                tenant_id,
                enabled=True,
                reset=True,
                passwords=[f"+{password}"],
                keys=[f"{tenant_id}:*"],
                reset_channels=True,
                commands=["-@all", *commands],
            )
            break
        except ResponseError as exc:
            # Older servers lack some commands (CLIENT SETINFO is 7.2+): grant what exists.
            unknown = _UNKNOWN_MODIFIER_RE.search(str(exc))
            if not unknown or unknown.group(1) not in commands:
                raise
            commands.remove(unknown.group(1))
    await _persist_acl(admin)
    return TenantRedis(
        tenant_id=tenant_id,
        username=tenant_id,
        password=password,
        url=tenant_redis_url(server_url, tenant_id, password),
        key_prefix=key_prefix(tenant_id),
    )


async def disable_tenant_redis_user(admin: Redis, tenant_id: str) -> None:
    """Suspension: the user can no longer log in; keys stay."""
    await admin.acl_setuser(validate_tenant_id(tenant_id), enabled=False)
    clients = await admin.client_list()
    if any(c.get("user") == tenant_id for c in clients):
        await admin.client_kill_filter(user=tenant_id)
    await _persist_acl(admin)


async def remove_tenant_redis(admin: Redis, tenant_id: str, *, drop_data: bool) -> int:
    """Delete the ACL user; with `drop_data=True` also every key under the tenant prefix.

    Keys are found with SCAN MATCH (never KEYS). Returns the number of keys deleted.
    """
    validate_tenant_id(tenant_id)
    await admin.acl_deluser(tenant_id)
    await _persist_acl(admin)
    deleted = 0
    if drop_data:
        batch: list[bytes | str] = []
        async for key in admin.scan_iter(match=f"{tenant_id}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await admin.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await admin.unlink(*batch)
    return deleted


async def _persist_acl(admin: Redis) -> None:
    """ACL SAVE when Redis runs with an aclfile; otherwise the master re-creates users at start."""
    try:
        await admin.acl_save()
    except ResponseError:
        log.debug("Redis has no aclfile; ACL users live in memory until the master re-creates them")


def fsm_key_builder(tenant_id: str) -> DefaultKeyBuilder:
    """Keys like `client_001:fsm:<bot>:<chat>:<user>:<destiny>:state` (DESIGN.md)."""
    return DefaultKeyBuilder(
        prefix=f"{validate_tenant_id(tenant_id)}:fsm", with_bot_id=True, with_destiny=True
    )


def fsm_storage(redis: Redis, tenant_id: str) -> RedisStorage:
    """aiogram's own RedisStorage under the tenant prefix."""
    return RedisStorage(redis, key_builder=fsm_key_builder(tenant_id))


def fsm_isolation(redis: Redis, tenant_id: str) -> RedisEventIsolation:
    """aiogram's per-user event lock (`events_isolation=`), under the tenant prefix."""
    return RedisEventIsolation(redis, key_builder=fsm_key_builder(tenant_id))
