"""/deploy: a manual provisioning dialog for sales made outside the sales bot.

business name -> plan -> period -> bot token (getMe) -> owner id -> locale/timezone -> confirm.
The confirmed form provisions exactly like `POST /api/v1/tenants`: the same validation model,
the same `Provisioner.provision`, with an idempotency key made when the dialog starts, so a
double press (or a retry after a Telegram hiccup) provisions one tenant.
The message with the token is deleted from the chat once read; the token is shown only masked.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from aiogram import F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from core.secrets import mask_token
from core.telegram import InvalidBotTokenError, check_token_format
from master_bot.errors import MasterError, UnavailableError
from master_bot.operator import form, keyboards, text
from master_bot.operator.callbacks import DeployAction, DeployCb
from master_bot.operator.handlers.clients import edit, render_card
from master_bot.operator.states import DeployForm
from master_bot.provision import ProvisionIncompleteError
from master_bot.services import Master
from master_bot.telegram import TelegramUnavailableError, TokenRejectedError

log = logging.getLogger(__name__)

STEPS = 6
_ASK_NAME = f"Шаг 1 из {STEPS}. Название бизнеса (как его увидят клиенты):"
_ASK_PLAN = (
    f"Шаг 2 из {STEPS}. Тариф — выберите или напишите (латиница, например <code>start</code>):"
)
_ASK_DAYS = f"Шаг 3 из {STEPS}. Срок подписки в днях — выберите или напишите число:"
_ASK_TOKEN = (
    f"Шаг 4 из {STEPS}. Токен бота клиента от @BotFather.\n"
    "Сообщение с токеном я сразу удалю из чата."
)
_ASK_OWNER = f"Шаг 5 из {STEPS}. Telegram id владельца (число; он станет админом бота):"
_ASK_DEFAULTS = (
    f"Шаг 6 из {STEPS}. Язык и часовой пояс бота. Нажмите кнопку, чтобы оставить их, "
    "или напишите свои, например <code>en Europe/Berlin</code>."
)


def _bad(reason: str, again: str) -> str:
    return f"❌ {text.esc(reason)}\n\n{again}"


async def begin(message: Message, state: FSMContext, actor: str) -> None:
    await state.clear()
    await state.set_data({"key": f"{actor}:deploy:{uuid.uuid4().hex}"})
    await state.set_state(DeployForm.name)
    await message.answer(
        "🚀 <b>Развёртывание вручную</b> — для продажи мимо бота продаж. /cancel — прервать.\n\n"
        + _ASK_NAME,
        reply_markup=keyboards.deploy_cancel(),
    )


async def cancel(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    if current == DeployForm.running.state:
        await message.answer("Развёртывание уже идёт — его не прервать; результат придёт сюда.")
        return
    await state.clear()
    await message.answer("Отменено." if current else "Нечего отменять.")


async def cancel_button(query: CallbackQuery, state: FSMContext) -> None:
    current = await state.get_state()
    if current == DeployForm.running.state:
        await query.answer("Развёртывание уже идёт", show_alert=True)
        return
    await state.clear()
    await query.answer("Отменено")
    if isinstance(query.message, Message):
        await edit(query.message, "Развёртывание отменено.")


# ---------------------------------------------------------------------- steps
async def got_name(message: Message, state: FSMContext, master: Master) -> None:
    try:
        name = form.check("business_name", message.text or "")
    except form.FormError as exc:
        await message.answer(_bad(f"Название не подходит: {exc}", _ASK_NAME))
        return
    await state.update_data(business_name=name)
    await state.set_state(DeployForm.plan)
    plans = await master.deps.store.known_plans()
    await message.answer(_ASK_PLAN, reply_markup=keyboards.deploy_plans(plans))


async def _take_plan(message: Message, state: FSMContext, value: str) -> None:
    try:
        plan = form.check("plan", value.strip())
    except form.FormError as exc:
        await message.answer(_bad(f"Тариф не подходит: {exc}", _ASK_PLAN))
        return
    await state.update_data(plan=plan)
    await state.set_state(DeployForm.days)
    await message.answer(
        f"Тариф: <b>{text.esc(plan)}</b>.\n\n{_ASK_DAYS}", reply_markup=keyboards.deploy_periods()
    )


async def got_plan(message: Message, state: FSMContext) -> None:
    await _take_plan(message, state, message.text or "")


async def plan_button(query: CallbackQuery, callback_data: DeployCb, state: FSMContext) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        await _take_plan(query.message, state, callback_data.value)


async def _take_days(message: Message, state: FSMContext, value: str) -> None:
    try:
        days = form.check("period_days", form.parse_int(value))
    except form.FormError as exc:
        await message.answer(_bad(f"Срок не подходит: {exc}", _ASK_DAYS))
        return
    await state.update_data(period_days=days)
    await state.set_state(DeployForm.token)
    await message.answer(f"Срок: <b>{days}</b> дн.\n\n{_ASK_TOKEN}")


async def got_days(message: Message, state: FSMContext) -> None:
    await _take_days(message, state, message.text or "")


async def days_button(query: CallbackQuery, callback_data: DeployCb, state: FSMContext) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        await _take_days(query.message, state, callback_data.value)


async def got_token(message: Message, state: FSMContext, master: Master) -> None:
    token = (message.text or "").strip()
    with contextlib.suppress(TelegramAPIError):
        await message.delete()  # the token does not stay in the chat history
    try:
        check_token_format(token)
    except InvalidBotTokenError:
        await message.answer(
            _bad(
                "Это не токен бота: @BotFather выдаёт его в виде 123456789:AbC-dEf_… "
                "(цифры, двоеточие и не меньше 20 символов).",
                "Пришлите токен ещё раз или /cancel.",
            )
        )
        return
    try:
        identity = await master.deps.telegram.check_token(token)
    except TokenRejectedError:
        await message.answer(
            _bad(
                f"Telegram не принял токен {mask_token(token)}: он неверный или отозван. "
                "Возьмите действующий токен у @BotFather.",
                "Пришлите другой токен или /cancel.",
            )
        )
        return
    except TelegramUnavailableError:
        await message.answer(
            _bad("Telegram сейчас не ответил на проверку токена.", "Пришлите токен ещё раз.")
        )
        return
    owner = await master.deps.store.by_token(identity.token_sha256)
    if owner is not None:
        await message.answer(
            _bad(
                f"Этот бот уже работает у клиента {owner.tenant_id}.",
                "Пришлите токен другого бота или /cancel.",
            )
        )
        return
    await state.update_data(bot_token=token, bot_username=identity.username)
    await state.set_state(DeployForm.owner)
    await message.answer(
        f"✅ Токен принят: бот @{text.esc(identity.username)} "
        f"(<code>{text.esc(mask_token(token))}</code>).\n\n{_ASK_OWNER}"
    )


async def got_owner(message: Message, state: FSMContext) -> None:
    try:
        owner = form.check("owner_telegram_id", form.parse_int(message.text or ""))
    except form.FormError as exc:
        await message.answer(_bad(f"Id не подходит: {exc}", _ASK_OWNER))
        return
    await state.update_data(owner_telegram_id=owner)
    await state.set_state(DeployForm.defaults)
    await message.answer(
        _ASK_DEFAULTS,
        reply_markup=keyboards.deploy_defaults(form.DEFAULT_LOCALE, form.DEFAULT_TIMEZONE),
    )


async def _summary(message: Message, state: FSMContext, locale: str, timezone: str) -> None:
    data = await state.update_data(locale=locale, timezone=timezone)
    await state.set_state(DeployForm.confirm)
    await message.answer(_summary_text(data), reply_markup=keyboards.deploy_confirm())


def _summary_text(data: dict[str, Any]) -> str:
    return (
        "<b>Проверьте и подтвердите</b>\n\n"
        f"Бизнес: {text.esc(data['business_name'])}\n"
        f"Тариф: {text.esc(data['plan'])}, {data['period_days']} дн.\n"
        f"Бот: @{text.esc(data.get('bot_username'))} "
        f"(<code>{text.esc(mask_token(data['bot_token']))}</code>)\n"
        f"Владелец: <code>{data['owner_telegram_id']}</code>\n"
        f"Язык и пояс: {text.esc(data['locale'])}, {text.esc(data['timezone'])}"
    )


async def got_defaults(message: Message, state: FSMContext) -> None:
    try:
        locale, timezone = form.parse_locale_timezone(message.text or "")
    except form.FormError as exc:
        await message.answer(_bad(f"Не подходит: {exc}", _ASK_DEFAULTS))
        return
    await _summary(message, state, locale, timezone)


async def defaults_button(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        await _summary(query.message, state, form.DEFAULT_LOCALE, form.DEFAULT_TIMEZONE)


# ---------------------------------------------------------------------- confirm
async def confirm(query: CallbackQuery, state: FSMContext, master: Master, actor: str) -> None:
    # Claim the dialog before any I/O: a second press finds it running (or finished).
    await state.set_state(DeployForm.running)
    data = await state.get_data()
    await query.answer("Разворачиваю…")
    message = query.message if isinstance(query.message, Message) else None
    if message is None:
        return
    await edit(message, _summary_text(data) + "\n\n⏳ Разворачиваю… это может занять минуту.")
    try:
        order = form.order(data)
    except form.FormError as exc:
        await state.clear()
        await message.answer(_bad(f"Форма не прошла проверку: {exc}", "Начните заново: /deploy"))
        return
    try:
        tenant, created = await master.provisioner.provision(order, data["key"], actor=actor)
    except ProvisionIncompleteError as exc:
        await state.clear()
        tid = exc.details.get("tenant_id")
        await message.answer(
            text.error(exc) + "\nРеконсилер доведёт развёртывание до конца сам.",
            reply_markup=keyboards.open_card(tid) if tid else None,
        )
        return
    except UnavailableError as exc:  # e.g. Telegram did not answer: the same key may retry
        await state.set_state(DeployForm.confirm)
        await message.answer(
            text.error(exc) + "\nМожно нажать «Развернуть» ещё раз.",
            reply_markup=keyboards.deploy_confirm(),
        )
        return
    except MasterError as exc:
        await state.clear()
        await message.answer(text.error(exc) + "\nНачните заново: /deploy")
        return
    await state.clear()
    header = (
        f"🚀 Клиент {tenant.tenant_id} развёрнут"
        if created
        else (f"Этот диалог уже развернул {tenant.tenant_id}")
    )
    body, markup = await render_card(master, tenant.tenant_id, header)
    await message.answer(body, reply_markup=markup)


async def busy(query: CallbackQuery) -> None:
    await query.answer("Уже разворачиваю…")


async def finished(query: CallbackQuery) -> None:
    await query.answer("Этот диалог уже завершён. Новый — /deploy", show_alert=True)


def commands_router() -> Router:
    r = Router(name="operator-deploy-commands")
    r.message.register(begin, Command("deploy"))
    r.message.register(cancel, Command("cancel"))
    r.callback_query.register(cancel_button, DeployCb.filter(F.action == DeployAction.cancel))
    return r


def router() -> Router:
    r = Router(name="operator-deploy")
    typed = F.text & ~F.text.startswith("/")
    r.message.register(got_name, DeployForm.name, typed)
    r.message.register(got_plan, DeployForm.plan, typed)
    r.message.register(got_days, DeployForm.days, typed)
    r.message.register(got_token, DeployForm.token, typed)
    r.message.register(got_owner, DeployForm.owner, typed)
    r.message.register(got_defaults, DeployForm.defaults, typed)
    r.callback_query.register(
        plan_button, DeployForm.plan, DeployCb.filter(F.action == DeployAction.plan)
    )
    r.callback_query.register(
        days_button, DeployForm.days, DeployCb.filter(F.action == DeployAction.days)
    )
    r.callback_query.register(
        defaults_button, DeployForm.defaults, DeployCb.filter(F.action == DeployAction.defaults)
    )
    r.callback_query.register(
        confirm, DeployForm.confirm, DeployCb.filter(F.action == DeployAction.confirm)
    )
    r.callback_query.register(busy, DeployForm.running, DeployCb.filter())
    r.callback_query.register(finished, DeployCb.filter(F.action == DeployAction.confirm))
    return r
