"""Platform locks: row locks in `control.platform_locks`, which only the platform can reach.

Advisory locks are open to every role, so a tenant could take the platform's and hold it for
ever (provisioning and migrations would hang). A row lock here needs privileges on a control
table that no tenant role has. Waits are bounded: a lock not had within `wait_seconds` raises
`PlatformLockTimeoutError` instead of hanging.
"""

from __future__ import annotations

import asyncpg


class PlatformLockTimeoutError(RuntimeError):
    """Another platform process held the lock for longer than the wait allows."""


async def platform_lock(conn: asyncpg.Connection, name: str, *, wait_seconds: float = 60.0) -> None:
    """Lock `name` until the current transaction ends (call inside `conn.transaction()`).

    Leaves `lock_timeout` at the transaction's previous value.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("platform_lock() needs a transaction: the lock lasts until it ends")
    previous = await conn.fetchval("SELECT current_setting('lock_timeout')")
    await conn.execute(
        "SELECT set_config('lock_timeout', $1, true)", f"{int(wait_seconds * 1000)}ms"
    )
    try:
        await conn.execute(
            "INSERT INTO control.platform_locks (name) VALUES ($1) ON CONFLICT DO NOTHING", name
        )
        await conn.execute("SELECT 1 FROM control.platform_locks WHERE name = $1 FOR UPDATE", name)
    except asyncpg.LockNotAvailableError:
        raise PlatformLockTimeoutError(
            f"platform lock {name!r} not had within {wait_seconds:.0f}s: another master or "
            "`scripts.migrate` is holding it; retry when it has finished"
        ) from None
    await conn.execute("SELECT set_config('lock_timeout', $1, true)", previous)
