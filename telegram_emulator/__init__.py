"""A local Telegram Bot API emulator (aiohttp) and a user-side driver for tests and sandboxes.

Point a real aiogram bot at it with
``AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))`` and act as users with
:class:`EmulatorClient`.
"""

from telegram_emulator.driver import (
    ApiCall,
    CallbackAnswer,
    ChatAction,
    EmulatorClient,
    EmulatorControlError,
    SentMessage,
)
from telegram_emulator.server import EmulatorServer
from telegram_emulator.state import ApiError, EmulatorState

__all__ = [
    "ApiCall",
    "ApiError",
    "CallbackAnswer",
    "ChatAction",
    "EmulatorClient",
    "EmulatorControlError",
    "EmulatorServer",
    "EmulatorState",
    "SentMessage",
]
