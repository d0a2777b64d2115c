"""`python -m client_bot`: one tenant's bot, configured only by its environment (docs/architecture.md)."""

from __future__ import annotations

import asyncio
import logging

from client_bot.app import run_forever
from core.logs import setup_logging
from core.settings import ClientBotSettings, load_settings
from core.telegram import BotTokenRefusedError
from database.pool import DatabaseUnavailableError


def main() -> int:
    settings = load_settings(ClientBotSettings)
    setup_logging(settings.log_level, settings.log_format, settings=settings)
    try:
        asyncio.run(run_forever(settings))
    except (DatabaseUnavailableError, BotTokenRefusedError) as exc:
        logging.getLogger("client_bot").error("%s", exc)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
