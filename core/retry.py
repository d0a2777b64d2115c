"""Retry delays shared by the loops that retry for as long as it takes (the sales bot's outbox
relay and its notices to owners)."""

from __future__ import annotations

import random


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2·base, 4·base … capped at `cap`,
    with ±20 % jitter so that many retries do not fire at the same moment."""
    delay = min(base * 2.0 ** max(attempts - 1, 0), cap)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
