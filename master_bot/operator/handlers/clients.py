"""/clients, /client, lifecycle commands and card buttons, /extend, /move, /remove, /logs."""

from __future__ import annotations

import math
from contextlib import suppress

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message

from core.secrets import SecretDecryptionError, mask_token
from master_bot.deploy.hub import PlacedBackend
from master_bot.errors import MasterError
from master_bot.operator import keyboards, text
from master_bot.operator.callbacks import ListCb, RemoveCb, TenantAction, TenantCb
from master_bot.operator.form import tenant_ref
from master_bot.operator.options import Options
from master_bot.orders import MAX_DAYS
from master_bot.placement import move
from master_bot.services import Master
from master_bot.spec import placement
from master_bot.store import PLACEMENTS, TenantRecord, TenantStatus

LIFECYCLE = ("stop", "restart", "suspend", "resume")  # /start <id> is handled with /start
_DONE = {
    TenantAction.start: "▶️ {tid} запущен",
    TenantAction.stop: "⏸ {tid} остановлен",
    TenantAction.restart: "🔄 {tid} перезапущен",
    TenantAction.suspend: "⛔ {tid} приостановлен",
    TenantAction.resume: "✅ {tid} возобновлён",
}
USAGE_ID = (
    "Укажите клиента: <code>/{command} client_001</code> (или номер: <code>/{command} 1</code>)."
)


# ---------------------------------------------------------------------- shared pieces
def masked_token(master: Master, tenant: TenantRecord) -> str | None:
    """The tenant's token as operators may see it (`123456:***xyz`), never in full."""
    if not tenant.bot_token_enc:
        return None
    try:
        return mask_token(master.deps.box.decrypt(tenant.tenant_id, tenant.bot_token_enc))
    except SecretDecryptionError:
        return f"{tenant.bot_id}:*** (не расшифровывается)"


async def render_card(
    master: Master, tenant_id: str, header: str = ""
) -> tuple[str, InlineKeyboardMarkup]:
    tenant = await master.fleet.get(tenant_id)
    runtime = None
    if tenant.status is not TenantStatus.DELETED:
        runtime = await master.fleet.runtime(tenant_id)
    where = placement(master.deps.config, tenant)
    body = text.card(
        tenant,
        runtime,
        masked_token(master, tenant),
        master.fleet.clock(),
        header=header,
        placement=where,
    )
    hubs = isinstance(master.deps.backend, PlacedBackend)
    return body, keyboards.card(tenant, where, hubs=hubs)


async def edit(message: Message, body: str, markup: InlineKeyboardMarkup | None = None) -> None:
    try:
        await message.edit_text(body, reply_markup=markup)
    except TelegramBadRequest as exc:
        if "not modified" not in str(exc):
            raise


async def perform(
    master: Master, action: TenantAction, tenant_id: str, actor: str, *, key: str = ""
) -> str:
    """Run a lifecycle action through `Fleet`; returns the line that reports it."""
    fleet = master.fleet
    if action is TenantAction.start:
        await fleet.start(tenant_id, actor=actor)
    elif action is TenantAction.stop:
        await fleet.stop(tenant_id, actor=actor)
    elif action is TenantAction.restart:
        await fleet.restart(tenant_id, actor=actor)
    elif action is TenantAction.suspend:
        await fleet.suspend(tenant_id, actor=actor, reason="operator request")
    elif action is TenantAction.resume:
        await fleet.resume(tenant_id, actor=actor)
    elif action is TenantAction.extend:
        return await extend(master, tenant_id, keyboards.EXTEND_DAYS, key, actor)
    elif action in (TenantAction.to_shared, TenantAction.to_dedicated):
        to = "shared" if action is TenantAction.to_shared else "dedicated"
        _, where = await move(master.deps, tenant_id, to, actor=actor)
        return text.moved(tenant_id, where)
    else:
        raise ValueError(f"not a lifecycle action: {action}")
    return _DONE[action].format(tid=tenant_id)


async def extend(master: Master, tenant_id: str, days: int, key: str, actor: str) -> str:
    tenant, applied = await master.fleet.extend(tenant_id, days, key, actor=actor)
    until = text.when(tenant.expires_at)
    if not applied:
        return f"➕ Это продление {tenant_id} уже выполнено; подписка до {until}"
    return f"➕ Подписка {tenant_id} продлена на {days} дн., до {until}"


async def send_logs(
    message: Message, master: Master, options: Options, tid: str, lines: int
) -> None:
    logs = await master.fleet.logs(tid, lines)
    if not logs.strip():
        await message.answer(f"📜 Логи <b>{tid}</b> пусты.")
    elif len(logs) > options.logs_inline_max:
        document = BufferedInputFile(logs.encode(), filename=f"{tid}.log")
        await message.answer_document(
            document, caption=f"📜 Логи <b>{tid}</b>: последние {lines} строк"
        )
    else:
        await message.answer(
            f"📜 Логи <b>{tid}</b> (последние {lines} строк):\n<pre>{text.esc(logs)}</pre>"
        )


# ---------------------------------------------------------------------- /clients
async def _page(
    master: Master, options: Options, page: int, status: str
) -> tuple[str, InlineKeyboardMarkup]:
    size = options.page_size
    page = max(0, page)
    if status:
        items, total = await master.deps.store.page(
            status=status, plan=None, limit=size, offset=page * size
        )
    else:
        items, total = await master.deps.store.live_page(limit=size, offset=page * size)
    pages = max(1, math.ceil(total / size))
    if page >= pages and total:
        return await _page(master, options, pages - 1, status)
    return (
        text.clients_page(items, total, page, pages, status),
        keyboards.clients_page(items, page, pages, status),
    )


async def clients(
    message: Message, command: CommandObject, master: Master, options: Options
) -> None:
    status = (command.args or "").strip().lower()
    if status and status not in {s.value for s in TenantStatus}:
        known = ", ".join(s.value for s in TenantStatus)
        await message.answer(f"Нет такого статуса. Можно: {known}.")
        return
    body, markup = await _page(master, options, 0, status)
    await message.answer(body, reply_markup=markup)


async def clients_page(
    query: CallbackQuery, callback_data: ListCb, master: Master, options: Options
) -> None:
    await query.answer()
    body, markup = await _page(master, options, callback_data.page, callback_data.status)
    if isinstance(query.message, Message):
        await edit(query.message, body, markup)


# ---------------------------------------------------------------------- /client and commands
async def _target(message: Message, command: CommandObject) -> str | None:
    args = (command.args or "").split()
    tid = tenant_ref(args[0]) if args else None
    if tid is None:
        await message.answer(USAGE_ID.format(command=command.command))
    return tid


async def client(message: Message, command: CommandObject, master: Master) -> None:
    tid = await _target(message, command)
    if tid is None:
        return
    try:
        body, markup = await render_card(master, tid)
    except MasterError as exc:
        await message.answer(text.error(exc))
        return
    await message.answer(body, reply_markup=markup)


async def lifecycle(message: Message, command: CommandObject, master: Master, actor: str) -> None:
    tid = await _target(message, command)
    if tid is None:
        return
    action = TenantAction[command.command]
    try:
        header = await perform(master, action, tid, actor)
    except MasterError as exc:
        header = text.error(exc)
    try:
        body, markup = await render_card(master, tid, header)
    except MasterError as exc:
        await message.answer(text.error(exc))
        return
    await message.answer(body, reply_markup=markup)


async def extend_command(
    message: Message, command: CommandObject, master: Master, actor: str
) -> None:
    args = (command.args or "").split()
    tid = tenant_ref(args[0]) if args else None
    days = int(args[1]) if len(args) == 2 and args[1].isdigit() else 0
    if tid is None or not 1 <= days <= MAX_DAYS:
        await message.answer(
            f"Так: <code>/extend client_001 30</code> — номер клиента и число дней (1–{MAX_DAYS})."
        )
        return
    key = f"operator:{message.chat.id}:{message.message_id}"  # a redelivered update: once
    try:
        header = await extend(master, tid, days, key, actor)
        body, markup = await render_card(master, tid, header)
    except MasterError as exc:
        await message.answer(text.error(exc))
        return
    await message.answer(body, reply_markup=markup)


async def move_command(
    message: Message, command: CommandObject, master: Master, actor: str
) -> None:
    """`/move client_001 shared`: the same move as POST /api/v1/tenants/{id}/placement."""
    args = (command.args or "").split()
    tid = tenant_ref(args[0]) if args else None
    to = args[1].lower() if len(args) == 2 else ""
    if tid is None or to not in PLACEMENTS:
        await message.answer(
            "Так: <code>/move client_001 shared</code> (в общий хаб) или "
            "<code>/move client_001 dedicated</code> (на отдельный процесс)."
        )
        return
    try:
        _, where = await move(master.deps, tid, to, actor=actor)
        header = text.moved(tid, where)
    except MasterError as exc:
        header = text.error(exc)
    try:
        body, markup = await render_card(master, tid, header)
    except MasterError as exc:
        await message.answer(text.error(exc))
        return
    await message.answer(body, reply_markup=markup)


async def logs_command(
    message: Message, command: CommandObject, master: Master, options: Options
) -> None:
    args = (command.args or "").split()
    tid = tenant_ref(args[0]) if args else None
    lines = options.logs_lines
    if len(args) > 1:
        lines = int(args[1]) if args[1].isdigit() else 0
    if tid is None or len(args) > 2 or not 1 <= lines <= options.max_log_lines:
        await message.answer(
            "Так: <code>/logs client_001</code> или <code>/logs client_001 200</code> "
            f"(до {options.max_log_lines} строк)."
        )
        return
    try:
        await send_logs(message, master, options, tid, lines)
    except MasterError as exc:
        await message.answer(text.error(exc))


# ---------------------------------------------------------------------- /remove
def _remove_question(tenant: TenantRecord) -> str:
    return (
        f"🗑 Удалить <b>{tenant.tenant_id}</b> — {text.esc(tenant.business_name)} "
        f"({text.username(tenant)})?\n\n"
        "Бот будет остановлен, схема PostgreSQL, роль, пользователь и ключи Redis и папка клиента "
        "удалены; перед этим схема сохраняется в резервную копию. Отменить это нельзя."
    )


async def remove_command(message: Message, command: CommandObject, master: Master) -> None:
    tid = await _target(message, command)
    if tid is None:
        return
    await ask_remove(message, master, tid)


async def ask_remove(message: Message, master: Master, tid: str) -> None:
    try:
        tenant = await master.fleet.get(tid)
    except MasterError as exc:
        await message.answer(text.error(exc))
        return
    if tenant.status is TenantStatus.DELETED:
        await message.answer(f"{tid} уже удалён.")
        return
    await message.answer(_remove_question(tenant), reply_markup=keyboards.confirm_remove(tid))


async def remove_answer(
    query: CallbackQuery, callback_data: RemoveCb, master: Master, actor: str
) -> None:
    tid = callback_data.tenant_id
    message = query.message if isinstance(query.message, Message) else None
    if not callback_data.confirm:
        await query.answer("Отменено")
        if message is not None:
            await edit(message, f"Удаление {tid} отменено — клиент остаётся.")
        return
    await query.answer("Удаляю…")
    if message is not None:
        await edit(message, f"⏳ Удаляю {tid}…")
    try:
        _, backup = await master.fleet.delete(tid, actor=actor, backup=True)
    except MasterError as exc:
        if message is not None:
            await edit(message, text.error(exc), keyboards.confirm_remove(tid))
        return
    done = f"🗑 {tid} удалён."
    if backup:
        done += f"\nРезервная копия схемы: <code>{text.esc(backup)}</code>"
    if message is not None:
        await edit(message, done)


# ---------------------------------------------------------------------- card buttons
async def card_button(
    query: CallbackQuery,
    callback_data: TenantCb,
    master: Master,
    options: Options,
    actor: str,
) -> None:
    action = callback_data.action
    tid = callback_data.tenant_id
    message = query.message if isinstance(query.message, Message) else None
    if message is None:
        await query.answer("Сообщение устарело — откройте /client заново", show_alert=True)
        return
    if action is TenantAction.card:
        await query.answer()
        await client_card(message, master, tid)
    elif action is TenantAction.refresh:
        await query.answer("Обновлено")
        await refresh_card(message, master, tid)
    elif action is TenantAction.logs:
        await query.answer()
        try:
            await send_logs(message, master, options, tid, options.logs_lines)
        except MasterError as exc:
            await message.answer(text.error(exc))
    elif action is TenantAction.remove:
        await query.answer()
        await ask_remove(message, master, tid)
    else:
        await query.answer("Выполняю…")
        # Extend once per expiry shown on the card: a double press sends the same key, a
        # press on the redrawn card (new expiry) extends again.
        key = f"operator-card:{callback_data.stamp}"
        try:
            header = await perform(master, action, tid, actor, key=key)
        except MasterError as exc:
            header = text.error(exc)
        await refresh_card(message, master, tid, header)


async def client_card(message: Message, master: Master, tid: str) -> None:
    try:
        body, markup = await render_card(master, tid)
    except MasterError as exc:
        await message.answer(text.error(exc))
        return
    await message.answer(body, reply_markup=markup)


async def refresh_card(message: Message, master: Master, tid: str, header: str = "") -> None:
    try:
        body, markup = await render_card(master, tid, header)
    except MasterError as exc:
        await edit(message, text.error(exc))
        return
    with suppress(TelegramBadRequest):
        await edit(message, body, markup)


def router() -> Router:
    r = Router(name="operator-clients")
    r.message.register(clients, Command("clients"))
    r.message.register(client, Command("client"))
    r.message.register(lifecycle, Command(*LIFECYCLE))
    r.message.register(extend_command, Command("extend"))
    r.message.register(move_command, Command("move"))
    r.message.register(logs_command, Command("logs"))
    r.message.register(remove_command, Command("remove"))
    r.callback_query.register(clients_page, ListCb.filter())
    r.callback_query.register(card_button, TenantCb.filter())
    r.callback_query.register(remove_answer, RemoveCb.filter())
    return r


async def start_tenant(
    message: Message, command: CommandObject, master: Master, actor: str
) -> None:
    """`/start <id>` (the bare /start is the greeting)."""
    await lifecycle(message, command, master, actor)
