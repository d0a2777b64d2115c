"""Builds and runs the operator bot next to the master's API, reconciler and monitor."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import BotCommand, BotCommandScopeChat, User

from core.errors import ErrorReply
from core.metrics import BotMetrics
from core.runtime import BotRuntime
from core.telegram import BotTokenRefusedError, build_bot, wait_for_telegram
from master_bot.operator import text
from master_bot.operator.access import OperatorsOnly
from master_bot.operator.alerts import OperatorAlerter
from master_bot.operator.handlers import routers
from master_bot.operator.handlers.upgrades import UpgradeNotifier
from master_bot.operator.options import Options
from master_bot.services import Master

log = logging.getLogger(__name__)

COMMANDS = (
    ("clients", "Клиенты"),
    ("client", "Карточка клиента: /client <id>"),
    ("stats", "Сводка по флоту"),
    ("logs", "Логи: /logs <id> [строк]"),
    ("extend", "Продлить: /extend <id> <дней>"),
    ("move", "Перенести: /move <id> shared|dedicated"),
    ("deploy", "Развернуть клиента вручную"),
    ("remove", "Удалить клиента: /remove <id>"),
    ("upgrade", "Ход обновления клиентов"),
    ("help", "Все команды"),
)


class OperatorBot:
    """The operators' bot over one `Master`; `alerter` pushes the master's alerts to operators."""

    def __init__(
        self,
        master: Master,
        bot: Bot,
        operator_ids: Iterable[int],
        *,
        options: Options | None = None,
    ) -> None:
        self.master = master
        self.bot = bot
        self.operators = frozenset(operator_ids)
        self.options = options or Options()
        self.alerter = OperatorAlerter(bot, self.operators)
        self.upgrades = UpgradeNotifier(bot, self.operators)
        self.runtime = BotRuntime(
            routers(),
            # MemoryStorage on purpose: the /deploy dialog holds a bot token (see the package
            # doc), which must never reach Redis.
            storage=MemoryStorage(),
            gate=OperatorsOnly(self.operators),
            # An unexpected failure (database down, a bug): logged, and the operator is told.
            on_error=ErrorReply(
                lambda: text.INTERNAL_ERROR, name="operator bot", show_alert=True
            ).handle,
            # Its updates and errors on the master's /metrics.
            metrics=BotMetrics(master.deps.metrics.registry),
            master=self.master,
            options=self.options,
        )
        self.runtime.watch(bot)
        self.dp = self.runtime.dp

    @classmethod
    def create(
        cls,
        master: Master,
        token: str,
        operator_ids: Iterable[int],
        *,
        api_url: str,
        timeout: float = 30.0,
        options: Options | None = None,
    ) -> OperatorBot:
        return cls(master, build_bot(token, api_url, timeout), operator_ids, options=options)

    def attach(self) -> None:
        """Route the master's alerts to the operators too."""
        self.master.deps.alerts.add(self.alerter)
        self.master.upgrades.watch(self.upgrades)  # upgrade progress, edited in place

    async def set_commands(self, username: str | None = None) -> None:
        commands = [BotCommand(command=c, description=d) for c, d in COMMANDS]
        for operator in sorted(self.operators):
            try:
                await self.bot.set_my_commands(
                    commands, scope=BotCommandScopeChat(chat_id=operator)
                )
            except TelegramAPIError as exc:  # an operator who never opened the bot
                log.warning(
                    "operator bot: operator %s has not opened @%s yet (%s): alerts cannot "
                    "reach them until they open it and press Start",
                    operator,
                    username or "the operators' bot",
                    exc,
                )

    async def _identify(self) -> User | None:
        """getMe, retried while Telegram is unreachable; None when the token is refused."""
        try:
            return await wait_for_telegram(self.bot, "MASTER_BOT_TOKEN")
        except BotTokenRefusedError as exc:
            log.error("operator bot off: %s", exc)
            return None

    async def run(self) -> None:
        """Poll Telegram until `stop()`; errors are logged, never raised into the master."""
        if not self.operators:
            log.warning("operator bot: OPERATOR_IDS is empty, so everyone will be refused")
        me = await self._identify()
        if me is None:
            return
        log.info("operator bot @%s is up (%d operator(s))", me.username, len(self.operators))
        if self.operators:
            # Telegram lets a bot write only to those who opened it: "chat not found" otherwise.
            log.info(
                "operators: open https://t.me/%s once and press Start, or alerts cannot reach you",
                me.username,
            )
        await self.set_commands(me.username)
        try:
            await self.runtime.poll(self.bot)
        except TelegramAPIError as exc:
            log.error("operator bot stopped: %s", exc)

    async def stop(self) -> None:
        await self.runtime.stop()

    async def close(self) -> None:
        await self.alerter.close()
        await self.upgrades.close()
        await self.runtime.close()
        await self.bot.session.close()
