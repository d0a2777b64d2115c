"""The background loops' one shape: a pass now, then one every `interval` seconds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def run_every(interval: float, one_pass: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `one_pass` now and every `interval` seconds after, until cancelled. A failed pass is
    logged (as "`what` failed") and the next one retries: one error never ends the loop."""
    while True:
        try:
            await one_pass()
        except Exception:
            log.exception("%s failed", what)
        await asyncio.sleep(interval)
