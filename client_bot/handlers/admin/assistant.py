"""/admin → Assistant: on/off, the FAQ and the tone the AI assistant uses, today's usage."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards, parse
from client_bot.handlers.admin.callbacks import AdminCb, AssistantAction, AssistantCb, Screen
from client_bot.handlers.admin.screen import TYPED, admin_router, local_today, prompt, show
from client_bot.handlers.admin.states import AdminInput

FAQ_MAX = 4000
TONE_MAX = 500
FAQ_SHOWN = 700


def configured(ctx: TenantContext) -> bool:
    key = ctx.settings.openai_api_key
    return key is not None and bool(key.get_secret_value())


async def show_assistant(
    event: Message | CallbackQuery, ctx: TenantContext, note: str = ""
) -> None:
    settings = await ctx.assistant_settings()
    business = await ctx.business()
    on = configured(ctx) and ctx.settings.has_feature("ai_assistant")
    if not ctx.settings.has_feature("ai_assistant"):
        status = _(
            "not included in your plan: free text gets the menu. Switch to a plan with the AI"
            " assistant to have it answer customers."
        )
    elif not on:
        status = _(
            "not connected: the platform has no AI key for this bot. Free text gets the menu."
        )
    elif settings.enabled:
        status = _("on: it answers free text and voice messages")
    else:
        status = _("off: free text gets the menu")
    requests, tokens = await ctx.store.assistant.usage(local_today(ctx, business.zone))
    budget = ctx.settings.assistant_daily_tokens
    faq = settings.faq if len(settings.faq) <= FAQ_SHOWN else settings.faq[:FAQ_SHOWN] + "…"
    lines = [
        _("<b>🤖 AI assistant</b>"),
        _("Status: {status}").format(status=status),
        _("Today: {requests} requests, {tokens} tokens of {budget}").format(
            requests=requests, tokens=tokens, budget=budget or "∞"
        ),
        _("Tone: {tone}").format(tone=text.esc(settings.tone) or _("standard tone")),
        _("FAQ:") + "\n" + (text.esc(faq) or "—"),
        "",
        _(
            "The assistant knows your services, prices, hours and contacts; the FAQ adds what "
            "only you know (parking, payment, preparation…)."
        ),
    ]
    body = (note + "\n\n" if note else "") + "\n".join(lines)
    await show(event, body, keyboards.assistant(settings.enabled, on))


async def open_assistant(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_assistant(query, ctx)


async def toggle(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    enabled = not (await ctx.assistant_settings()).enabled
    await ctx.store.assistant.update_settings(enabled=enabled)
    await show_assistant(
        query,
        ctx,
        _("✅ The assistant is on.") if enabled else _("⏸ The assistant is off."),
    )


async def ask_faq(query: CallbackQuery, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.assistant_faq,
        _(
            "Send the FAQ for the assistant: questions and answers, or any facts customers ask "
            "about (up to {n} characters). - to clear it. /cancel to stop."
        ).format(n=FAQ_MAX),
        AdminCb(screen=Screen.assistant),
    )


async def ask_tone(query: CallbackQuery, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.assistant_tone,
        _(
            "How should the assistant talk? For example: «friendly, on first-name terms, with "
            "emoji» or «formal and brief». - for the standard tone. /cancel to stop."
        ),
        AdminCb(screen=Screen.assistant),
    )


async def set_faq(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    try:
        value = parse.text_value(message.text, FAQ_MAX, optional=True)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    await ctx.store.assistant.update_settings(faq=value)
    await show_assistant(message, ctx, _("✅ Saved."))


async def set_tone(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    try:
        value = parse.text_value(message.text, TONE_MAX, optional=True)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    await ctx.store.assistant.update_settings(tone=value)
    await show_assistant(message, ctx, _("✅ Saved."))


def router() -> Router:
    r = admin_router("admin_assistant")
    r.callback_query.register(open_assistant, AdminCb.filter(F.screen == Screen.assistant))
    r.callback_query.register(toggle, AssistantCb.filter(F.action == AssistantAction.toggle))
    r.callback_query.register(ask_faq, AssistantCb.filter(F.action == AssistantAction.faq))
    r.callback_query.register(ask_tone, AssistantCb.filter(F.action == AssistantAction.tone))
    r.message.register(set_faq, AdminInput.assistant_faq, TYPED)
    r.message.register(set_tone, AdminInput.assistant_tone, TYPED)
    return r
