"""What the operator bot says: pure formatting of tenants, stats, alerts and errors (HTML)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.dates import paid_until
from core.logs import redact
from master_bot.alert import AlertKind
from master_bot.deploy.base import RuntimeState, RuntimeStatus
from master_bot.errors import MasterError
from master_bot.operator.stats import FleetStats
from master_bot.store import TenantRecord, TenantStatus

ZONE = ZoneInfo("Europe/Moscow")  # operators read times in Moscow time
ZONE_LABEL = "МСК"

STATUS = {
    TenantStatus.PROVISIONING: "⏳ развёртывается",
    TenantStatus.ACTIVE: "🟢 работает",
    TenantStatus.STOPPED: "⏸ остановлен",
    TenantStatus.SUSPENDED: "⛔ приостановлен",
    TenantStatus.FAILED: "❌ сбой",
    TenantStatus.DELETED: "🗑 удалён",
}
RUNTIME = {
    RuntimeState.RUNNING: "запущен",
    RuntimeState.STOPPED: "остановлен",
    RuntimeState.CRASHED: "падает",
    RuntimeState.MISSING: "не запущен",
}
_MONTHS = (
    "январь", "февраль", "март", "апрель", "май", "июнь",
    "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
)  # fmt: skip
_ALERT_TITLES = {
    AlertKind.PROVISIONED: "✅ Клиент развёрнут",
    AlertKind.PROVISION_FAILED: "❌ Развёртывание не удалось",
    AlertKind.CRASH_LOOP: "🔁 Бот клиента падает снова и снова",
    AlertKind.SUBSCRIPTION_EXPIRED: "⌛ Подписка истекла, бот приостановлен",
    AlertKind.ROLLOUT_HALTED: "⛔ Обновление ботов остановлено",
    AlertKind.RENEWAL_FAILED: "💳 Автопродление не прошло",
}

# What an operator reads when a handler failed (core.errors.ErrorReply).
INTERNAL_ERROR = "⚠️ Внутренняя ошибка мастера — подробности в его логе."

REFUSAL = (
    "⛔ Этот бот только для операторов платформы.\n"
    "Ваш Telegram id: <code>{user_id}</code> — если вы оператор, попросите добавить его в "
    "OPERATOR_IDS."
)
HELP = (
    "<b>Бот операторов botfleet</b>\n\n"
    "/clients [статус] — клиенты постранично\n"
    "/client &lt;id&gt; — карточка клиента с кнопками\n"
    "/stats — сводка по флоту\n"
    "/logs &lt;id&gt; [строк] — логи бота клиента\n"
    "/start, /stop, /restart, /suspend, /resume &lt;id&gt; — управление ботом\n"
    "/extend &lt;id&gt; &lt;дней&gt; — продлить подписку\n"
    "/move &lt;id&gt; shared|dedicated — перенести бота в общий хаб или на отдельный процесс\n"
    "/servers — серверы PostgreSQL и клиенты на них\n"
    "/dbmove &lt;id&gt; &lt;сервер&gt; — перенести данные клиента на другой сервер PostgreSQL\n"
    "/remove &lt;id&gt; — удалить клиента (с подтверждением)\n"
    "/deploy — развернуть клиента вручную (продажа мимо бота продаж)\n"
    "/cancel — прервать диалог\n\n"
    "id — это <code>client_001</code> или просто номер <code>1</code>."
)


PLACEMENT = {"dedicated": "отдельный процесс", "shared": "общий хаб"}


def moved(tenant_id: str, placement: str) -> str:
    return f"🔀 {tenant_id}: размещение — {PLACEMENT.get(placement, esc(placement))}"


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def when(moment: datetime | None, *, time: bool = True) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(ZONE)
    if not time:
        return local.strftime("%d.%m.%Y")
    return local.strftime("%d.%m.%Y %H:%M") + f" {ZONE_LABEL}"


def username(tenant: TenantRecord) -> str:
    return f"@{esc(tenant.bot_username)}" if tenant.bot_username else "(без @username)"


def tenant_line(tenant: TenantRecord) -> str:
    return (
        f"<b>{tenant.tenant_id}</b> · {STATUS[tenant.status]} · {esc(tenant.plan)} · "
        f"до {paid_until(tenant.expires_at)} · {username(tenant)}"
    )


def clients_page(
    tenants: Sequence[TenantRecord], total: int, page: int, pages: int, status: str
) -> str:
    title = "<b>Клиенты</b>" + (f" ({esc(status)})" if status else "")
    if not tenants:
        return f"{title}\n\nНикого нет."
    lines = [f"{title} — {total}, страница {page + 1} из {pages}", ""]
    lines += [tenant_line(t) for t in tenants]
    return "\n".join(lines)


def days_left(expires_at: datetime, now: datetime) -> str:
    left = expires_at - now
    if left < timedelta(0):
        return f"истекла {(-left).days} дн. назад"
    return f"осталось {left.days} дн."


def card(
    tenant: TenantRecord,
    runtime: RuntimeStatus | None,
    masked_token: str | None,
    now: datetime,
    *,
    header: str = "",
    placement: str | None = None,
) -> str:
    lines = [header, ""] if header else []
    lines += [
        f"<b>{tenant.tenant_id}</b> — {esc(tenant.business_name)}",
        f"Бот: {username(tenant)}" + (f" (id {tenant.bot_id})" if tenant.bot_id else ""),
        f"Токен: <code>{esc(masked_token or '—')}</code>",
        f"Статус: {STATUS[tenant.status]}",
    ]
    if runtime is not None:
        state = RUNTIME[runtime.state]
        extra = f", перезапусков: {runtime.restarts}" if runtime.restarts else ""
        lines.append(f"Процесс: {state}{extra}")
    lines.append(f"Тариф: {esc(tenant.plan)}")
    if placement is not None:
        lines.append(f"Размещение: {PLACEMENT.get(placement, esc(placement))}")
    lines.append(f"Сервер PostgreSQL: {esc(tenant.db_server)}")
    # The last paid day, as the sales bot tells the owner (core/dates.py), then the exact end.
    expiry = paid_until(tenant.expires_at)
    if tenant.expires_at is not None:
        end = when(tenant.expires_at)
        expiry += f" включительно (конец {end}, {days_left(tenant.expires_at, now)})"
    lines += [
        f"Подписка до: {expiry}",
        f"Владелец: <code>{tenant.owner_telegram_id}</code>",
        f"Язык и пояс: {esc(tenant.locale)}, {esc(tenant.timezone)}",
        f"Создан: {when(tenant.created_at)}",
    ]
    if tenant.status is TenantStatus.PROVISIONING:
        lines.append(f"Шаг развёртывания: {tenant.provision_step.value}")
    if tenant.suspended_at is not None:
        lines.append(f"Приостановлен: {when(tenant.suspended_at)}")
    if tenant.last_error:
        lines.append(f"Последняя ошибка: <code>{esc(redact(tenant.last_error)[:500])}</code>")
    return "\n".join(lines)


def money(amount: Decimal) -> str:
    whole = f"{amount:,.2f}".replace(",", " ")
    return whole.replace(".", ",")


def month_name(moment: datetime) -> str:
    local = moment.astimezone(ZONE)
    return f"{_MONTHS[local.month - 1]} {local.year}"


def revenue(amounts: Mapping[str, Decimal] | None) -> str:
    if amounts is None:
        return "n/a"
    if not amounts:
        return "0,00 RUB"
    return ", ".join(f"{money(total)} {esc(cur)}" for cur, total in sorted(amounts.items()))


def _ids(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" и ещё {len(items) - limit}" if len(items) > limit else "")


def stats(s: FleetStats) -> str:
    counts = s.counts
    live = sum(n for status, n in counts.items() if status != TenantStatus.DELETED.value)
    by_status = " · ".join(
        f"{STATUS[status]}: {counts.get(status.value, 0)}"
        for status in TenantStatus
        if status is not TenantStatus.DELETED
    )
    lines = [
        "<b>Флот</b>",
        f"Клиентов: {live} (удалённых: {counts.get(TenantStatus.DELETED.value, 0)})",
        by_status,
        "Процессы: "
        + ", ".join(f"{RUNTIME[state]} {s.runtimes.get(state, 0)}" for state in RuntimeState),
        "",
        f"💰 Выручка за {month_name(s.now)}: {revenue(s.revenue)}",
        f"⌛ Истекают в ближайшие {s.horizon_days} дн.: {len(s.expiring)}"
        + (
            f" — {_ids([f'{tid} (до {paid_until(at)})' for tid, at in s.expiring])}"
            if s.expiring
            else ""
        ),
        f"⏰ Истекли, льготный период: {len(s.in_grace)}"
        + (f" — {_ids(list(s.in_grace))}" if s.in_grace else ""),
        f"🔁 Падают снова и снова: {len(s.crash_looping)}"
        + (f" — {_ids(list(s.crash_looping))}" if s.crash_looping else ""),
    ]
    if s.subscriptions is not None:
        sub = s.subscriptions
        lines += [
            "",
            f"📈 MRR: {revenue({sub.currency: sub.mrr})} (оплаченных подписок: {sub.paying})",
            f"🔄 Автопродлений в ближайшие 7 дн.: {sub.renewals_due_week}",
            f"💳 Неудачных автопродлений за {month_name(s.now)}: {sub.renewals_failed}",
            f"📉 Отток за {month_name(s.now)}: {len(sub.churned)}"
            + (f" — {_ids(list(sub.churned))}" if sub.churned else ""),
        ]
    return "\n".join(lines)


def alert(kind: AlertKind, tenant_id: str | None, detail: str) -> str:
    title = _ALERT_TITLES.get(kind, f"⚠️ {kind.value}")
    head = f"{title}: <b>{tenant_id}</b>" if tenant_id else title
    return f"{head}\n{esc(redact(detail))[:3500]}"


_ERRORS = {
    "tenant_not_found": "Такого клиента нет.",
    "subscription_expired": "Подписка истекла — сначала продлите её (/extend).",
    "invalid_bot_token": "Telegram не принял этот токен (неверный или отозван).",
    "bot_token_in_use": "Этот токен уже использует другой клиент.",
    "telegram_unavailable": "Telegram не ответил — попробуйте ещё раз.",
    "runtime_failed": "Бот не запустился; реконсилер продолжит попытки.",
    "backup_failed": "Не удалось сделать резервную копию — клиент не удалён.",
    "idempotency_key_reused": "Этот запрос уже выполнялся с другими данными.",
    "no_hubs": "У этого мастера нет общих хабов.",
    "db_server_not_found": "Такого сервера PostgreSQL нет (список: /servers).",
    "db_server_unavailable": "Сервер PostgreSQL не отвечает — клиент остался где был.",
    "db_move_failed": "Перенос не удался и откатан — клиент работает на прежнем сервере.",
    "db_move_unverified": "Копия не сошлась по контрольным суммам — удалена, клиент на прежнем.",
}


def error(exc: MasterError) -> str:
    """A business-rule error for an operator: a Russian summary, then the details."""
    summary = _ERRORS.get(exc.code)
    if exc.code == "invalid_state":
        status = exc.details.get("status")
        label = STATUS.get(TenantStatus(status), str(status)) if status else "?"
        summary = f"Нельзя в текущем статусе ({label})."
    detail = esc(redact(exc.message))
    return f"⚠️ {summary}\n<i>{detail}</i>" if summary else f"⚠️ {detail}"
