"""`python -m client_bot`: one tenant's bot, configured only by its environment (docs/architecture.md)."""

from __future__ import annotations

import logging
import signal
from types import FrameType


def _stop_while_starting(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    # SIGTERM ends the bot at once while it starts (the imports below take seconds, then
    # PostgreSQL retries and getMe): in a container the bot is PID 1, for which the kernel
    # ignores a signal that has no handler, so `docker stop` of a starting bot waited out the
    # whole stop timeout. Polling replaces this with the graceful handler (client_bot/app.py).
    signal.signal(signal.SIGTERM, _stop_while_starting)
    from core.logs import setup_logging
    from core.settings import ClientBotSettings, load_settings

    # The environment is checked before aiogram is imported (seconds of CPU): a misconfigured
    # bot says why at once, and a restart loop of one costs little.
    settings = load_settings(ClientBotSettings)
    setup_logging(settings.log_level, settings.log_format, settings=settings)
    import asyncio

    from client_bot.app import run_forever
    from core.telegram import BotTokenRefusedError
    from database.pool import DatabaseUnavailableError

    try:
        asyncio.run(run_forever(settings))
    except (DatabaseUnavailableError, BotTokenRefusedError) as exc:
        logging.getLogger("client_bot").error("%s", exc)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    from core.logs import exit_flushed

    exit_flushed(main())
