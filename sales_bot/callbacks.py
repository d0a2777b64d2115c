"""Inline button payloads: short prefixes, typed fields."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class MenuCb(CallbackData, prefix="m"):
    action: str  # home | plans | faq | contact | buy | lang


class LangCb(CallbackData, prefix="l"):
    locale: str


class PlanCb(CallbackData, prefix="p"):
    plan: str


class CategoryCb(CallbackData, prefix="c"):
    category: str


class TimezoneCb(CallbackData, prefix="tz"):
    index: int


class BotOkCb(CallbackData, prefix="bo"):
    ok: bool


class EmailCb(CallbackData, prefix="e"):
    reuse: bool


class OrderCb(CallbackData, prefix="o"):
    action: str  # check | retry | token
    order: str


class ExtendCb(CallbackData, prefix="x"):
    tenant: str


class ConsentCb(CallbackData, prefix="ar"):
    """The auto-renewal question at checkout: `tenant` is empty for a new bot."""

    tenant: str
    on: bool


class AutoRenewCb(CallbackData, prefix="as"):
    """/subscription: turn auto-renewal on or off."""

    tenant: str
    on: bool


class CardCb(CallbackData, prefix="cd"):
    """/subscription: remove the saved card."""

    tenant: str


class ChangeCardCb(CallbackData, prefix="cc"):
    """/subscription: save another card (by paying the next period with it)."""

    tenant: str


class ChangePlanCb(CallbackData, prefix="pl"):
    """/subscription: change the plan (`plan` empty: show the choice)."""

    tenant: str
    plan: str


class PaymentsCb(CallbackData, prefix="ps"):
    """/subscription: the list of payments."""

    tenant: str


class ReceiptCb(CallbackData, prefix="rc"):
    """/subscription, the list of payments: the receipt of one order's payment."""

    order: str
