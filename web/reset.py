"""Where a password-reset link goes. botfleet's owners live in Telegram and every one of them
has a chat with the sales bot (they bought there): an account linked to a Telegram id gets the
link in that chat, sent with the sales bot's token (SALES_BOT_TOKEN) by the platform, so no
tenant's bot or data ever sees it. An account without a Telegram link has no channel (the
platform sends no email): the operator sees a log line, and in the sandbox
(WEB_RESET_LOG_LINKS=true) the link itself. Sending happens after the answer, so how fast the
answer comes says nothing about whether the account exists."""

from __future__ import annotations

import asyncio
import html
import logging

from aiogram.exceptions import TelegramAPIError

from core.telegram import build_bot
from web.accounts import Account
from web.deps import WebDeps

log = logging.getLogger(__name__)
_sending: set[asyncio.Task[None]] = set()

TEXT = {
    "ru": "🔑 Сброс пароля веб-панели botfleet. Ссылка действует {minutes} мин и работает один"
    ' раз: <a href="{url}">задать новый пароль</a>.\nЕсли вы не просили сброс, ничего не делайте.',
}


async def _send(deps: WebDeps, account: Account, url: str) -> None:
    settings = deps.settings
    telegram_id = account.owner_telegram_id
    if telegram_id is None or settings.sales_bot_token is None:
        if settings.web_reset_log_links:
            log.warning("password reset for web account %s (sandbox): %s", account.id, url)
        else:
            log.warning(
                "web account %s asked for a password reset, but has no Telegram chat to get it",
                account.id,
            )
        return
    bot = build_bot(
        settings.sales_bot_token.get_secret_value(),
        settings.telegram_api_url,
        timeout=settings.telegram_timeout,
    )
    minutes = settings.web_reset_ttl // 60
    try:
        await bot.send_message(
            telegram_id, TEXT["ru"].format(minutes=minutes, url=html.escape(url, quote=True))
        )
        log.info("password reset link for web account %s sent to its Telegram", account.id)
    except TelegramAPIError as exc:
        log.warning("password reset for web account %s not delivered: %s", account.id, exc)
    finally:
        await bot.session.close()


async def deliver_reset(deps: WebDeps, account: Account, url: str) -> None:
    """Start sending the link; returns at once."""
    task = asyncio.create_task(_send(deps, account, url))
    _sending.add(task)
    task.add_done_callback(_sending.discard)
