"""`Repository`: what every repository of the tenant schema shares (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg


class Repository:
    """The tenant's pool and the cache-invalidation hook; each subclass holds the SQL of one
    aggregate. `Store` combines them all."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        # Called after every change of what the bot caches (profile, rules, schedule,
        # services, admins), so caches never go stale whoever made the change.
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
