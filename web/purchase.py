"""A new bot bought on the web: choose a plan, pay on YooKassa's page, give the bot token.

The web is the second door to the sales bot's orders, not a second shop: every step is asked
of the sales bot's internal endpoints (`sales_bot/purchase.py`, bearer SALES_INTERNAL_TOKEN),
which open the same 'new' order and YooKassa payment as the Telegram dialog, settle it by the
same webhook and checks, and provision it through the same outbox to the master. The web
keeps nothing of its own but the link of the provisioned bot to the account
(control.web_account_tenants, role owner), written when it first sees the order live.

Only an account's whole-account session buys (a session opened from one bot's /admin speaks
for that bot only); another account's order id is a 404 at every step.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from decimal import Decimal
from typing import Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from web import handlers as h
from web.accounts import Account
from web.deps import WebDeps
from web.errors import ApiError
from web.subscription import _internal, post_sales

log = logging.getLogger(__name__)
ORDER_PATH = "/internal/purchase/order"  # sales_bot/purchase.py
LIST_PATH = "/internal/purchase/list"
STATUS_PATH = "/internal/purchase/status"
TOKEN_PATH = "/internal/purchase/token"  # noqa: S105 - a path, not a secret
ORDER_ID = re.compile(r"ord_[0-9a-f]{24}")
TOKEN_CODES = frozenset({"bad_format", "own_token", "token_rejected", "token_in_use"})

Stage = Literal["pay", "token", "setting_up", "live", "canceled", "refunded"]


class PlanOut(BaseModel):
    id: str
    title: dict[str, str] = Field(description="the plan's name by locale")
    price: Decimal = Field(description="the price of one period")
    period_days: int
    features: list[str]


class PlanList(BaseModel):
    plans: list[PlanOut]


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(min_length=1, max_length=32, description="a plan id of GET /api/plans")
    locale: Literal["ru", "en"] = "ru"
    business_name: str = Field(
        "", max_length=100, description="the business the bot serves (default: the company name)"
    )


class BotTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=300, description="the token from @BotFather")


class PurchaseOut(BaseModel):
    order_id: str
    stage: Stage = Field(
        description="pay: open confirmation_url; token: give the bot token; setting_up: the bot"
        " is being made; live: tenant_id is among your bots; canceled / refunded: closed"
    )
    plan: str
    amount: Decimal
    currency: str
    period_days: int
    confirmation_url: str | None = Field(description="YooKassa's payment page (stage pay)")
    bot_username: str | None
    tenant_id: str | None = Field(description="the bot, once live")
    failure: str | None = Field(
        description="the master refused the token given (bot_token_in_use, invalid_bot_token):"
        " give another one"
    )
    created_at: datetime


class PurchaseList(BaseModel):
    purchases: list[PurchaseOut]


async def plans(request: web.Request) -> web.Response:
    """The plans on sale (the sales bot's catalogue, sales_bot/plans.json)."""
    deps = h._deps(request)
    await h._caller(request)
    return h._json(
        PlanList(
            plans=[
                PlanOut(id=p.id, title=dict(p.title), price=p.price, period_days=p.period_days,
                        features=sorted(p.features))
                for p in deps.gate.catalog
            ]
        )
    )  # fmt: skip


async def _buyer(request: web.Request) -> tuple[WebDeps, Account, tuple[str, str]]:
    deps = h._deps(request)
    account, session = await h._caller(request)
    if session.tenant_id is not None:
        raise ApiError(
            403, "whole_account_only", "this session was opened from one bot's panel: log in"
            " with your email and password to buy a bot"
        )  # fmt: skip
    internal = _internal(deps)
    if internal is None:
        raise ApiError(409, "buy_in_telegram", "bots are sold in the sales bot on Telegram here")
    return deps, account, internal


async def _link(deps: WebDeps, account: Account, out: PurchaseOut) -> PurchaseOut:
    """A live order's bot becomes the account's (once; the master has made its row)."""
    if out.stage == "live" and out.tenant_id is not None:
        try:
            await deps.control.execute(
                "INSERT INTO control.web_account_tenants (account_id, tenant_id, role)"
                " VALUES ($1, $2, 'owner') ON CONFLICT (account_id, tenant_id) DO NOTHING",
                account.id,
                out.tenant_id,
            )
        except asyncpg.ForeignKeyViolationError:  # not in control.tenants (yet)
            log.warning("order %s: tenant %s is not known yet", out.order_id, out.tenant_id)
    return out


def _order_id(request: web.Request) -> str:
    order_id = request.match_info["order_id"]
    if not ORDER_ID.fullmatch(order_id):
        raise _not_found()
    return order_id


def _not_found() -> ApiError:
    return ApiError(404, "purchase_not_found", "you have no such order")


async def start(request: web.Request) -> web.Response:
    """Open the order of a plan and its YooKassa payment (pressed twice: the same ones); send
    the owner to confirmation_url, they come back to the dashboard."""
    deps, account, internal = await _buyer(request)
    body = await h._body(request, PurchaseIn)
    if deps.gate.catalog.get(body.plan) is None:
        raise ApiError(422, "unknown_plan", f"no plan {body.plan!r} is on sale: see GET /api/plans")
    if account.email is None:
        raise ApiError(409, "email_needed", "set an email first: the receipt goes there")
    name = " ".join((body.business_name or account.company_name).split()) or account.email
    status, data = await post_sales(
        internal,
        ORDER_PATH,
        {
            "account_id": account.id,
            "user_id": account.owner_telegram_id,
            "email": account.email,
            "plan": body.plan,
            "locale": body.locale,
            "business_name": name[:100],
            "return_url": deps.settings.web_public_url.rstrip("/") + "/dashboard?purchase=back",
        },
        f"account {account.id}",
    )
    if status != 200:
        raise ApiError(422, "unknown_plan", f"no plan {body.plan!r} is on sale")
    out = PurchaseOut.model_validate(data)
    log.info("account %s: order %s (%s) opened on the web", account.id, out.order_id, body.plan)
    return h._json(out)


async def listing(request: web.Request) -> web.Response:
    """The account's orders placed on the web, newest first."""
    deps, account, internal = await _buyer(request)
    _status, data = await post_sales(
        internal, LIST_PATH, {"account_id": account.id}, f"account {account.id}"
    )
    raw = data.get("orders")
    found = [PurchaseOut.model_validate(o) for o in raw] if isinstance(raw, list) else []
    return h._json(PurchaseList(purchases=[await _link(deps, account, o) for o in found]))


async def show(request: web.Request) -> web.Response:
    """One order now (an unpaid one's payment is re-read from YooKassa first)."""
    deps, account, internal = await _buyer(request)
    order_id = _order_id(request)
    status, data = await post_sales(
        internal, STATUS_PATH, {"account_id": account.id, "order_id": order_id},
        f"account {account.id}",
    )  # fmt: skip
    if status != 200:
        raise _not_found()
    return h._json(await _link(deps, account, PurchaseOut.model_validate(data)))


async def give_token(request: web.Request) -> web.Response:
    """The bot token of a paid order: checked as the sales bot checks it (its form, getMe, not
    connected already); then the bot is made. A refused token changes nothing: give another."""
    _deps, account, internal = await _buyer(request)
    order_id = _order_id(request)
    body = await h._body(request, BotTokenIn)
    status, data = await post_sales(
        internal, TOKEN_PATH, {"account_id": account.id, "order_id": order_id, "token": body.token},
        f"account {account.id}", passes=(200, 404, 409, 422, 503),
    )  # fmt: skip
    code = str(data.get("error") or "")
    username = str(data.get("username") or "")
    if status == 404:
        raise ApiError(404, "purchase_not_found", "you have no such order waiting for a token")
    if status == 409 and code == "press_start":
        raise ApiError(
            409, "press_start", f"open @{username} in Telegram and press Start (so the bot knows"
            " you are its owner), then send the token again", {"bot_username": username},
        )  # fmt: skip
    if status == 422 and code in TOKEN_CODES:
        details = {"bot_username": username} if username else None
        raise ApiError(422, code, _TOKEN_MESSAGES[code].format(username=username), details)
    if status == 503 and code == "telegram_unavailable":
        raise ApiError(503, code, "Telegram did not answer: send the token again in a minute")
    if status != 200:
        raise ApiError(503, "sales_unavailable", "try again shortly")
    out = PurchaseOut.model_validate(data)
    log.info("account %s: the bot token of %s given on the web", account.id, order_id)
    return h._json(out)


_TOKEN_MESSAGES = {
    "bad_format": "this is not a bot token: it looks like 123456789:AAH…, copy the whole line"
    " from @BotFather",
    "own_token": "this is the token of Botfleet's own bot: give the token of your new bot",
    "token_rejected": "Telegram does not accept this token (wrong or revoked): in @BotFather"
    " open /mybots → your bot → API Token and copy the current one",
    "token_in_use": "the bot @{username} is already connected to Botfleet: create a new bot in"
    " @BotFather (/newbot) and give its token",
}
