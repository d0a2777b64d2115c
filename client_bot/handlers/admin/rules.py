"""Booking rules: slot step, buffer, lead time, horizon, cancel cut-off, reminders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards, parse
from client_bot.handlers.admin.callbacks import AdminCb, RuleCb, RuleKey, Screen
from client_bot.handlers.admin.screen import TYPED, admin_router, prompt, show
from client_bot.handlers.admin.states import AdminInput
from client_bot.store import Business


@dataclass(frozen=True)
class Rule:
    column: str
    low: int
    high: int


# Bounds match the CHECK constraints of the `business` table.
RULES = {
    RuleKey.slot_step: Rule("slot_step", 5, 240),
    RuleKey.buffer: Rule("buffer_min", 0, 240),
    RuleKey.lead_time: Rule("lead_time_min", 0, 10080),
    RuleKey.horizon: Rule("horizon_days", 1, 365),
    RuleKey.cancel_cutoff: Rule("cancel_cutoff_min", 0, 10080),
}


def _labels() -> dict[RuleKey, str]:
    return {
        RuleKey.slot_step: _("Slot step"),
        RuleKey.buffer: _("Buffer"),
        RuleKey.lead_time: _("Lead time"),
        RuleKey.horizon: _("Horizon"),
        RuleKey.cancel_cutoff: _("Cancel cut-off"),
        RuleKey.reminders: _("Reminders"),
    }


def _reminders(offsets: tuple[int, ...]) -> str:
    if not offsets:
        return _("off")
    return _("{offsets} before the visit").format(
        offsets=", ".join(
            _("{hours} h").format(hours=m // 60)
            if m % 60 == 0
            else _("{minutes} min").format(minutes=m)
            for m in offsets
        )
    )


def rules_text(b: Business) -> str:
    return _(
        "<b>📏 Booking rules</b>\n"
        "Slot step: {step} min — how often start times are offered\n"
        "Buffer: {buffer} min — a pause after each visit\n"
        "Lead time: {lead} min — how long before a visit it can still be booked\n"
        "Horizon: {horizon} days — how far ahead one can book\n"
        "Cancel cut-off: {cutoff} min — until when customers can cancel in the bot\n"
        "Reminders: {reminders}"
    ).format(
        step=b.slot_step,
        buffer=b.buffer_min,
        lead=b.lead_time_min,
        horizon=b.horizon_days,
        cutoff=b.cancel_cutoff_min,
        reminders=_reminders(b.reminder_offsets_min),
    )


async def show_rules(event: Message | CallbackQuery, ctx: TenantContext, note: str = "") -> None:
    body = rules_text(await ctx.business())
    await show(
        event, (note + "\n\n" if note else "") + body, keyboards.rules(list(_labels().items()))
    )


async def open_rules(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_rules(query, ctx)


async def ask_rule(query: CallbackQuery, callback_data: RuleCb, state: FSMContext) -> None:
    key = callback_data.key
    if key is RuleKey.reminders:
        question = _(
            "Send how many minutes before a visit to remind the customer, like"
            " <code>1440, 120</code> (a day and two hours), or <code>-</code> for no reminders."
        )
    else:
        rule = RULES[key]
        unit = _("days") if key is RuleKey.horizon else _("minutes")
        question = _("{rule}: send a whole number of {unit} from {low} to {high}.").format(
            rule=_labels()[key], unit=unit, low=rule.low, high=rule.high
        )
    await prompt(
        query,
        state,
        AdminInput.rule,
        question + " " + _("/cancel to stop."),
        AdminCb(screen=Screen.rules),
        key=key.value,
    )


def _value(key: RuleKey, raw: str) -> tuple[str, Any]:
    if key is RuleKey.reminders:
        return "reminder_offsets_min", list(parse.offsets(raw))
    rule = RULES[key]
    return rule.column, parse.number(raw, rule.low, rule.high)


async def set_rule(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    key = RuleKey((await state.get_data())["key"])
    try:
        column, value = _value(key, message.text)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    await ctx.store.update_business(**{column: value})
    ctx.refresh()
    await show_rules(message, ctx, _("✅ Saved."))


def router() -> Router:
    r = admin_router("admin_rules")
    r.callback_query.register(open_rules, AdminCb.filter(F.screen == Screen.rules))
    r.callback_query.register(ask_rule, RuleCb.filter())
    r.message.register(set_rule, AdminInput.rule, TYPED)
    return r
