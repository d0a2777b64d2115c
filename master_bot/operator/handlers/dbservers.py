"""/servers and /dbmove: the fleet's PostgreSQL servers and moving a tenant to another one
(master_bot/dbmove.py, the same move as POST /api/v1/tenants/{id}/db-server)."""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from master_bot.dbmove import MoveReport, move_to_server
from master_bot.dbservers import SERVER_NAME_PATTERN, ServerStore
from master_bot.errors import MasterError
from master_bot.operator import text
from master_bot.operator.form import tenant_ref
from master_bot.operator.handlers.clients import render_card
from master_bot.services import Master

USAGE = (
    "Так: <code>/dbmove client_001 pg2</code> — перенести данные клиента на сервер PostgreSQL "
    "pg2 (список: /servers)."
)


async def servers_command(message: Message, master: Master) -> None:
    found = await ServerStore(master.deps.pool).list()
    lines = ["<b>Серверы PostgreSQL</b> (живых клиентов на каждом):"]
    for server in found:
        closed = "" if server.accepting else " · новых не принимает"
        lines.append(f"• <code>{text.esc(server.name)}</code> — {server.tenants}{closed}")
    lines.append("\nНовые клиенты идут на наименее загруженный. " + USAGE)
    await message.answer("\n".join(lines))


def _done(tenant_id: str, report: MoveReport) -> str:
    if not report.moved:
        return f"🗄 {tenant_id} уже на сервере {text.esc(report.target)}"
    done = (
        f"🗄 {tenant_id}: данные перенесены с {text.esc(report.source)} на "
        f"{text.esc(report.target)} за {report.seconds:.1f} с, {report.rows} строк сверено по "
        "контрольным суммам"
    )
    if not report.old_copy_dropped:
        done += (
            f"\n⚠️ Старая копия на {text.esc(report.source)} ещё не удалена (сервер не отвечает): "
            "повторите /dbmove, когда он ответит"
        )
    return done


async def dbmove_command(
    message: Message, command: CommandObject, master: Master, actor: str
) -> None:
    args = (command.args or "").split()
    tid = tenant_ref(args[0]) if args else None
    name = args[1] if len(args) == 2 else ""
    if tid is None or not re.fullmatch(SERVER_NAME_PATTERN, name):
        await message.answer(USAGE)
        return
    await message.answer(f"⏳ {tid}: переношу на {name}; бот остановится на время копирования…")
    try:
        header = _done(tid, await move_to_server(master.deps, tid, name, actor=actor))
    except MasterError as exc:
        header = text.error(exc)
    try:
        body, markup = await render_card(master, tid, header)
    except MasterError as exc:
        await message.answer(header + "\n" + text.error(exc))
        return
    await message.answer(body, reply_markup=markup)


def router() -> Router:
    r = Router(name="operator-dbservers")
    r.message.register(servers_command, Command("servers"))
    r.message.register(dbmove_command, Command("dbmove"))
    return r
