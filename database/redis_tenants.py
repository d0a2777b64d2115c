"""Per-tenant Redis isolation: an ACL user per tenant and the tenant's key families.

Every key of a tenant starts with `{<tenant_id>}:` (core.redis.tenant_key_prefix: a Redis
Cluster hash tag, so all of a tenant's keys share one slot). The ACL user may touch only
`~{<tenant_id>}:*` (braces are plain characters in ACL patterns) and only the plain commands
the client bot needs (aiogram's `RedisStorage`, counters, throttling). Commands that ignore key
patterns (SCAN, KEYS, RANDOMKEY, DBSIZE, SELECT, FLUSH*, CONFIG) are not granted, and neither is
scripting (EVAL*, SCRIPT, FUNCTION, FCALL*): Redis runs one script at a time, so a tenant's
endless loop would stall every other tenant. The per-user event lock (`fsm_isolation`) therefore
takes its lock with SET NX PX and releases it with WATCH/MULTI, not with redis-py's Lua-based
Lock.

On a Redis Cluster (a `redis+cluster://` REDIS_URL, core/redis.py) the admin client sends every
ACL change to every node: ACL users are per node, and a tenant's slot may be on any of them.
Keys written before hash tags (`<tenant_id>:...`) are moved once by `move_tenant_keys`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from aiogram.fsm.storage.base import (
    BaseEventIsolation,
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError, WatchError

from core.redis import CLUSTER_SCHEMES, tenant_key_prefix
from core.tenant_id import validate_tenant_id
from database.roles import DEFAULT_FLEET, NameTakenError, fleet_prefix, login_role

log = logging.getLogger(__name__)
_UNKNOWN_MODIFIER_RE = re.compile(r"modifier '([^']+)': Unknown command")

# What a client bot runs: plain commands only. No EVAL/EVALSHA/SCRIPT/FUNCTION/FCALL: a script
# blocks the whole server while it runs (an 8-million-iteration loop took PING from 0.4 ms to
# 124 ms for every other tenant), and nothing a client bot runs needs one.
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
    # transactions (the event lock releases with WATCH/MULTI)
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    # connection housekeeping (redis-py sends CLIENT SETINFO on connect)
    "ping",
    "echo",
    "hello",
    "client|setinfo",
    "client|setname",
    "client|getname",
    # a Redis Cluster client learns which node serves which slot (node addresses, no keys) and
    # where each command's keys are (the command table; COMMAND GETKEYS parses, reads no data)
    "cluster|slots",
    "command",
)


class InvalidRedisUrlError(ValueError):
    """A REDIS_URL that is not a redis://, rediss:// or redis+cluster:// URL."""


@dataclass(frozen=True, slots=True)
class TenantRedis:
    tenant_id: str
    username: str
    password: str
    url: str
    key_prefix: str

    def __repr__(self) -> str:  # never print the password
        return f"TenantRedis(tenant_id={self.tenant_id!r}, key_prefix={self.key_prefix!r})"


# Which fleet owns which ACL user (database/roles.py, "Fleets"): user -> fleet mark. In the admin's
# own key space (no tenant pattern matches it), one per Redis server, shared by its fleets.
ACL_OWNERS_KEY = "botfleet:acl-owners"
TENANT_USER_RE = re.compile(r"([a-z][a-z0-9_]{0,19}_)?client_[0-9]{1,12}\Z")


def key_prefix(tenant_id: str, fleet: str = DEFAULT_FLEET) -> str:
    """`{client_001}:` (the default fleet), `{<fleet>_client_001}:` (any other)."""
    return tenant_key_prefix(login_role(tenant_id, fleet))


def _all_nodes(admin: Redis) -> dict[str, Any]:
    """Routing for a command every node must run (ACL changes): all nodes of a cluster."""
    return {"target_nodes": RedisCluster.ALL_NODES} if isinstance(admin, RedisCluster) else {}


def tenant_redis_url(server_url: str, username: str, password: str) -> str:
    """The server of `server_url`, logging in as the tenant's ACL user."""
    parts = urlsplit(server_url)
    if parts.scheme not in {"redis", "rediss", *CLUSTER_SCHEMES} or not parts.hostname:
        raise InvalidRedisUrlError(
            "REDIS_URL must look like redis://host:6379/0 (or rediss:// for TLS, "
            "redis+cluster://host:6379/0 for a Redis Cluster)"
        )
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}:{parts.port or 6379}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/0", parts.query, ""))


async def create_tenant_redis_user(
    admin: Redis,
    tenant_id: str,
    *,
    server_url: str,
    password: str | None = None,
    fleet: str = DEFAULT_FLEET,
    mark: str | None = None,
) -> TenantRedis:
    """Create or reset the tenant's ACL user (idempotent; a retry resets the password).

    With `mark` (the fleet's, database.roles.fleet_mark), a user another fleet has marked is
    refused with NameTakenError instead of being reset, and the user is marked as this fleet's.
    """
    username = login_role(tenant_id, fleet)
    prefix = tenant_key_prefix(username)
    if mark is not None:
        owner = await admin.hget(ACL_OWNERS_KEY, username)
        if owner is not None and (owner.decode() if isinstance(owner, bytes) else owner) != mark:
            raise NameTakenError(
                f"Redis ACL user {username} belongs to another fleet: give each fleet on this "
                "Redis its own FLEET_NAME"
            )
    password = password or secrets.token_urlsafe(24)
    commands = [f"+{c}" for c in TENANT_COMMANDS]
    while True:
        try:
            await admin.acl_setuser(
                username,
                enabled=True,
                reset=True,
                passwords=[f"+{password}"],
                keys=[f"{prefix}*"],
                reset_channels=True,
                commands=["-@all", *commands],
                **_all_nodes(admin),
            )
            break
        except ResponseError as exc:
            # Older servers lack some commands (CLIENT SETINFO is 7.2+): grant what exists.
            unknown = _UNKNOWN_MODIFIER_RE.search(str(exc))
            if not unknown or unknown.group(1) not in commands:
                raise
            commands.remove(unknown.group(1))
    if mark is not None:
        await admin.hset(ACL_OWNERS_KEY, username, mark)
    await _persist_acl(admin)
    return TenantRedis(
        tenant_id=tenant_id,
        username=username,
        password=password,
        url=tenant_redis_url(server_url, username, password),
        key_prefix=prefix,
    )


async def disable_tenant_redis_user(
    admin: Redis, tenant_id: str, fleet: str = DEFAULT_FLEET
) -> None:
    """Suspension: the user can no longer log in, and its open connections are closed; keys stay.

    Disabled first, killed second: a connection that logs in between the two is killed too.
    CLIENT KILL USER answers the number killed (0 is fine), so no CLIENT LIST beforehand.
    """
    username = login_role(tenant_id, fleet)
    await admin.acl_setuser(username, enabled=False, **_all_nodes(admin))
    await admin.client_kill_filter(user=username, **_all_nodes(admin))
    await _persist_acl(admin)


async def revoke_tenant_scripting(admin: Redis) -> list[str]:
    """Take scripting away from tenant users created before it was refused (`-@scripting`).

    Touches only users named like tenants that still hold a scripting command; their password,
    key pattern and other commands stay. Returns the users changed. Idempotent: for the master
    to call at start (or an operator once after upgrading).
    """
    changed: list[str] = []
    for raw in await admin.acl_list():
        line = raw.decode() if isinstance(raw, bytes) else str(raw)
        parts = line.split()
        if len(parts) < 2 or parts[0] != "user" or not TENANT_USER_RE.match(parts[1]):
            continue
        rules = set(parts[2:])
        if rules & _SCRIPTING_RULES or "+@all" in rules or "+@scripting" in rules:
            # Not acl_setuser(): it sends `off` unless enabled=True, and this must not disable.
            revoke = ("ACL", "SETUSER", parts[1], "-@scripting")
            route = _all_nodes(admin)
            await admin.execute_command(*revoke, **route)  # type: ignore[no-untyped-call]
            changed.append(parts[1])
    if changed:
        await _persist_acl(admin)
    return changed


_SCRIPTING_RULES = frozenset(
    f"+{c}"
    for c in (
        "eval",
        "eval_ro",
        "evalsha",
        "evalsha_ro",
        "script",
        "script|load",
        "script|exists",
        "script|flush",
        "script|kill",
        "function",
        "fcall",
        "fcall_ro",
    )
)


async def remove_tenant_redis(
    admin: Redis, tenant_id: str, *, drop_data: bool, fleet: str = DEFAULT_FLEET
) -> int:
    """Delete the ACL user; with `drop_data=True` also every key under the tenant prefix.

    Keys are found with SCAN MATCH (never KEYS). Returns the number of keys deleted.
    """
    username = login_role(tenant_id, fleet)
    await admin.acl_deluser(username, **_all_nodes(admin))
    await admin.hdel(ACL_OWNERS_KEY, username)
    await _persist_acl(admin)
    deleted = 0
    if drop_data:
        batch: list[bytes | str] = []
        async for key in admin.scan_iter(match=f"{tenant_key_prefix(username)}*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await admin.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await admin.unlink(*batch)
    return deleted


async def move_tenant_keys(
    admin: Redis, fleet: str = DEFAULT_FLEET, *, batch: int = 500
) -> dict[str, int]:
    """Move the keys of this fleet's tenants from before hash tags (`client_001:fsm:...`) to
    `{client_001}:fsm:...`, and their ACL users to the new pattern only. Returns the keys moved
    per user. Idempotent and cheap once done: the tenants are the ACL users still holding the
    old pattern `~client_001:*` (one ACL LIST; nothing to do, no SCAN).

    Safe while bots run: (1) each such user gets both patterns; (2) one SCAN pass renames each
    old key with RENAMENX, so a key a bot already wrote under the new name (the newer one) is
    kept and the old copy unlinked; (3) the user keeps the new pattern only, so nothing writes
    old keys any more; (4) a second pass moves what was written between (1) and (3). A key
    keeps its value and TTL: a dialog half-way through goes on from the same state. On a
    Redis Cluster nothing is moved (old keys spread over slots; no version before hash tags ran
    on a cluster): docs/scaling.md says how to move a single Redis's data to a cluster.
    """
    if isinstance(admin, RedisCluster):
        return {}
    old_user = re.compile(re.escape(fleet_prefix(fleet)) + r"client_[0-9]{1,12}\Z")
    users: list[str] = []
    for raw in await admin.acl_list():
        parts = (raw.decode() if isinstance(raw, bytes) else str(raw)).split()
        old = len(parts) > 2 and parts[0] == "user" and old_user.match(parts[1])
        if old and f"~{parts[1]}:*" in parts[2:]:
            users.append(parts[1])
    if not users:
        return {}
    for user in users:  # both patterns while keys move (not acl_setuser: it would send `off`)
        both = ("ACL", "SETUSER", user, f"~{tenant_key_prefix(user)}*")
        await admin.execute_command(*both)  # type: ignore[no-untyped-call]
    moved = dict.fromkeys(users, 0)
    await _move_old_keys(admin, moved, batch)
    for user in users:
        await admin.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", user, "resetkeys", f"~{tenant_key_prefix(user)}*"
        )
    await _move_old_keys(admin, moved, batch)
    await _persist_acl(admin)
    log.info("Redis keys moved under hash tags: %s", moved)
    return moved


async def _move_old_keys(admin: Redis, moved: dict[str, int], batch: int) -> None:
    """One SCAN pass: every `<user>:...` key of a user in `moved` renamed to `{<user>}:...`."""
    pending: list[tuple[str, bytes]] = []

    async def flush() -> None:
        async with admin.pipeline(transaction=False) as pipe:
            for user, key in pending:
                pipe.renamenx(key, tenant_key_prefix(user).encode() + key[len(user) + 1 :])
            results = await pipe.execute(raise_on_error=False)
        stale: list[bytes] = []
        for (user, key), result in zip(pending, results, strict=True):
            if result is True or result == 1:
                moved[user] += 1
            elif result is False or result == 0:
                stale.append(key)  # the new name exists: written by a bot on the new prefix
            # an error: the key expired or was deleted since SCAN saw it, nothing to move
        if stale:
            await admin.unlink(*stale)
        pending.clear()

    async for raw in admin.scan_iter(count=1000):
        key = raw if isinstance(raw, bytes) else str(raw).encode()
        user = key.partition(b":")[0].decode(errors="replace")
        if user in moved and key.startswith(user.encode() + b":"):
            pending.append((user, key))
            if len(pending) >= batch:
                await flush()
    if pending:
        await flush()


async def _persist_acl(admin: Redis) -> None:
    """ACL SAVE when Redis runs with an aclfile; otherwise the master re-creates users at start."""
    try:
        await admin.acl_save(**_all_nodes(admin))
    except ResponseError:
        log.debug("Redis has no aclfile; ACL users live in memory until the master re-creates them")


def fsm_key_builder(tenant_id: str, key_prefix: str | None = None) -> DefaultKeyBuilder:
    """Keys like `{client_001}:fsm:<bot>:<chat>:<user>:<destiny>:state` (docs/architecture.md);
    under `key_prefix` (the bot's REDIS_KEY_PREFIX, `{<fleet>_client_001}:` in another fleet)
    when given. aiogram joins the prefix and the parts with `:`, so the prefix is passed
    without its trailing colon."""
    prefix = key_prefix or tenant_key_prefix(validate_tenant_id(tenant_id))
    return DefaultKeyBuilder(
        prefix=f"{prefix}fsm", separator=":", with_bot_id=True, with_destiny=True
    )


class TenantRedisStorage(RedisStorage):
    """aiogram's RedisStorage, which also closes a `RedisCluster` (whose aclose() takes no
    `close_connection_pool`: a cluster client always closes its nodes' connections)."""

    async def close(self) -> None:
        if isinstance(self.redis, RedisCluster):
            await self.redis.aclose()
        else:
            await super().close()


def fsm_storage(redis: Redis, tenant_id: str, key_prefix: str | None = None) -> RedisStorage:
    """aiogram's own RedisStorage under the tenant prefix."""
    return TenantRedisStorage(redis, key_builder=fsm_key_builder(tenant_id, key_prefix))


class BotStorages(BaseStorage):
    """The FSM storage of a Dispatcher serving many tenants' bots: each call goes to the storage
    of the tenant whose bot the key names (`StorageKey.bot_id`), that tenant's own `RedisStorage`
    on its own ACL user and key prefix. A bot with no storage registered is a LookupError, never
    a fallback to another's; a bot id is registered to one storage at a time."""

    def __init__(self) -> None:
        self.by_bot: dict[int, BaseStorage] = {}

    def add(self, bot_id: int, storage: BaseStorage) -> None:
        if self.by_bot.setdefault(bot_id, storage) is not storage:
            raise ValueError(f"bot {bot_id} already has an FSM storage")

    def remove(self, bot_id: int, storage: BaseStorage) -> None:
        if self.by_bot.get(bot_id) is storage:
            del self.by_bot[bot_id]

    def of(self, key: StorageKey) -> BaseStorage:
        try:
            return self.by_bot[key.bot_id]
        except KeyError:
            raise LookupError(f"no FSM storage for bot {key.bot_id}") from None

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await self.of(key).set_state(key, state)

    async def get_state(self, key: StorageKey) -> str | None:
        return await self.of(key).get_state(key)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self.of(key).set_data(key, data)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return await self.of(key).get_data(key)

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        return await self.of(key).update_data(key, data)

    async def close(self) -> None:
        """Nothing of its own: each tenant closes its storage when it stops."""


class TenantEventIsolation(BaseEventIsolation):
    """aiogram's per-user event lock in Redis with plain commands (tenants may not run scripts).

    Taken with `SET <key> <token> NX PX <timeout>` (polled until free; it expires after
    `timeout` like aiogram's RedisEventIsolation), released with WATCH, GET, MULTI, DEL, EXEC
    only while the key still holds our token: a holder whose lock expired never releases the
    lock a later holder took.
    """

    def __init__(
        self, redis: Redis, key_builder: KeyBuilder, *, timeout: float = 60.0, poll: float = 0.05
    ) -> None:
        self.redis = redis
        self.key_builder = key_builder
        self.timeout_ms = max(1, int(timeout * 1000))
        self.poll = poll

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        name = self.key_builder.build(key, "lock")
        token = secrets.token_hex(16)
        # Polled: the holder may be another process, no in-process event to wait for.
        while not await self.redis.set(name, token, nx=True, px=self.timeout_ms):  # noqa: ASYNC110
            await asyncio.sleep(self.poll)
        try:
            yield None
        finally:
            await self._release(name, token)

    async def _release(self, name: str, token: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(name)
                if await pipe.get(name) in (token, token.encode()):
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(name)
                    await pipe.execute()
            except WatchError:
                pass  # it changed meanwhile: expired and taken by someone else, not ours

    async def close(self) -> None:
        pass


def fsm_isolation(
    redis: Redis, tenant_id: str, *, timeout: float = 60.0, poll: float = 0.05
) -> TenantEventIsolation:
    """A per-user event lock (`events_isolation=`) in Redis under the tenant prefix, no scripts.

    One client-bot process needs only aiogram's SimpleEventIsolation (client_bot/app.py); this
    is for several processes serving one bot.
    """
    return TenantEventIsolation(redis, fsm_key_builder(tenant_id), timeout=timeout, poll=poll)
