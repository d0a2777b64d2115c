"""`python -m sales_bot`: the sales bot (long polling), its YooKassa webhook, relay and check."""

from __future__ import annotations

import asyncio
import logging

from core.logs import setup_logging
from core.settings import SalesSettings, load_settings
from core.telegram import BotTokenRefusedError
from database.pool import DatabaseUnavailableError
from sales_bot.app import SalesApp
from sales_bot.plans import PlansError


async def _run(settings: SalesSettings) -> None:
    app = await SalesApp.create(settings)
    try:
        await app.run()
    finally:
        await app.close()


def main() -> int:
    settings = load_settings(SalesSettings)
    setup_logging(settings.log_level, settings.log_format, settings=settings)
    log = logging.getLogger("sales_bot")
    if not settings.yookassa_shop_id or not settings.yookassa_secret_key:
        log.error("YOOKASSA_SHOP_ID and YOOKASSA_SECRET_KEY are required to take payments")
        return 2
    try:
        asyncio.run(_run(settings))
    except (DatabaseUnavailableError, PlansError, BotTokenRefusedError) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
