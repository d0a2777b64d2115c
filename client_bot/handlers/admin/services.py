"""Services: add, edit name/price/duration/description, hide or show, reorder."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards, parse
from client_bot.handlers.admin.callbacks import AdminCb, Screen, ServiceAction, ServiceAdminCb
from client_bot.handlers.admin.screen import TYPED, admin_router, prompt, show
from client_bot.handlers.admin.states import AdminInput
from client_bot.store import Service


async def services_text(ctx: TenantContext) -> tuple[str, list[Service]]:
    locale = (await ctx.business()).locale
    items = await ctx.store.services(include_hidden=True)
    if not items:
        return _("<b>💇 Services</b>\nNo services yet: add the first one."), items
    lines = [_("<b>💇 Services</b> (customers see them in this order)")]
    for i, s in enumerate(items, start=1):
        line = _("{n}. {name} — {price}, {minutes} min").format(
            n=i, name=text.esc(s.name), price=text.price(s.price, locale), minutes=s.duration_min
        )
        lines.append(line + (_(" · hidden") if s.hidden else ""))
    return "\n".join(lines), items


async def show_services(event: Message | CallbackQuery, ctx: TenantContext, note: str = "") -> None:
    body, items = await services_text(ctx)
    await show(event, (note + "\n\n" if note else "") + body, keyboards.services(items))


async def show_service(
    event: Message | CallbackQuery, ctx: TenantContext, item: Service, note: str = ""
) -> None:
    locale = (await ctx.business()).locale
    body = _(
        "<b>{name}</b>\nPrice: {price}\nDuration: {minutes} min\nDescription: {description}\n{status}"
    ).format(
        name=text.esc(item.name),
        price=text.price(item.price, locale),
        minutes=item.duration_min,
        description=text.esc(item.description) or "—",
        status=_("🙈 Hidden from customers") if item.hidden else _("👁 Shown to customers"),
    )
    if item.is_class:
        body += "\n" + _("👥 Group class: {seats} seats per session").format(seats=item.capacity)
    await show(event, (note + "\n\n" if note else "") + body, keyboards.service(item))


async def open_services(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_services(query, ctx)


async def _service_or_list(
    query: CallbackQuery, ctx: TenantContext, service_id: int
) -> Service | None:
    item = await ctx.store.service(service_id)
    if item is None:
        await show_services(query, ctx, _("This service no longer exists."))
    return item


async def view_service(
    query: CallbackQuery, callback_data: ServiceAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    item = await _service_or_list(query, ctx, callback_data.service_id)
    if item is not None:
        await show_service(query, ctx, item)


async def ask_new_service(query: CallbackQuery, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.service_add,
        _(
            "Send the new service as one message:\n<code>Name; price; minutes; description</code>\n"
            "For example: <code>Haircut; 1500; 60; Men's and women's</code>\n"
            "The description may be left out. /cancel to stop."
        ),
        AdminCb(screen=Screen.services),
    )


async def add_service(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    try:
        name, price, minutes, description = parse.service_line(message.text)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    item = await ctx.store.add_service(name, price, minutes, description)
    await show_service(message, ctx, item, _("✅ Service added."))


async def ask_edit(
    query: CallbackQuery, callback_data: ServiceAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    item = await _service_or_list(query, ctx, callback_data.service_id)
    if item is None:
        return
    questions = {
        ServiceAction.name: _("Send the new name of «{name}».").format(name=text.esc(item.name)),
        ServiceAction.price: _("Send the new price of «{name}» in roubles, like 1500.").format(
            name=text.esc(item.name)
        ),
        ServiceAction.duration: _("Send the new duration of «{name}» in minutes, like 60.").format(
            name=text.esc(item.name)
        ),
        ServiceAction.description: _(
            "Send the new description of «{name}», or - to remove it."
        ).format(name=text.esc(item.name)),
    }
    await prompt(
        query,
        state,
        AdminInput.service_edit,
        questions[callback_data.action] + "\n" + _("/cancel to stop."),
        AdminCb(screen=Screen.services),
        service_id=item.id,
        key=callback_data.action.value,
    )


def _edit_value(key: ServiceAction, raw: str) -> tuple[str, Any]:
    if key is ServiceAction.name:
        return "name", parse.text_value(raw, parse.SERVICE_NAME_MAX)
    if key is ServiceAction.price:
        return "price", parse.price(raw)
    if key is ServiceAction.duration:
        return "duration_min", parse.duration(raw)
    return "description", parse.text_value(raw, parse.DESCRIPTION_MAX, optional=True)


async def edit_service(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    data = await state.get_data()
    try:
        column, value = _edit_value(ServiceAction(data["key"]), message.text)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    item = await ctx.store.update_service(int(data["service_id"]), column, value)
    if item is None:
        await show_services(message, ctx, _("This service no longer exists."))
        return
    await show_service(message, ctx, item, _("✅ Saved."))


async def toggle_hidden(
    query: CallbackQuery, callback_data: ServiceAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    item = await _service_or_list(query, ctx, callback_data.service_id)
    if item is None:
        return
    await ctx.store.set_service_hidden(item.id, not item.hidden)
    updated = await ctx.store.service(item.id)
    assert updated is not None
    note = _("🙈 Hidden: customers no longer see it.") if updated.hidden else _("👁 Shown again.")
    await show_service(query, ctx, updated, note)


async def move(
    query: CallbackQuery, callback_data: ServiceAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    delta = -1 if callback_data.action is ServiceAction.up else 1
    await ctx.store.move_service(callback_data.service_id, delta)
    await show_services(query, ctx)


def router() -> Router:
    r = admin_router("admin_services")
    r.callback_query.register(open_services, AdminCb.filter(F.screen == Screen.services))
    r.callback_query.register(view_service, ServiceAdminCb.filter(F.action == ServiceAction.view))
    r.callback_query.register(ask_new_service, ServiceAdminCb.filter(F.action == ServiceAction.add))
    r.callback_query.register(toggle_hidden, ServiceAdminCb.filter(F.action == ServiceAction.hide))
    r.callback_query.register(
        move, ServiceAdminCb.filter(F.action.in_({ServiceAction.up, ServiceAction.down}))
    )
    r.callback_query.register(ask_edit, ServiceAdminCb.filter())
    r.message.register(add_service, AdminInput.service_add, TYPED)
    r.message.register(edit_service, AdminInput.service_edit, TYPED)
    return r
