"""The one way every process builds an aiogram `Bot`, and waits for Telegram at start."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup, User
from aiohttp import FormData

from core.logs import redact
from core.retry import backoff
from core.settings import BOT_TOKEN_RE, TELEGRAM_PUBLIC_API


class InvalidBotTokenError(ValueError):
    """A string that cannot be a Telegram bot token."""


class BotTokenRefusedError(RuntimeError):
    """Telegram answered, and refused the bot's token (revoked or never valid): retrying is
    useless until somebody puts a current token from @BotFather in the settings."""


def check_token_format(token: str) -> str:
    if not isinstance(token, str) or not BOT_TOKEN_RE.match(token):
        raise InvalidBotTokenError(
            "this is not a bot token: @BotFather gives one like 123456789:AbC-dEf_... "
            "(digits, a colon, then at least 20 letters, digits, '-' or '_')"
        )
    return token


# Every answer is parsed as `Response[<the method's result type>]`, a generic pydantic model that
# pydantic caches only weakly: once a garbage collection has freed it, the next call of that
# method rebuilds it (a schema and a validator, 2-10 ms). Referenced here, each is built once
# per process (docs/profiling.md).
_RESPONSES: dict[Any, type[Response[Any]]] = {}


class TelegramSession(AiohttpSession):
    """aiogram's aiohttp session, keeping the response models it has used alive, and sending
    keyboards serialised by pydantic in one go (aiogram's form builder walks every button in
    Python: ~1 ms for a month calendar)."""

    def build_form_data(self, bot: Bot, method: TelegramMethod[TelegramType]) -> FormData:
        markup = getattr(method, "reply_markup", None)
        if not isinstance(markup, InlineKeyboardMarkup | ReplyKeyboardMarkup):
            return super().build_form_data(bot, method)
        form = super().build_form_data(bot, method.model_copy(update={"reply_markup": None}))
        form.add_field("reply_markup", markup.model_dump_json(exclude_none=True))
        return form

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in _RESPONSES:
            _RESPONSES[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)


def build_bot(token: str, api_url: str = TELEGRAM_PUBLIC_API, timeout: float = 30.0) -> Bot:
    """A Bot with HTML parse mode, talking to `api_url` (TELEGRAM_API_URL) with a timeout."""
    check_token_format(token)
    session = TelegramSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")), timeout=timeout)
    return Bot(
        token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
    )


async def wait_for_telegram(
    bot: Bot, who: str, *, first_delay: float = 1.0, max_delay: float = 60.0
) -> User:
    """getMe, retried with backoff while Telegram is unreachable or failing (network errors,
    5xx, flood control), so that a process started while Telegram (or the Bot API server) is
    down waits for it instead of crashing; BotTokenRefusedError when the token is refused.

    `who` names the token's setting in the log lines (the token itself is never logged)."""
    log = logging.getLogger(__name__)
    failures = 0
    while True:
        try:
            return await bot.me()
        except (TelegramUnauthorizedError, TelegramNotFound):
            raise BotTokenRefusedError(
                f"Telegram refused {who} (revoked or invalid): put a current token from "
                "@BotFather in the settings"
            ) from None
        except TelegramAPIError as exc:
            failures += 1
            delay = backoff(failures, first_delay, max_delay)
            log.warning(
                "Telegram does not answer getMe for %s (%s); retrying in %.0f s", who, exc, delay
            )
            await asyncio.sleep(delay)


class TokenRejectedError(ValueError):
    """The token is malformed, wrong or revoked, or not a bot's: ask for a current one."""


class TelegramUnavailableError(RuntimeError):
    """Telegram could not confirm the token now (network, 5xx, flood control): try again later.

    `retry_after` is Telegram's own wait in seconds when it asked for one (429), else None."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class BotIdentity:
    bot_id: int
    username: str
    first_name: str
    token_sha256: str


def token_fingerprint(token: str) -> str:
    """The SHA-256 of a bot token: how a token is recognised (already used?) without storing it."""
    return hashlib.sha256(token.encode()).hexdigest()


async def check_bot_token(
    token: str,
    api_url: str = TELEGRAM_PUBLIC_API,
    request_timeout: float = 10.0,
    *,
    max_wait: float = 5.0,
) -> BotIdentity:
    """getMe with `token` through `api_url` (TELEGRAM_API_URL), with a throwaway Bot.

    TokenRejectedError when the token cannot serve a tenant (malformed, refused, not a bot);
    TelegramUnavailableError when Telegram can't say now. Flood control (429) is waited out
    once when Telegram asks for at most `max_wait` seconds, otherwise reported as unavailable
    with its `retry_after`. Messages never contain the token."""
    try:
        check_token_format(token)
    except InvalidBotTokenError as exc:
        raise TokenRejectedError(str(exc)) from None
    bot = build_bot(token, api_url, timeout=request_timeout)
    try:
        for attempt in (1, 2):
            try:
                me = await bot.get_me()
                break
            except TelegramRetryAfter as exc:
                if attempt == 1 and exc.retry_after <= max_wait:
                    await asyncio.sleep(exc.retry_after)
                    continue
                raise TelegramUnavailableError(
                    f"Telegram asked to retry getMe in {exc.retry_after} s (flood control)",
                    retry_after=exc.retry_after,
                ) from None
            except (TelegramUnauthorizedError, TelegramNotFound):
                raise TokenRejectedError(
                    "Telegram rejected this bot token (invalid or revoked): get a current token "
                    "from @BotFather"
                ) from None
            except (TelegramNetworkError, TimeoutError) as exc:
                raise TelegramUnavailableError(
                    f"Telegram did not answer getMe: {redact(str(exc), [token])}"
                ) from None
            except TelegramAPIError as exc:
                raise TelegramUnavailableError(
                    f"Telegram refused getMe: {redact(str(exc), [token])}"
                ) from None
    finally:
        await bot.session.close()
    if not me.is_bot or not me.username:
        raise TokenRejectedError("this token does not belong to a bot")
    return BotIdentity(me.id, me.username, me.first_name, token_fingerprint(token))
