"""Texts built from data (plans, statuses, categories), in the current locale."""

from __future__ import annotations

import html
from datetime import datetime

from aiogram.utils.i18n import gettext as _

from sales_bot.plans import Catalog, Plan, format_rub


def feature_name(feature: str) -> str:
    names = {
        "booking": _("Online booking of your services"),
        "reminders": _("Booking reminders for customers"),
        "admin_panel": _("Admin panel right in Telegram (/admin)"),
        "broadcasts": _("Broadcasts to your customers"),
        "ai_assistant": _("AI assistant that answers customers' questions"),
    }
    return names.get(feature, feature)


def category_name(category: str) -> str:
    names = {
        "beauty": _("Beauty salon, barbershop"),
        "health": _("Clinic, massage, health"),
        "fitness": _("Fitness, yoga, dance"),
        "education": _("Tutoring, courses"),
        "auto": _("Car service, car wash"),
        "other": _("Something else"),
    }
    return names.get(category, category)


def status_name(status: str) -> str:
    names = {
        "active": _("active"),
        "provisioning": _("being set up"),
        "suspended": _("paused"),
        "stopped": _("stopped"),
        "failed": _("needs attention from support"),
        "deleted": _("deleted"),
    }
    return names.get(status, status)


def period(days: int) -> str:
    if days == 30:
        return _("month")
    if days == 365:
        return _("year")
    return _("{days} days").format(days=days)


def plan_line(plan: Plan, locale: str) -> str:
    return f"{plan.name(locale)} — {format_rub(plan.price)} / {period(plan.period_days)}"


def plan_card(plan: Plan, locale: str) -> str:
    lines = [f"<b>{html.escape(plan_line(plan, locale))}</b>"]
    lines += [f"• {feature_name(f)}" for f in plan.features]
    if not plan.ai_assistant:
        lines.append("• " + _("AI assistant: not included"))
    return "\n".join(lines)


def plans_text(catalog: Catalog, locale: str) -> str:
    cards = "\n\n".join(plan_card(p, locale) for p in catalog)
    return _("<b>Plans</b>") + "\n\n" + cards


def date(value: datetime | None) -> str:
    return value.strftime("%d.%m.%Y") if value else "—"


def bot_link(username: str | None) -> str:
    return f"@{html.escape(username)}" if username else _("your bot")


def decline_reason(reason: str) -> str:
    """Why YooKassa declined a charge of the saved card, for the owner."""
    names = {
        "insufficient_funds": _("not enough money on the card"),
        "card_expired": _("the card has expired"),
        "permission_revoked": _("the permission to charge the card was withdrawn"),
        "refused_by_yookassa": _("the payment service refused the charge"),
    }
    return names.get(reason, _("the bank declined the payment ({reason})").format(reason=reason))


def card(last4: str | None, expiry: str | None) -> str:
    text = f"•••• {html.escape(last4)}" if last4 else _("card")
    return f"{text} ({html.escape(expiry)})" if expiry else text


def auto_renewal_terms(amount: str, days: int, days_before: int) -> str:
    """What auto-renewal means, in plain words, before the owner agrees to it."""
    return _(
        "<b>Auto-renewal</b>: if you turn it on, YooKassa saves your card and we charge {amount} "
        "for every next {period}, {days_before} days before the paid period ends — without "
        "asking you each time. Before each charge I write to you here, and the receipt comes "
        "to your email. You can turn auto-renewal off or remove the card at any time in "
        "/subscription, in one tap: after that nothing is charged."
    ).format(amount=amount, period=period(days), days_before=days_before)
