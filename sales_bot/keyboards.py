"""Inline keyboards of the dialog."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from core.categories import CATEGORIES
from sales_bot.callbacks import (
    BotOkCb,
    CategoryCb,
    ChangePlanCb,
    ConsentCb,
    EmailCb,
    ExtendCb,
    LangCb,
    MenuCb,
    OrderCb,
    PlanCb,
    TimezoneCb,
)
from sales_bot.forms import DEFAULT_TIMEZONE, TIMEZONES
from sales_bot.plans import Catalog
from sales_bot.text import category_name, plan_line


def home(locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("🛒 Buy a bot"), callback_data=MenuCb(action="buy"))
    kb.button(text=_("📋 Plans"), callback_data=MenuCb(action="plans"))
    kb.button(text=_("❓ FAQ"), callback_data=MenuCb(action="faq"))
    kb.button(text=_("💬 Contact us"), callback_data=MenuCb(action="contact"))
    if locale == "ru":
        kb.button(text="🇬🇧 English", callback_data=LangCb(locale="en"))
    else:
        kb.button(text="🇷🇺 Русский", callback_data=LangCb(locale="ru"))
    kb.adjust(1, 2, 1, 1)
    return kb.as_markup()


def back_home() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("🛒 Buy a bot"), callback_data=MenuCb(action="buy"))
    kb.button(text=_("« Back"), callback_data=MenuCb(action="home"))
    kb.adjust(1)
    return kb.as_markup()


def plans(catalog: Catalog, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for plan in catalog:
        kb.button(text=plan_line(plan, locale), callback_data=PlanCb(plan=plan.id))
    kb.adjust(1)
    return kb.as_markup()


def categories() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for category in CATEGORIES:
        kb.button(text=category_name(category), callback_data=CategoryCb(category=category))
    kb.adjust(1)
    return kb.as_markup()


def timezones() -> InlineKeyboardMarkup:
    names = {
        "Europe/Kaliningrad": _("Kaliningrad (UTC+2)"),
        "Europe/Moscow": _("Moscow (UTC+3)"),
        "Europe/Samara": _("Samara (UTC+4)"),
        "Asia/Yekaterinburg": _("Yekaterinburg (UTC+5)"),
        "Asia/Omsk": _("Omsk (UTC+6)"),
        "Asia/Novosibirsk": _("Novosibirsk (UTC+7)"),
        "Asia/Krasnoyarsk": _("Krasnoyarsk (UTC+7)"),
        "Asia/Irkutsk": _("Irkutsk (UTC+8)"),
        "Asia/Vladivostok": _("Vladivostok (UTC+10)"),
    }
    kb = InlineKeyboardBuilder()
    default = TIMEZONES.index(DEFAULT_TIMEZONE)
    kb.button(text="✅ " + names[DEFAULT_TIMEZONE], callback_data=TimezoneCb(index=default))
    for index, zone in enumerate(TIMEZONES):
        if zone != DEFAULT_TIMEZONE:
            kb.button(text=names[zone], callback_data=TimezoneCb(index=index))
    kb.adjust(1, 2)
    return kb.as_markup()


def confirm_bot() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("Yes, that's my bot"), callback_data=BotOkCb(ok=True))
    kb.button(text=_("No, I'll send another token"), callback_data=BotOkCb(ok=False))
    kb.adjust(1)
    return kb.as_markup()


def reuse_email(email: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("Use {email}").format(email=email), callback_data=EmailCb(reuse=True))
    return kb.as_markup()


def pay(order_id: str, url: str, amount_text: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=_("💳 Pay {amount}").format(amount=amount_text), url=url)],
            [
                InlineKeyboardButton(
                    text=_("I paid — check"),
                    callback_data=OrderCb(action="check", order=order_id).pack(),
                )
            ],
        ]
    )


def retry_payment(order_id: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("Try again"), callback_data=OrderCb(action="retry", order=order_id))
    return kb.as_markup()


def new_token(order_id: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("Send a new token"), callback_data=OrderCb(action="token", order=order_id))
    return kb.as_markup()


def consent(tenant: str = "") -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("✅ Yes, renew automatically"), callback_data=ConsentCb(tenant=tenant, on=True)
    )
    kb.button(
        text=_("Pay once, without auto-renewal"), callback_data=ConsentCb(tenant=tenant, on=False)
    )
    kb.adjust(1)
    return kb.as_markup()


def pay_renewal(tenant: str, amount_text: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("💳 Pay {amount}").format(amount=amount_text), callback_data=ExtendCb(tenant=tenant)
    )
    return kb.as_markup()


def fresh_upgrade(tenant: str, plan: str, plan_name: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("Move to plan {plan} at today's price").format(plan=plan_name),
        callback_data=ChangePlanCb(tenant=tenant, plan=plan),
    )
    return kb.as_markup()
