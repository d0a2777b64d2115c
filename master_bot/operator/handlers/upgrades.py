"""Fleet upgrades in the operators' bot (master_bot/upgrades.py): a message when an upgrade
starts, one progress message per operator edited in place as batches settle, and the halt alert
(AlertKind.ROLLOUT_HALTED) with "▶️ Продолжить" / "↩️ Откатить"; /upgrade shows the progress.

The notifier only enqueues: the upgrade never waits for Telegram; one worker sends and edits in
order, and progress edits whose text did not change are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.logs import redact
from master_bot.alert import AlertKind
from master_bot.errors import MasterError
from master_bot.operator import text
from master_bot.services import Master
from master_bot.upgrades import Progress, UpgradeState

log = logging.getLogger(__name__)
T = TypeVar("T")

STATES = {
    UpgradeState.MIGRATING: "миграции схем клиентов",
    UpgradeState.RUNNING: "идёт",
    UpgradeState.PAUSED: "на паузе",
    UpgradeState.HALTED: "остановлено",
    UpgradeState.ROLLING_BACK: "откат",
    UpgradeState.FINISHED: "завершено ✅",
    UpgradeState.ROLLED_BACK: "откачено ↩️",
}


class UpgradeAction(enum.StrEnum):
    resume = "r"
    rollback = "b"


class UpgradeCb(CallbackData, prefix="ou"):
    action: UpgradeAction
    upgrade: int


def halted_keyboard(upgrade: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text="▶️ Продолжить",
                    callback_data=UpgradeCb(action=UpgradeAction.resume, upgrade=upgrade).pack(),
                ),
                InlineKeyboardButton(
                    text="↩️ Откатить",
                    callback_data=UpgradeCb(action=UpgradeAction.rollback, upgrade=upgrade).pack(),
                ),
            ]
        ]
    )


def bar(done: int, total: int, width: int = 12) -> str:
    filled = width if total <= 0 else round(width * done / total)
    percent = 100 if total <= 0 else round(100 * done / total)
    return "▓" * filled + "░" * (width - filled) + f" {percent}%"


def render(p: Progress) -> str:
    lines = [
        f"🔄 <b>Обновление #{p.id}</b>: {text.esc(p.image)}",
        f"Было: {text.esc(p.previous_image)}",
        f"Состояние: {STATES[p.state]}",
    ]
    for m in p.migrations:
        failed = f", ошибок: {len(m.failed)}" if m.failed else ""
        lines.append(f"Миграции ({text.esc(m.server)}): {m.done} из {m.total} схем{failed}")
    if p.state in (UpgradeState.ROLLING_BACK, UpgradeState.ROLLED_BACK):
        lines.append(f"Откат: {p.rollback_done} из {p.rollback_total}")
        lines.append(bar(p.rollback_done, p.rollback_total))
    elif p.state is not UpgradeState.MIGRATING:
        lines.append(
            f"Готово: {p.done} из {p.total} · в работе: {len(p.in_flight)}"
            f" · ошибок: {len(p.failed)} · партий: {p.batches}"
        )
        lines.append(bar(p.done, p.total))
    return "\n".join(lines)


class UpgradeNotifier:
    """Watches `Upgrades` (master.upgrades.watch) and keeps the operators informed."""

    def __init__(self, bot: Bot, operator_ids: Iterable[int], *, timeout: float = 15.0) -> None:
        self.bot = bot
        self.operators = sorted(set(operator_ids))
        self.timeout = timeout
        self._queue: asyncio.Queue[tuple[str, int, str, str | None]] = asyncio.Queue(1000)
        self._worker: asyncio.Task[None] | None = None
        self._messages: dict[tuple[int, int], int] = {}  # (upgrade, chat) -> progress message
        self._shown: dict[tuple[int, int], str] = {}

    async def __call__(self, event: str, progress: Progress) -> None:
        if not self.operators:
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="operator-upgrades")
        halted = progress.halted if event == "halted" else None
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait((event, progress.id, render(progress), halted))

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._send(*item)
            except Exception as exc:  # never take the worker down
                log.warning("upgrade notice failed: %s", redact(f"{type(exc).__name__}: {exc}"))
            finally:
                self._queue.task_done()

    async def _call(self, chat_id: int, make: Awaitable[T]) -> T | None:
        try:
            return await asyncio.wait_for(make, self.timeout)
        except (TelegramAPIError, TimeoutError) as exc:
            log.warning("upgrade notice to operator %s failed: %s", chat_id, redact(str(exc)))
            return None

    async def _send(self, event: str, upgrade: int, body: str, halted: str | None) -> None:
        for chat_id in self.operators:
            key = (upgrade, chat_id)
            if event == "started":
                await self._call(
                    chat_id,
                    self.bot.send_message(chat_id, f"🚀 Начато обновление клиентов #{upgrade}"),
                )
            message_id = self._messages.get(key)
            if message_id is None:
                sent = await self._call(chat_id, self.bot.send_message(chat_id, body))
                if sent is not None:
                    self._messages[key] = sent.message_id
                    self._shown[key] = body
            elif self._shown.get(key) != body:
                await self._call(
                    chat_id,
                    self.bot.edit_message_text(body, chat_id=chat_id, message_id=message_id),
                )
                self._shown[key] = body
            if halted is not None:
                await self._call(
                    chat_id,
                    self.bot.send_message(
                        chat_id,
                        text.alert(AlertKind.ROLLOUT_HALTED, None, halted),
                        reply_markup=halted_keyboard(upgrade),
                    ),
                )

    async def drain(self, within: float = 10.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), within)

    async def close(self) -> None:
        if self._worker is not None:
            await self.drain(5.0)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


async def show(message: Message, master: Master) -> None:
    try:
        progress = master.upgrades.snapshot()
    except MasterError:
        await message.answer("Обновлений не было с запуска мастера. Запуск: make upgrade IMAGE=…")
        return
    await message.answer(render(progress))


async def act(query: CallbackQuery, callback_data: UpgradeCb, master: Master, actor: str) -> None:
    upgrades = master.upgrades
    current = upgrades.current
    if current is None or current.id != callback_data.upgrade:
        await query.answer("Это обновление уже не текущее.", show_alert=True)
        return
    try:
        if callback_data.action is UpgradeAction.resume:
            await upgrades.resume(actor)
            note = "▶️ Продолжаю обновление"
        else:
            await upgrades.rollback(actor)
            note = "↩️ Откатываю обновлённых клиентов"
    except MasterError as exc:
        await query.answer(text.esc(exc.message)[:190], show_alert=True)
        return
    await query.answer(note)
    if isinstance(query.message, Message):
        with contextlib.suppress(TelegramAPIError):
            await query.message.edit_reply_markup(reply_markup=None)
            await query.message.answer(f"{note} (#{current.id}).")


def router() -> Router:
    r = Router(name="operator-upgrades")
    r.message.register(show, Command("upgrade"))
    r.callback_query.register(act, UpgradeCb.filter())
    return r
