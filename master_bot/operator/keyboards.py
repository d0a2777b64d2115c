"""Inline keyboards of the operator bot."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from master_bot.operator.callbacks import (
    DeployAction,
    DeployCb,
    ListCb,
    RemoveCb,
    TenantAction,
    TenantCb,
)
from master_bot.store import TenantRecord, TenantStatus

EXTEND_DAYS = 30
PERIODS = (30, 90, 365)

Rows = list[list[InlineKeyboardButton]]


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _tenant(
    text: str, action: TenantAction, tenant_id: str, stamp: int = 0
) -> InlineKeyboardButton:
    return _button(text, TenantCb(action=action, tenant_id=tenant_id, stamp=stamp).pack())


def clients_page(
    tenants: Sequence[TenantRecord], page: int, pages: int, status: str
) -> InlineKeyboardMarkup:
    rows: Rows = []
    for pair in range(0, len(tenants), 2):
        rows.append(
            [
                _tenant(
                    f"{t.tenant_id} @{t.bot_username}" if t.bot_username else t.tenant_id,
                    TenantAction.card,
                    t.tenant_id,
                )
                for t in tenants[pair : pair + 2]
            ]
        )
    nav = []
    if page > 0:
        nav.append(_button("◀️ Назад", ListCb(page=page - 1, status=status).pack()))
    if page + 1 < pages:
        nav.append(_button("Вперёд ▶️", ListCb(page=page + 1, status=status).pack()))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def card(
    tenant: TenantRecord, placement: str | None = None, *, hubs: bool = False
) -> InlineKeyboardMarkup:
    """The card's buttons; `placement` (where the bot runs) and `hubs` (this master runs shared
    hubs) offer the move to the other placement."""
    tid = tenant.tenant_id
    status = tenant.status
    stamp = int(tenant.expires_at.timestamp()) if tenant.expires_at else 0
    rows: Rows = []
    if status is TenantStatus.ACTIVE:
        rows.append(
            [
                _tenant("⏸ Остановить", TenantAction.stop, tid),
                _tenant("🔄 Перезапустить", TenantAction.restart, tid),
            ]
        )
    elif status is TenantStatus.STOPPED:
        rows.append([_tenant("▶️ Запустить", TenantAction.start, tid)])
    if status in (TenantStatus.ACTIVE, TenantStatus.STOPPED, TenantStatus.FAILED):
        rows.append([_tenant("⛔ Приостановить", TenantAction.suspend, tid)])
    if status is TenantStatus.SUSPENDED:
        rows.append([_tenant("✅ Возобновить", TenantAction.resume, tid)])
    if status is not TenantStatus.DELETED:
        if status is not TenantStatus.PROVISIONING:
            rows.append(
                [
                    _tenant(f"➕ {EXTEND_DAYS} дней", TenantAction.extend, tid, stamp),
                    _tenant("📜 Логи", TenantAction.logs, tid),
                ]
            )
        if placement == "dedicated" and hubs:
            rows.append([_tenant("🔀 В общий хаб", TenantAction.to_shared, tid)])
        elif placement == "shared":
            rows.append([_tenant("🔀 На отдельный процесс", TenantAction.to_dedicated, tid)])
        rows.append([_tenant("🗑 Удалить", TenantAction.remove, tid)])
    rows.append(
        [
            _tenant("🔃 Обновить", TenantAction.refresh, tid),
            _button("📋 Все клиенты", ListCb(page=0).pack()),
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm_remove(tenant_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button("🗑 Да, удалить", RemoveCb(tenant_id=tenant_id, confirm=True).pack()),
                _button("Отмена", RemoveCb(tenant_id=tenant_id, confirm=False).pack()),
            ]
        ]
    )


def open_card(tenant_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[_tenant(f"Карточка {tenant_id}", TenantAction.card, tenant_id)]]
    )


def _deploy(text: str, action: DeployAction, value: str = "") -> InlineKeyboardButton:
    return _button(text, DeployCb(action=action, value=value).pack())


def deploy_cancel() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_deploy("Отмена", DeployAction.cancel)]])


def deploy_plans(plans: Sequence[str]) -> InlineKeyboardMarkup:
    rows: Rows = [[_deploy(plan, DeployAction.plan, plan)] for plan in plans]
    rows.append([_deploy("Отмена", DeployAction.cancel)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def deploy_periods() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_deploy(f"{days} дней", DeployAction.days, str(days)) for days in PERIODS],
            [_deploy("Отмена", DeployAction.cancel)],
        ]
    )


def deploy_defaults(locale: str, timezone: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_deploy(f"{locale}, {timezone}", DeployAction.defaults)],
            [_deploy("Отмена", DeployAction.cancel)],
        ]
    )


def deploy_confirm() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _deploy("🚀 Развернуть", DeployAction.confirm),
                _deploy("Отмена", DeployAction.cancel),
            ]
        ]
    )
