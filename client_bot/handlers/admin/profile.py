"""The business as customers see it: name, welcome text, contacts, time zone, language."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards, parse
from client_bot.handlers.admin.admins import refresh_commands
from client_bot.handlers.admin.callbacks import AdminCb, LocaleCb, ProfileCb, ProfileKey, Screen
from client_bot.handlers.admin.screen import TYPED, admin_router, prompt, show
from client_bot.handlers.admin.states import AdminInput
from client_bot.store import Business

LANGUAGES = {"ru": "Русский", "en": "English"}
COLUMNS = {
    ProfileKey.name: "name",
    ProfileKey.welcome: "welcome_text",
    ProfileKey.address: "address",
    ProfileKey.phone: "phone",
    ProfileKey.map_url: "map_url",
    ProfileKey.timezone: "timezone",
}


def _labels() -> dict[ProfileKey, str]:
    return {
        ProfileKey.name: _("Name"),
        ProfileKey.welcome: _("Welcome text"),
        ProfileKey.address: _("Address"),
        ProfileKey.phone: _("Phone"),
        ProfileKey.map_url: _("Map link"),
        ProfileKey.timezone: _("Time zone"),
        ProfileKey.locale: _("Language"),
    }


def profile_text(b: Business) -> str:
    return _(
        "<b>🏷 Business profile</b>\nName: {name}\nWelcome text: {welcome}\nAddress: {address}\n"
        "Phone: {phone}\nMap link: {map_url}\nTime zone: {timezone}\nLanguage: {language}"
    ).format(
        name=text.esc(b.name) or "—",
        welcome=text.esc(b.welcome_text) or _("standard"),
        address=text.esc(b.address) or "—",
        phone=text.esc(b.phone) or "—",
        map_url=text.esc(b.map_url) or "—",
        timezone=b.timezone,
        language=LANGUAGES.get(b.locale, b.locale),
    )


async def show_profile(event: Message | CallbackQuery, ctx: TenantContext, note: str = "") -> None:
    body = profile_text(await ctx.business())
    markup = keyboards.profile(list(_labels().items()))
    await show(event, (note + "\n\n" if note else "") + body, markup)


async def open_profile(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_profile(query, ctx)


async def ask_profile(query: CallbackQuery, callback_data: ProfileCb, state: FSMContext) -> None:
    key = callback_data.key
    if key is ProfileKey.locale:
        await state.clear()
        await show(query, _("Which language should the bot speak?"), keyboards.locales())
        return
    questions = {
        ProfileKey.name: _("Send the name of the business."),
        ProfileKey.welcome: _(
            "Send the welcome text customers see on /start, or - for the standard one."
        ),
        ProfileKey.address: _("Send the address, or - to remove it."),
        ProfileKey.phone: _("Send the phone number for customers, or - to remove it."),
        ProfileKey.map_url: _("Send a link to the map (https://…), or - to remove it."),
        ProfileKey.timezone: _(
            "Send the time zone, like <code>Europe/Moscow</code>, <code>Europe/Samara</code>"
            " or <code>Asia/Yekaterinburg</code>."
        ),
    }
    await prompt(
        query,
        state,
        AdminInput.profile,
        questions[key] + " " + _("/cancel to stop."),
        AdminCb(screen=Screen.profile),
        key=key.value,
    )


def _value(key: ProfileKey, raw: str) -> str:
    if key is ProfileKey.name:
        return parse.text_value(raw, 100)
    if key is ProfileKey.welcome:
        return parse.text_value(raw, 1000, optional=True)
    if key is ProfileKey.address:
        return parse.text_value(raw, 300, optional=True)
    if key is ProfileKey.phone:
        if parse.is_blank(raw):
            return ""
        if text.normalize_phone(raw) is None:
            raise parse.InputError(
                _("This does not look like a phone number. Please type it like +7 495 123-45-67.")
            )
        return raw.strip()
    if key is ProfileKey.map_url:
        return parse.url(raw)
    return parse.timezone(raw)


async def set_profile(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    key = ProfileKey((await state.get_data())["key"])
    try:
        value = _value(key, message.text)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    await ctx.store.update_business(**{COLUMNS[key]: value})
    ctx.refresh()
    await show_profile(message, ctx, _("✅ Saved."))


async def set_locale(
    query: CallbackQuery, callback_data: LocaleCb, ctx: TenantContext, state: FSMContext, bot: Bot
) -> None:
    await state.clear()
    locale = callback_data.locale.value
    await ctx.store.update_business(locale=locale)
    ctx.refresh()
    await refresh_commands(bot, ctx)
    with ctx.i18n.use_locale(locale):  # this answer already speaks the new language
        await show_profile(
            query, ctx, _("✅ The bot speaks {language} now.").format(language=LANGUAGES[locale])
        )


def router() -> Router:
    r = admin_router("admin_profile")
    r.callback_query.register(open_profile, AdminCb.filter(F.screen == Screen.profile))
    r.callback_query.register(ask_profile, ProfileCb.filter())
    r.callback_query.register(set_locale, LocaleCb.filter())
    r.message.register(set_profile, AdminInput.profile, TYPED)
    return r
