"""The master's calls to Telegram: token validation (getMe, `core.telegram.check_bot_token`, the
one token check every process uses) and messages and webhooks sent as a tenant bot.

Every call builds its Bot through `core.telegram.build_bot` (so `TELEGRAM_API_URL` applies),
closes its session, and reports errors without the token.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)

from core.logs import redact
from core.telegram import (
    BotIdentity,
    TelegramUnavailableError,
    TokenRejectedError,
    build_bot,
    check_bot_token,
)

__all__ = [
    "BotIdentity",
    "SendFailedError",
    "TelegramGateway",
    "TelegramUnavailableError",
    "TokenRejectedError",
]


class SendFailedError(RuntimeError):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class TelegramGateway:
    def __init__(self, api_url: str, *, timeout: float = 10.0) -> None:
        self.api_url = api_url
        self.timeout = timeout

    async def check_token(self, token: str) -> BotIdentity:
        """getMe with `token` (core.telegram.check_bot_token): TokenRejectedError says why it
        cannot serve a tenant, TelegramUnavailableError that Telegram can't say now."""
        return await check_bot_token(token, self.api_url, self.timeout)

    async def send_message(self, token: str, chat_id: int, text: str) -> None:
        """Send `text` as the bot of `token`; SendFailedError(permanent=...) on failure."""
        bot = build_bot(token, self.api_url, timeout=self.timeout)
        try:
            await bot.send_message(chat_id, text)
        except (
            TelegramUnauthorizedError,
            TelegramForbiddenError,
            TelegramBadRequest,
            TelegramNotFound,
        ) as exc:
            raise SendFailedError(redact(str(exc), [token]), permanent=True) from None
        except (TelegramNetworkError, TelegramAPIError) as exc:
            raise SendFailedError(redact(str(exc), [token]), permanent=False) from None
        finally:
            await bot.session.close()

    async def set_webhook(self, token: str, url: str, secret_token: str) -> None:
        """setWebhook for the bot of `token`: `url` (never containing the token) and its own
        `secret_token`; pending updates are kept (delivered to the webhook)."""
        if token in url:
            raise ValueError("a webhook URL must not contain the bot token")
        await self._call_webhook(token, url=url, secret_token=secret_token)

    async def delete_webhook(self, token: str) -> None:
        """deleteWebhook (pending updates kept, for the next webhook or getUpdates)."""
        await self._call_webhook(token)

    async def webhook_url(self, token: str) -> str:
        """getWebhookInfo's URL for the bot of `token`, "" when it has no webhook (its secret
        cannot be read back)."""
        async with self._webhook_call(token, "getWebhookInfo", [token]) as bot:
            info = await bot.get_webhook_info()
        return info.url

    async def _call_webhook(
        self, token: str, *, url: str | None = None, secret_token: str | None = None
    ) -> None:
        method = "deleteWebhook" if url is None else "setWebhook"
        async with self._webhook_call(token, method, [token, secret_token or token]) as bot:
            if url is None:
                await bot.delete_webhook(drop_pending_updates=False)
            else:
                await bot.set_webhook(url, secret_token=secret_token, drop_pending_updates=False)

    @contextlib.asynccontextmanager
    async def _webhook_call(self, token: str, method: str, hide: list[str]) -> AsyncIterator[Bot]:
        """A Bot for one webhook call; TokenRejectedError for a revoked or invalid token,
        TelegramUnavailableError (its text without `hide`) for any other failure."""
        bot = build_bot(token, self.api_url, timeout=self.timeout)
        try:
            yield bot
        except (TelegramUnauthorizedError, TelegramNotFound):
            raise TokenRejectedError(
                "Telegram rejected this bot token (invalid or revoked)"
            ) from None
        except TelegramAPIError as exc:
            raise TelegramUnavailableError(
                f"Telegram refused {method}: {redact(str(exc), hide)}"
            ) from None
        finally:
            await bot.session.close()
