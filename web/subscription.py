"""The owner's subscription on the web, as in the sales bot's /subscription: plan, paid until,
auto-renewal (next charge date and amount, on/off), the saved card (remove it), the payments;
and a renew link.

The terms live in the sales bot's tables (control.sales_subscriptions, control.sales_orders),
read and switched through `database/subscriptions.py`, the very SQL the bot's /subscription
runs: a switch from the web takes the row lock the renewal worker holds from claiming a charge
to sending it, so it is never charged after "off" or "remove card" (docs/architecture.md). The
owner's Telegram id (`control.tenants.owner_telegram_id`, whom the sales bot sold to) is the
subscription's `user_id`. Paying happens in the sales bot (YooKassa, the orders, the outbox to
the master): "Renew / pay" opens the owner's chat with it on /subscription (a t.me deep link).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from decimal import Decimal
from typing import Literal

import aiohttp
from aiogram.exceptions import TelegramAPIError
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from core.dates import DATE_FORMAT, DATE_ZONE, paid_until
from core.telegram import build_bot
from database import subscriptions
from database.subscriptions import Subscription
from web import handlers as h
from web.accounts import Account, OwnedTenant
from web.deps import WebDeps
from web.errors import ApiError

log = logging.getLogger(__name__)
RENEW_PATH = "/internal/subscription/renew"  # sales_bot/extension.py
RECEIPT_PATH = "/internal/subscription/receipt"
PLANS_PATH = "/internal/subscription/plans"
PLAN_PATH = "/internal/subscription/plan"
_LATE_UPGRADE = frozenset({"late:period_over", "late:renewed"})  # sales_bot.orders.LateUpgrade
_STOPPED_BY_OWNER = frozenset({"opted_out", "card_removed"})
_sales_usernames: dict[str, str] = {}  # the sales bot's @username, by its token's id part

PaymentOutcome = Literal[
    "paid", "refunded", "refunded_late", "in_progress", "not_charged", "declined", "not_paid"
]


class CardOut(BaseModel):
    mask: str = Field(description="•••• and the last four digits")
    expiry: str | None = Field(None, description="MM/YY as YooKassa gave it")


class NextChargeOut(BaseModel):
    at: datetime
    date: str = Field(description="DD.MM.YYYY, Moscow time")
    amount: Decimal
    currency: str
    plan: str = Field(description="the plan the charge pays for (a chosen downgrade, or the same)")


class PaymentOut(BaseModel):
    order_id: str
    date: str = Field(description="DD.MM.YYYY, Moscow time: when paid, else when created")
    at: datetime
    amount: Decimal
    currency: str
    kind: Literal["new", "extend", "renewal", "upgrade"]
    status: Literal["pending", "paid", "canceled", "refunded"]
    outcome: PaymentOutcome = Field(description="what the owner reads, as in the sales bot")
    reason: str | None = Field(None, description="why a renewal charge was declined")


class SubscriptionOut(BaseModel):
    tenant_id: str
    bot_username: str | None
    status: str
    plan: str
    plan_name: dict[str, str] = Field(description="the plan's name by locale")
    expires_at: datetime | None = Field(description="the exclusive end of the paid period")
    paid_until: str | None = Field(
        description="the last paid day, inclusive, Moscow time, DD.MM.YYYY (as in the bots)"
    )
    auto_renew: bool
    card: CardOut | None
    next_charge: NextChargeOut | None
    last_failure: str | None = Field(None, description="why the last renewal charge failed")
    payments: list[PaymentOut]
    pay_here: bool = Field(
        description="true: POST .../subscription/renew opens the YooKassa payment for the next"
        " period; false: pay in the sales bot (renew_url)"
    )
    renew_url: str | None = Field(
        description="the owner's chat with the sales bot on /subscription, where the next period"
        " is paid (the same orders and payments as there); null when the web does not know it"
    )


class RenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto_renew: bool = Field(
        False, description="save the card this payment is made with and renew by itself"
    )
    locale: Literal["ru", "en"] = "ru"


class RenewOut(BaseModel):
    order_id: str
    confirmation_url: str = Field(description="YooKassa's payment page; the owner pays there")
    amount: Decimal
    currency: str
    plan: str
    period_days: int


class ReceiptItemOut(BaseModel):
    description: str
    quantity: Decimal
    amount: Decimal = Field(description="the price of one")


class ReceiptDocOut(BaseModel):
    type: str = Field(description="payment, or refund")
    status: str = Field(description="succeeded (registered), pending, or canceled (not registered)")
    total: Decimal
    items: list[ReceiptItemOut]
    fiscal_storage_number: str | None = Field(None, description="ФН")
    fiscal_document_number: str | None = Field(None, description="ФД")
    fiscal_attribute: str | None = Field(None, description="ФП")
    registered_at: datetime | None = None
    registered: str | None = Field(None, description="DD.MM.YYYY HH:MM, Moscow time")


class ReceiptOut(BaseModel):
    order_id: str
    amount: Decimal
    currency: str
    date: str = Field(description="DD.MM.YYYY, Moscow time: when paid")
    status: Literal["paid", "refunded"]
    pending: bool = Field(
        description="true: the payment's receipt is not registered yet (YooKassa is passing it to"
        " the tax service): try again in a few minutes"
    )
    receipts: list[ReceiptDocOut] = Field(description="the payment's receipt, then its refunds'")


class PlanOptionOut(BaseModel):
    id: str
    title: dict[str, str]
    price: Decimal = Field(description="the price of a whole period of the plan")
    period_days: int
    upgrade: bool = Field(description="true: now, for the days left; false: from the next period")
    amount_now: Decimal = Field(description="what an upgrade costs now (0 for a downgrade)")
    days_left: int


class PlansOut(BaseModel):
    current: str
    current_title: dict[str, str] = Field(description="the current plan's name by locale")
    period_end: datetime
    paid_until: str = Field(description="the last paid day, DD.MM.YYYY: a downgrade starts after")
    next_plan: str | None = Field(description="a downgrade chosen for the next period")
    plans: list[PlanOptionOut] = Field(description="every other plan on sale")


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")
    locale: Literal["ru", "en"] = "ru"


class PlanMoveOut(BaseModel):
    result: Literal["kept", "upgrade", "upgrade_paid", "downgrade"] = Field(
        description="kept: stays (a chosen downgrade cancelled); upgrade: pay `payment` now;"
        " upgrade_paid: already paid, the plan is being changed; downgrade: from `starts`"
    )
    plan: str
    starts: str | None = Field(description="a downgrade's first day, DD.MM.YYYY")
    payment: RenewOut | None


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: Literal["ru", "en"] = "ru"


class AutoRenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool


def _day(moment: datetime) -> str:
    return moment.astimezone(DATE_ZONE).strftime(DATE_FORMAT)


def _outcome(row: dict[str, object]) -> PaymentOutcome:
    status, failure, reason = row["status"], row["failure"], row["cancel_reason"]
    if status == "paid":
        return "paid"
    if status == "refunded":
        return "refunded_late" if failure in _LATE_UPGRADE else "refunded"
    if status == "pending":
        return "in_progress"
    if reason in _STOPPED_BY_OWNER:
        return "not_charged"
    return "declined" if row["kind"] == "renewal" else "not_paid"


def _payment(row: dict[str, object]) -> PaymentOut:
    at = row["paid_at"] or row["created_at"]
    assert isinstance(at, datetime)
    outcome = _outcome(row)
    return PaymentOut.model_validate(
        {
            **row,
            "at": at,
            "date": _day(at),
            "outcome": outcome,
            "reason": row["cancel_reason"] if outcome == "declined" else None,
        }
    )


async def _sales_bot_username(deps: WebDeps) -> str | None:
    """The sales bot's @username (getMe with its token, once per process), or None."""
    token = deps.settings.sales_bot_token
    if token is None:
        return None
    key = token.get_secret_value().partition(":")[0]
    if key in _sales_usernames:
        return _sales_usernames[key]
    settings = deps.settings
    bot = build_bot(token.get_secret_value(), settings.telegram_api_url, timeout=5)
    try:
        me = await asyncio.wait_for(bot.get_me(), 6)
    except (TelegramAPIError, TimeoutError, OSError) as exc:
        log.warning("the sales bot's username is unknown (getMe: %s)", type(exc).__name__)
        return None
    finally:
        await bot.session.close()
    if me.username:
        _sales_usernames[key] = me.username
    return me.username


async def _renew_url(deps: WebDeps) -> str | None:
    username = await _sales_bot_username(deps)
    return f"https://t.me/{username}?start=subscription" if username else None


async def _owner(request: web.Request) -> tuple[WebDeps, OwnedTenant]:
    """The bot asked for, when the caller owns it: someone else's or an unknown id is a 404; an
    admin the owner invited sees the bot's data but not its billing (403)."""
    deps = h._deps(request)
    account, session = await h._caller(request)
    (tenant,) = await h._owned(deps, account, request.match_info["tenant_id"], session)
    if not await _is_owner(deps, account, tenant):
        raise ApiError(403, "not_the_owner", "only the bot's owner sees and changes its payments")
    return deps, tenant


async def _is_owner(deps: WebDeps, account: Account, tenant: OwnedTenant) -> bool:
    if account.owner_telegram_id == tenant.owner_telegram_id:
        return True
    return bool(
        await deps.control.fetchval(
            "SELECT EXISTS (SELECT 1 FROM control.web_account_tenants WHERE account_id = $1"
            " AND tenant_id = $2 AND role = 'owner')",
            account.id,
            tenant.tenant_id,
        )
    )


async def _out(deps: WebDeps, tenant: OwnedTenant, sub: Subscription | None) -> SubscriptionOut:
    rows = await subscriptions.payments_of(
        deps.control, tenant.tenant_id, tenant.owner_telegram_id, limit=20
    )
    plan = deps.gate.catalog.get(tenant.plan)
    following = deps.gate.catalog.get(sub.next_plan) if sub and sub.next_plan else None
    next_charge = None
    if sub is not None and sub.auto_renew and sub.next_charge_at is not None:
        next_charge = NextChargeOut(
            at=sub.next_charge_at,
            date=_day(sub.next_charge_at),
            amount=sub.next_amount if sub.next_amount is not None else sub.amount,
            currency=sub.currency,
            plan=following.id if following else sub.plan,
        )
    card = None
    if sub is not None and sub.has_card:
        mask = f"•••• {sub.card_last4}" if sub.card_last4 else "••••"
        card = CardOut(mask=mask, expiry=sub.card_expiry)
    return SubscriptionOut(
        tenant_id=tenant.tenant_id,
        bot_username=tenant.bot_username,
        status=tenant.status,
        plan=tenant.plan,
        plan_name=dict(plan.title) if plan else {"ru": tenant.plan},
        expires_at=tenant.expires_at,
        paid_until=paid_until(tenant.expires_at) if tenant.expires_at else None,
        auto_renew=bool(sub and sub.auto_renew),
        card=card,
        next_charge=next_charge,
        last_failure=sub.last_failure if sub and sub.auto_renew else None,
        payments=[_payment(dict(r)) for r in rows],
        pay_here=_internal(deps) is not None,
        renew_url=await _renew_url(deps),
    )


async def _subscription(deps: WebDeps, tenant: OwnedTenant) -> Subscription | None:
    subs = await subscriptions.subscriptions_of(deps.control, tenant.owner_telegram_id)
    return subs.get(tenant.tenant_id)


async def show(request: web.Request) -> web.Response:
    deps, tenant = await _owner(request)
    out = await _out(deps, tenant, await _subscription(deps, tenant))
    return h._json(out)


def _no_subscription(tenant: OwnedTenant) -> ApiError:
    return ApiError(
        409,
        "no_subscription",
        f"the bot {tenant.tenant_id} was not bought through the sales bot: it has no auto-renewal"
        " or card to change",
    )


async def set_auto_renew(request: web.Request) -> web.Response:
    """As the bot's one tap: off at once (nothing is charged after it, also a charge being
    claimed right now); on only with a saved card (409 no_card otherwise: pay with auto-renewal
    chosen in the sales bot to save one)."""
    deps, tenant = await _owner(request)
    body = await h._body(request, AutoRenewIn)
    sub = await subscriptions.set_auto_renew(
        deps.control,
        tenant.tenant_id,
        tenant.owner_telegram_id,
        body.on,
        renewal_days_before=deps.settings.renewal_days_before,
    )
    if sub is None:
        raise _no_subscription(tenant)
    if body.on and not sub.auto_renew:
        raise ApiError(
            409,
            "no_card",
            "there is no saved card: pay the next period with auto-renewal chosen (Renew / pay)"
            " to save one",
        )
    log.info("tenant %s: auto-renewal turned %s on the web", tenant.tenant_id, body.on)
    return h._json(await _out(deps, tenant, sub))


async def remove_card(request: web.Request) -> web.Response:
    deps, tenant = await _owner(request)
    sub = await subscriptions.remove_card(
        deps.control,
        tenant.tenant_id,
        tenant.owner_telegram_id,
        renewal_days_before=deps.settings.renewal_days_before,
    )
    if sub is None:
        raise _no_subscription(tenant)
    log.info("tenant %s: the saved card removed on the web", tenant.tenant_id)
    return h._json(await _out(deps, tenant, sub))


def _internal(deps: WebDeps) -> tuple[str, str] | None:
    url, token = deps.settings.sales_internal_url, deps.settings.sales_internal_token
    if not url or token is None:
        return None
    return url.rstrip("/"), token.get_secret_value()


_UNAVAILABLE = "the payment service is not answering; try again shortly"


async def _ask_sales(
    deps: WebDeps, tenant: OwnedTenant, path: str, payload: dict[str, object]
) -> tuple[int, dict[str, object]]:
    """POST the sales bot's internal endpoint `path` for the tenant's owner: its status and
    JSON; 409 pay_in_telegram when the web has no internal endpoint, 503 when it is down."""
    internal = _internal(deps)
    if internal is None:
        raise ApiError(
            409,
            "pay_in_telegram",
            "payments are made in the sales bot: open renew_url of GET .../subscription",
        )
    body = {"tenant_id": tenant.tenant_id, "user_id": tenant.owner_telegram_id, **payload}
    return await post_sales(internal, path, body, tenant.tenant_id)


async def post_sales(
    internal: tuple[str, str], path: str, body: dict[str, object], what: str,
    passes: tuple[int, ...] = (200, 404, 409),
) -> tuple[int, dict[str, object]]:  # fmt: skip
    """POST the sales bot's internal endpoint (`internal`: its URL and token): the statuses in
    `passes` with their JSON; YooKassa's and the sales bot's outages as the web's errors."""
    base, token = internal
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40)) as http,
            http.post(base + path, json=body, headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            status = r.status
            data = await r.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("%s of %s: the sales bot is unreachable (%s)", path, what, exc)
        raise ApiError(503, "sales_unavailable", _UNAVAILABLE) from None
    if not isinstance(data, dict):
        data = {}
    code = data.get("error")
    if status == 503 and code == "kassa_unavailable":
        raise ApiError(
            503, "kassa_unavailable", "YooKassa is not answering right now; try again in a few"
            " minutes"
        )  # fmt: skip
    if status == 502 and code == "kassa_refused":
        raise ApiError(502, "kassa_refused", "YooKassa refused; write to support")
    if status == 503 and code == "status_unavailable":
        raise ApiError(503, "status_unavailable", "the bot's status is unavailable; try later")
    if status not in passes:
        log.warning("%s of %s: the sales bot answered %s %s", path, what, status, code)
        raise ApiError(503, "sales_unavailable", _UNAVAILABLE)
    return status, data


async def _payment_page(
    deps: WebDeps, tenant: OwnedTenant, locale: str, *, auto_renew: bool
) -> RenewOut:
    status, data = await _ask_sales(
        deps, tenant, RENEW_PATH, {"locale": locale, "auto_renew": auto_renew}
    )
    if status == 404:
        raise _no_subscription(tenant)
    if status == 409:
        raise ApiError(409, "not_payable", "this bot's plan is no longer sold: write to support")
    return RenewOut.model_validate(data)


async def renew(request: web.Request) -> web.Response:
    """The next period's payment, made by the sales bot exactly as its "Extend" makes it (an
    'extend' order and its YooKassa payment): the web gets the payment page to send the owner
    to; once paid, the sales bot extends the bot once and tells the owner in Telegram."""
    deps, tenant = await _owner(request)
    body = await h._body(request, RenewIn) if request.can_read_body else RenewIn()
    out = await _payment_page(deps, tenant, body.locale, auto_renew=body.auto_renew)
    log.info("tenant %s: a renewal payment opened on the web", tenant.tenant_id)
    return h._json(out)


async def change_card(request: web.Request) -> web.Response:
    """As the bot's "Change card": a card is saved by paying with it, so this is the next
    period's payment with auto-renewal; once paid, its card replaces the saved one."""
    deps, tenant = await _owner(request)
    body = await h._body(request, CardIn) if request.can_read_body else CardIn()
    out = await _payment_page(deps, tenant, body.locale, auto_renew=True)
    log.info("tenant %s: a card-changing payment opened on the web", tenant.tenant_id)
    return h._json(out)


async def receipt(request: web.Request) -> web.Response:
    """A payment's 54-FZ receipt as YooKassa has it now, read by the sales bot's receipt code."""
    deps, tenant = await _owner(request)
    order_id = request.match_info["payment_id"]
    if not 1 <= len(order_id) <= 64:
        raise ApiError(404, "payment_not_found", "no such paid payment of this bot")
    status, data = await _ask_sales(deps, tenant, RECEIPT_PATH, {"order_id": order_id})
    if status != 200:
        raise ApiError(
            404, "payment_not_found", "no such paid payment of this bot (only paid ones have a"
            " receipt)"
        )  # fmt: skip
    raw = data.get("receipts")
    docs = [ReceiptDocOut.model_validate(r) for r in raw] if isinstance(raw, list) else []
    for doc in docs:
        if doc.registered_at is not None:
            doc.registered = doc.registered_at.astimezone(DATE_ZONE).strftime("%d.%m.%Y %H:%M")
    sale = [d for d in docs if d.type == "payment"]
    paid_at = datetime.fromisoformat(str(data["paid_at"]))
    return h._json(
        ReceiptOut(
            order_id=str(data["order_id"]),
            amount=Decimal(str(data["amount"])),
            currency=str(data["currency"]),
            date=_day(paid_at),
            status="refunded" if data.get("status") == "refunded" else "paid",
            pending=not sale or all(d.status == "pending" for d in sale),
            receipts=docs,
        )
    )


async def plans(request: web.Request) -> web.Response:
    """The plans to move to, priced as the bot's "Change the plan" prices them."""
    deps, tenant = await _owner(request)
    status, data = await _ask_sales(deps, tenant, PLANS_PATH, {})
    if status != 200:
        raise _no_subscription(tenant)
    end = datetime.fromisoformat(str(data["period_end"]))
    plan = deps.gate.catalog.get(str(data["current"]))
    title = dict(plan.title) if plan else {"ru": str(data["current"])}
    return h._json(
        PlansOut.model_validate({**data, "current_title": title, "paid_until": paid_until(end)})
    )


async def change_plan(request: web.Request) -> web.Response:
    """As the bot's "Change the plan": a higher plan now (its prorated 'upgrade' payment page),
    a lower one from the next period, the current one cancels a chosen downgrade."""
    deps, tenant = await _owner(request)
    body = await h._body(request, PlanIn)
    status, data = await _ask_sales(
        deps, tenant, PLAN_PATH, {"plan": body.plan, "locale": body.locale}
    )
    if status == 404:
        raise _no_subscription(tenant)
    if status == 409:
        raise ApiError(409, "plan_not_sold", f"the plan {body.plan!r} is not on sale")
    result = str(data["result"])
    starts = (
        paid_until(datetime.fromisoformat(str(data["from"]))) if result == "downgrade" else None
    )
    log.info("tenant %s: plan %s on the web: %s", tenant.tenant_id, body.plan, result)
    return h._json(PlanMoveOut.model_validate({**data, "starts": starts}))
