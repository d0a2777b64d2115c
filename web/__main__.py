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
    setup_logging(
        settings.log_level,
        settings.log_format,
        secrets=[
            *settings.web_jwt_keys.get_secret_value().split(","),
            *settings.encryption_keys.get_secret_value().split(","),
            settings.openai_api_key.get_secret_value() if settings.openai_api_key else "",
        ],
    )
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
