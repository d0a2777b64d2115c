"""`python -m master_bot`: the control plane (REST API, reconciler, subscription monitor,
operator bot)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from core.logs import setup_logging
from core.settings import MasterSettings, load_settings
from master_bot.app import serve


async def _main() -> None:
    settings = load_settings(MasterSettings)
    setup_logging(settings.log_level, settings.log_format, settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop=stop)


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
