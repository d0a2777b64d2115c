"""The retry delay shared by everything that waits for a service to come back: the sales bot's
outbox relay and notices to owners, a bot waiting for Telegram at start, a pool waiting for
PostgreSQL at start."""

from __future__ import annotations

import random


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2·base, 4·base … capped at `cap`,
    with ±20 % jitter so that many retries do not fire at the same moment."""
    delay = min(base * 2.0 ** max(attempts - 1, 0), cap)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
