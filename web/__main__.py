"""`python -m web`: the owner's web (accounts, API, Swagger UI at /docs, the chat widget)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from core.logs import setup_logging
from core.settings import WebSettings, load_settings
from web.app import serve


async def _main() -> None:
    settings = load_settings(WebSettings)
    # Every secret of its settings (JWT keys, ENCRYPTION_KEYS, DSN passwords, the OpenAI key,
    # the sales bot's token, ...) redacted from the logs, derived from their types.
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
