"""A new bot bought on the owner's web: the second door to the orders the dialog sells.

A logged-in web account chooses a plan; the sales bot opens the same 'new' order and YooKassa
payment as the dialog does (`Billing.open_web`, `extension.checkout`), sending the payer back
to the web's page. The payment is settled by the same webhook, periodic check and "check now"
(`Billing.check`), and its provisioning is the same outbox row, parked until the owner gives
the bot token on the web (`give_token`; checked as in the dialog, `bot_token.accept_token`).
The owner's Telegram id (the bot's /admin) is the account's when it has one, else whoever
pressed Start in the new bot. A paid order is never lost: a refused token (here, or by the
master later) is asked for again, and the order waits.

The web reaches this over the internal endpoints (bearer SALES_INTERNAL_TOKEN, as
`extension.internal_routes`); an order is only ever shown to, and changed by, the account that
placed it (another account's order id is a 404).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from sales_bot.bot_token import Problem, TokenRefused, accept_token, first_private_sender
from sales_bot.context import SalesContext
from sales_bot.extension import NotOwned, PlanGone, checkout, guarded
from sales_bot.orders import OrderKind, OrderStatus
from sales_bot.relay import TOKEN_REFUSALS
from sales_bot.store import Order
from sales_bot.vault import order_context

log = logging.getLogger(__name__)
ORDER_PATH = "/internal/purchase/order"
LIST_PATH = "/internal/purchase/list"
STATUS_PATH = "/internal/purchase/status"
TOKEN_PATH = "/internal/purchase/token"  # noqa: S105 - a path, not a secret


class NeedsStart(Exception):
    """Nobody has pressed Start in the new bot yet: its owner is unknown."""

    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username


def stage(order: Order) -> str:
    """Where the order is, as the web shows it: pay, token, setting_up, live, canceled,
    refunded."""
    if order.status is OrderStatus.PENDING:
        return "pay"
    if order.status is not OrderStatus.PAID:
        return order.status.value
    if order.fulfilled_at is not None:
        return "live"
    if order.bot_token_enc is None or order.failure in TOKEN_REFUSALS:
        return "token"
    return "setting_up"


async def open_order(
    ctx: SalesContext, *, account_id: int, user_id: int | None, email: str, plan_id: str,
    locale: str, business_name: str, return_url: str,
) -> Order:  # fmt: skip
    """The account's order of `plan_id` with its payment (the unpaid one again when asked
    twice); PlanGone when the plan is not on sale."""
    plan = ctx.catalog.get(plan_id)
    if plan is None:
        raise PlanGone(plan_id)
    order = await ctx.billing.open_web(
        account_id=account_id, user_id=user_id, locale=locale, plan=plan, email=email,
        business_name=business_name,
    )  # fmt: skip
    return await checkout(ctx, order, return_url)


async def owned(ctx: SalesContext, account_id: int, order_id: str) -> Order:
    order = await ctx.store.get(order_id)
    if order is None or order.web_account_id != account_id or order.kind is not OrderKind.NEW:
        raise NotOwned(order_id)
    return order


async def status(ctx: SalesContext, account_id: int, order_id: str) -> Order:
    """The order now: an unpaid one's payment is re-read from YooKassa first (the owner is
    back from its page; the notification may not have come yet)."""
    return await ctx.billing.check(await owned(ctx, account_id, order_id))


async def give_token(ctx: SalesContext, account_id: int, order_id: str, text: str) -> Order:
    """The bot token of a paid order: checked (TokenRefused), its owner known (NeedsStart),
    then provisioning runs. NotOwned: not this account's order, or it waits for no token."""
    order = await owned(ctx, account_id, order_id)
    if stage(order) != "token":
        raise NotOwned(order_id)
    token, identity = await accept_token(ctx, text)
    owner = order.user_id or await first_private_sender(ctx, token)
    if owner is None:
        raise NeedsStart(identity.username)
    given = await ctx.store.give_token(
        order_id, account_id, token_enc=ctx.vault.seal(order_context(order_id), token),
        token_sha256=identity.token_sha256, bot_id=identity.bot_id, username=identity.username,
        owner_id=owner,
    )  # fmt: skip
    if given is None:  # given meanwhile (another tab)
        raise NotOwned(order_id)
    ctx.billing.on_outbox()
    log.info("order %s: bot token given on the web (@%s)", order_id, identity.username)
    return given


def view(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "stage": stage(order),
        "status": order.status.value,
        "plan": order.plan,
        "amount": str(order.amount),
        "currency": order.currency,
        "period_days": order.period_days,
        "confirmation_url": order.confirmation_url if order.status is OrderStatus.PENDING else None,
        "bot_username": order.bot_username,
        "tenant_id": order.tenant_id if order.fulfilled_at is not None else None,
        "failure": order.failure if order.failure in TOKEN_REFUSALS else None,
        "created_at": order.created_at.isoformat(),
    }


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: int = Field(gt=0, description="the web account (control.web_accounts.id)")


class OrderIn(AccountIn):
    user_id: int | None = Field(None, gt=0, description="the account's Telegram id, if known")
    email: str = Field(min_length=3, max_length=254, description="where the receipt goes")
    plan: str = Field(min_length=1, max_length=32)
    locale: str = Field("ru", pattern=r"^(ru|en)$")
    business_name: str = Field("", max_length=200)
    return_url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")


class OrderRef(AccountIn):
    order_id: str = Field(pattern=r"^ord_[0-9a-f]{24}$")


class TokenIn(OrderRef):
    token: str = Field(min_length=1, max_length=300)


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def routes(ctx: SalesContext, token: str) -> list[web.RouteDef]:
    async def order(body: OrderIn) -> web.Response:
        made = await open_order(
            ctx, account_id=body.account_id, user_id=body.user_id, email=body.email,
            plan_id=body.plan, locale=body.locale, business_name=body.business_name,
            return_url=body.return_url,
        )  # fmt: skip
        return _json(view(made))

    async def listing(body: AccountIn) -> web.Response:
        orders = await ctx.store.web_orders(body.account_id)
        return _json({"orders": [view(o) for o in orders]})

    async def current(body: OrderRef) -> web.Response:
        return _json(view(await status(ctx, body.account_id, body.order_id)))

    async def bot_token(body: TokenIn) -> web.Response:
        try:
            given = await give_token(ctx, body.account_id, body.order_id, body.token)
        except TokenRefused as refused:
            code = 503 if refused.problem is Problem.UNAVAILABLE else 422
            return _json({"error": refused.problem.value, "username": refused.username}, code)
        except NeedsStart as start:
            return _json({"error": "press_start", "username": start.username}, 409)
        return _json(view(given))

    return [
        web.post(ORDER_PATH, guarded(token, OrderIn, order)),
        web.post(LIST_PATH, guarded(token, AccountIn, listing)),
        web.post(STATUS_PATH, guarded(token, OrderRef, current)),
        web.post(TOKEN_PATH, guarded(token, TokenIn, bot_token)),
    ]
