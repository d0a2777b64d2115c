"""Thin aiohttp handlers: parse and validate, check who asks and what they own, answer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime, time, timedelta
from typing import TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from client_bot.assistant import Outcome
from client_bot.store import Service
from web import data
from web.accounts import Account, EmailTaken, OwnedTenant, RefreshRefused, Session
from web.chat import API, WIDGET, AssistantOff, QueuedNotices, chat_turn
from web.deps import DEPS, WebDeps
from web.errors import ApiError, from_validation, unauthorized
from web.models import (
    BookingCancelIn,
    BookingOut,
    BookingPage,
    BookingsQuery,
    BookingStatusIn,
    BotLinkIn,
    ChatIn,
    ChatOut,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    CustomerOut,
    CustomerPage,
    HealthOut,
    LeadOut,
    LeadPage,
    LeadsQuery,
    LeadStatusIn,
    LinkIn,
    LoginForm,
    MeOut,
    MessageOut,
    PageQuery,
    PasswordIn,
    RefreshIn,
    RegisterIn,
    ResetConfirmIn,
    ResetIn,
    ResetOut,
    ServiceIn,
    ServiceList,
    ServiceOut,
    ServicePatch,
    TenantOut,
    TokenOut,
    WidgetChatIn,
    WidgetKeyOut,
    WidgetOriginsIn,
)
from web.passwords import hash_password, verify_password
from web.reset import deliver_reset
from web.tenants import TenantGate, TenantRuntime, TenantUnavailable
from web.tokens import TokenError, issue_access, verify_access, verify_login_link

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
JSON_TYPE = "application/json"
FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
# Per client IP, per widget key: a visitor who changes their visitor id is still one IP.
WIDGET_IP_LIMIT = 30
LOGIN_WINDOW = 60
WIDGET_IP_WINDOW = 60
FALLBACK = {
    "ru": "Извините, сейчас не могу ответить. Попробуйте чуть позже.",
    "en": "Sorry, I cannot answer right now. Please try again a little later.",
}
RELAYED = {
    "ru": "Передали ваше сообщение менеджеру, он скоро ответит.",
    "en": "Your message went to a manager, who will answer soon.",
}


def _deps(request: web.Request) -> WebDeps:
    return request.app[DEPS]


async def _body(request: web.Request, model: type[M]) -> M:
    if request.content_type != JSON_TYPE:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as JSON (Content-Type: {JSON_TYPE})",
        )
    raw = await request.read()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise from_validation(exc, "request body") from None


def _query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise from_validation(exc, "query string") from None


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


async def _caller(request: web.Request) -> tuple[Account, Session]:
    """The account behind `Authorization: Bearer <access JWT>` (401 otherwise)."""
    deps = _deps(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("log in first: send Authorization: Bearer <access token>")
    try:
        claims = verify_access(deps.keys, token.strip())
    except TokenError as exc:
        raise unauthorized(f"the access token is not valid ({exc}); log in again") from None
    found = await deps.accounts.caller(claims.session_id, claims.account_id)
    if found is None:
        raise unauthorized("this session has ended (logged out); log in again")
    return found


async def _tokens(deps: WebDeps, account_id: int) -> TokenOut:
    session_id, refresh = await deps.accounts.open_session(account_id)
    ttl = deps.settings.web_access_ttl
    return TokenOut(
        access_token=issue_access(deps.keys, account_id, session_id, ttl),
        expires_in=ttl,
        refresh_token=refresh,
    )


def _client_ip(request: web.Request) -> str:
    return _deps(request).client_address.of(request.remote, request.headers.get("X-Forwarded-For"))


# --- health and docs --------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    deps = _deps(request)

    async def pg() -> bool:
        try:
            await asyncio.wait_for(deps.control.fetchval("SELECT 1"), 5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        return True

    async def redis() -> bool:
        try:
            await asyncio.wait_for(deps.redis.ping(), 5)
        except (OSError, RedisError, TimeoutError):
            return False
        return True

    pg_ok, redis_ok = await asyncio.gather(pg(), redis())
    ok = pg_ok and redis_ok
    out = HealthOut(status="ok" if ok else "degraded", postgres=pg_ok, redis=redis_ok)
    return _json(out, 200 if ok else 503)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(_deps(request).openapi)


# --- accounts ---------------------------------------------------------------------------
async def register(request: web.Request) -> web.Response:
    deps = _deps(request)
    body = await _body(request, RegisterIn)
    try:
        account = await deps.accounts.create(
            body.email, await hash_password(body.password), body.company_name
        )
    except EmailTaken:
        raise ApiError(
            409, "email_taken", "an account with this email exists: log in instead"
        ) from None
    log.info("web account %s registered", account.id)
    return _json(await _tokens(deps, account.id), 201)


def _login_keys(deps: WebDeps, ip: str, email: str) -> list[tuple[str, int]]:
    prefix, settings = deps.settings.web_redis_prefix, deps.settings
    email_digest = hashlib.sha256(email.encode()).hexdigest()[:32]  # no emails in key names
    return [
        (f"{prefix}login-fail:ip:{ip}", settings.web_login_ip_limit),
        (f"{prefix}login-fail:email:{email_digest}", settings.web_login_email_limit),
    ]


async def _throttle_login(deps: WebDeps, ip: str, email: str) -> None:
    """Failed logins are limited per IP and per email (a minute's window), in the platform's
    own Redis keys; the answer says when to try again."""
    keys = _login_keys(deps, ip, email)
    try:
        async with deps.redis.pipeline(transaction=False) as pipe:
            for key, _limit in keys:
                pipe.get(key)
                pipe.ttl(key)
            found = await pipe.execute()
    except RedisError as exc:
        log.warning("login throttling unavailable: %s", exc)
        return
    for (_key, limit), count, ttl in zip(keys, found[::2], found[1::2], strict=True):
        if count is not None and int(count) >= limit:
            wait = max(int(ttl), 1)
            raise ApiError(
                429,
                "too_many_attempts",
                f"too many failed logins: try again in {wait} seconds",
                headers={"Retry-After": str(wait)},
            )


async def _login_failed(deps: WebDeps, ip: str, email: str) -> None:
    try:
        async with deps.redis.pipeline(transaction=False) as pipe:
            for key, _limit in _login_keys(deps, ip, email):
                pipe.incr(key)
                pipe.expire(key, LOGIN_WINDOW, nx=True)
            await pipe.execute()
    except RedisError as exc:
        log.warning("login throttling unavailable: %s", exc)


async def login(request: web.Request) -> web.Response:
    deps = _deps(request)
    if request.content_type not in FORM_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            "log in with the OAuth2 password form: Content-Type "
            "application/x-www-form-urlencoded, fields username and password",
        )
    form = await request.post()
    try:
        creds = LoginForm.model_validate({k: v for k, v in form.items() if isinstance(v, str)})
    except ValidationError as exc:
        raise from_validation(exc, "login form") from None
    email = creds.username.lower()
    ip = _client_ip(request)
    await _throttle_login(deps, ip, email)
    found = await deps.accounts.credentials(email)
    account, encoded = found if found is not None else (None, None)
    if account is None or not await verify_password(encoded, creds.password):
        await _login_failed(deps, ip, email)
        raise unauthorized("wrong email or password")
    return _json(await _tokens(deps, account.id))


async def refresh(request: web.Request) -> web.Response:
    deps = _deps(request)
    body = await _body(request, RefreshIn)
    try:
        account_id, session_id, token = await deps.accounts.rotate(body.refresh_token)
    except RefreshRefused as exc:
        raise unauthorized(f"{exc}; log in again") from None
    ttl = deps.settings.web_access_ttl
    out = TokenOut(
        access_token=issue_access(deps.keys, account_id, session_id, ttl),
        expires_in=ttl,
        refresh_token=token,
    )
    return _json(out)


async def logout(request: web.Request) -> web.Response:
    deps = _deps(request)
    _account, session = await _caller(request)
    await deps.accounts.revoke(session.id)
    return web.Response(status=204)


def _tenant_out(t: OwnedTenant) -> TenantOut:
    return TenantOut(
        tenant_id=t.tenant_id,
        business_name=t.business_name,
        status=t.status,
        plan=t.plan,
        bot_username=t.bot_username,
        expires_at=t.expires_at,
    )


async def me(request: web.Request) -> web.Response:
    deps = _deps(request)
    account, session = await _caller(request)
    tenants = await deps.accounts.tenants(account.id, session.tenant_id)
    out = MeOut(
        id=account.id,
        email=None if session.tenant_id else account.email,
        only_bot=session.tenant_id,
        company_name=account.company_name,
        telegram_linked=account.owner_telegram_id is not None,
        created_at=account.created_at,
        tenants=[_tenant_out(t) for t in tenants],
    )
    return _json(out)


async def link_login(request: web.Request) -> web.Response:
    """Spend a one-time login link: logs its owner in (an account bound to the Telegram id is
    made on first use); with a bearer token, binds the Telegram id to that account instead."""
    deps = _deps(request)
    body = await _body(request, LinkIn)
    try:
        claims = verify_login_link(deps.keys, body.token)
    except TokenError as exc:
        raise unauthorized(
            f"this login link is not valid ({exc}); ask the bot for a new one"
        ) from None
    current: Account | None = None
    if request.headers.get("Authorization"):
        current, session = await _caller(request)
        _whole_account(session)
    if not await deps.accounts.use_link(claims.jti, claims.expires_at):
        raise unauthorized("this login link was already used; ask the bot for a new one")
    if current is not None:
        if not await deps.accounts.bind_telegram(current.id, claims.telegram_id):
            raise ApiError(
                409,
                "telegram_linked_elsewhere",
                "this Telegram account is linked to another web account, or this web account "
                "to another Telegram account",
            )
        account_id = current.id
    else:
        name = await deps.control.fetchval(
            "SELECT business_name FROM control.tenants WHERE owner_telegram_id = $1"
            " AND status <> 'deleted' ORDER BY number LIMIT 1",
            claims.telegram_id,
        )
        account_id = (await deps.accounts.for_telegram(claims.telegram_id, name or "")).id
    log.info("web account %s logged in by a login link", account_id)
    return _json(await _tokens(deps, account_id))


def _whole_account(session: Session) -> None:
    """Changing the account itself (its password, its Telegram binding) needs a session of the
    whole account: one opened by a bot's link speaks for that bot only."""
    if session.tenant_id is not None:
        raise ApiError(
            403,
            "whole_account_required",
            "this session was opened from one bot's /admin and covers that bot only: log in with"
            " your password or the link from the sales bot to change the account",
        )


# --- tenants' data ----------------------------------------------------------------------
async def _owned(
    deps: WebDeps, account: Account, tenant_id: str | None, session: Session
) -> list[OwnedTenant]:
    """The caller's tenants, or the one asked for; someone else's (or unknown) id is a 404.
    A session opened by a bot's link sees that bot only."""
    tenants = await deps.accounts.tenants(account.id, session.tenant_id)
    if tenant_id is None:
        return tenants
    chosen = [t for t in tenants if t.tenant_id == tenant_id]
    if not chosen:
        raise ApiError(404, "not_found", f"you have no bot {tenant_id}")
    return chosen


async def _runtime(gate: TenantGate, tenant_id: str) -> TenantRuntime:
    try:
        return await gate.runtime(tenant_id)
    except TenantUnavailable:
        raise ApiError(
            409, "tenant_unavailable", f"the bot {tenant_id} is not active (suspended or stopped)"
        ) from None


LEAD_COLUMNS = (
    "id, customer_id, name, phone, interest, comment, status, taken_by, created_at, updated_at,"
    " (SELECT count(*) FROM lead_notes n WHERE n.lead_id = leads.id) AS notes"
)


async def leads(request: web.Request) -> web.Response:
    deps = _deps(request)
    account, session = await _caller(request)
    query = _query(request, LeadsQuery)
    tenants = [
        t
        for t in await _owned(deps, account, query.tenant_id, session)
        if t.status == "active" or query.tenant_id is not None  # a paused bot's data waits
    ]
    # One bot: the page straight from its table. Several: each bot's first offset+limit rows,
    # merged here.
    skip = query.offset if len(tenants) == 1 else 0
    window = query.limit if len(tenants) == 1 else query.offset + query.limit
    total = 0
    items: list[LeadOut] = []
    for tenant in tenants:
        runtime = await _runtime(deps.gate, tenant.tenant_id)
        # Taken by the caller: their Telegram id, or the owner's for an account without one.
        mine = (account.owner_telegram_id or tenant.owner_telegram_id) if query.mine else None
        where = " WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR taken_by = $2)"
        # As the tenant's own role: its search_path is its schema, nothing else is reachable.
        async with runtime.pool.acquire() as conn:
            count = await conn.fetchval("SELECT count(*) FROM leads" + where, query.status, mine)
            rows = await conn.fetch(
                f"SELECT {LEAD_COLUMNS} FROM leads{where}"
                " ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
                query.status,
                mine,
                window,
                skip,
            )
        total += count
        items.extend(LeadOut(tenant_id=tenant.tenant_id, **dict(r)) for r in rows)
    items.sort(key=lambda lead: (lead.created_at, lead.id), reverse=True)
    page = items[query.offset - skip : query.offset - skip + query.limit]
    return _json(LeadPage(total=total, items=page))


def _lead_id(request: web.Request) -> int:
    raw = request.match_info["lead_id"]
    if not (raw.isdigit() and len(raw) <= 18):
        raise ApiError(404, "not_found", "no such lead")
    return int(raw)


async def set_lead_status(request: web.Request) -> web.Response:
    """The same change as /admin → Leads (the bot's own store), as the tenant's role."""
    deps = _deps(request)
    account, session = await _caller(request)
    (tenant,) = await _owned(deps, account, request.match_info["tenant_id"], session)
    lead_id = _lead_id(request)
    body = await _body(request, LeadStatusIn)
    runtime = await _runtime(deps.gate, tenant.tenant_id)
    by = account.owner_telegram_id or tenant.owner_telegram_id
    lead = await runtime.ctx.store.assistant.set_lead_status(
        lead_id, body.status, by=by, now=runtime.ctx.now()
    )
    if lead is None:
        raise ApiError(404, "not_found", f"no lead #{lead_id} in {tenant.tenant_id}")
    async with runtime.pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1", lead_id)
    return _json(LeadOut(tenant_id=tenant.tenant_id, **dict(row)))


def _chat_out(reply_outcome: Outcome, text: str, customer_id: int, locale: str) -> ChatOut:
    if reply_outcome is Outcome.ANSWER:
        return ChatOut(outcome="answer", reply=text, customer_id=customer_id)
    if reply_outcome is Outcome.FALLBACK:
        return ChatOut(outcome="fallback", reply=FALLBACK[locale], customer_id=customer_id)
    if reply_outcome is Outcome.RELAYED:
        return ChatOut(outcome="relayed", reply=RELAYED[locale], customer_id=customer_id)
    raise AssertionError(reply_outcome)


async def _turn(
    runtime: TenantRuntime, window: int, channel: str, user_key: str, name: str, text: str
) -> ChatOut:
    try:
        customer_id, reply = await chat_turn(runtime, channel, user_key, name, text)
    except AssistantOff:
        raise ApiError(
            409, "assistant_off", "this bot's plan has no AI assistant (or it is not configured)"
        ) from None
    if reply.outcome is Outcome.OFF:
        raise ApiError(409, "assistant_off", "the owner switched the AI assistant off")
    if reply.outcome is Outcome.RATE:
        raise ApiError(
            429,
            "too_many_messages",
            f"too many messages: try again in {window} seconds",
            headers={"Retry-After": str(window)},
        )
    if reply.outcome is Outcome.BUDGET:
        raise ApiError(
            429, "daily_budget_spent", "the assistant's daily budget is spent: try again tomorrow"
        )
    locale = await runtime.ctx.locale()
    return _chat_out(reply.outcome, reply.text, customer_id, locale if locale in FALLBACK else "ru")


async def chat(request: web.Request) -> web.Response:
    deps = _deps(request)
    account, session = await _caller(request)
    body = await _body(request, ChatIn)
    tenants = await _owned(deps, account, body.tenant_id, session)
    if len(tenants) != 1:
        raise ApiError(
            422,
            "tenant_required",
            "you have several bots: say which one answers (tenant_id)"
            if tenants
            else "you have no bot yet",
        )
    runtime = await _runtime(deps.gate, tenants[0].tenant_id)
    window = deps.settings.assistant_rate_window
    out = await _turn(runtime, window, API, body.user_id, body.name or body.user_id, body.text)
    return _json(out)


# --- the website widget -----------------------------------------------------------------
def _snippet(public_url: str, key: str) -> str:
    return f'<script src="{public_url}/widget.js" data-bot="{key}" async></script>'


async def widget_key(request: web.Request) -> web.Response:
    deps = _deps(request)
    account, session = await _caller(request)
    tenant_id = request.match_info["tenant_id"]
    (tenant,) = await _owned(deps, account, tenant_id, session)
    key, origins = await deps.accounts.widget_key(tenant.tenant_id)
    out = WidgetKeyOut(
        tenant_id=tenant.tenant_id,
        key=key,
        allowed_origins=origins,
        snippet=_snippet(deps.settings.web_public_url, key),
    )
    return _json(out)


async def widget_origins(request: web.Request) -> web.Response:
    deps = _deps(request)
    account, session = await _caller(request)
    (tenant,) = await _owned(deps, account, request.match_info["tenant_id"], session)
    body = await _body(request, WidgetOriginsIn)
    key, _old = await deps.accounts.widget_key(tenant.tenant_id)
    await deps.accounts.set_widget_origins(tenant.tenant_id, body.allowed_origins)
    out = WidgetKeyOut(
        tenant_id=tenant.tenant_id,
        key=key,
        allowed_origins=body.allowed_origins,
        snippet=_snippet(deps.settings.web_public_url, key),
    )
    return _json(out)


def _cors(request: web.Request, allowed: list[str]) -> dict[str, str]:
    """CORS headers for the widget API: any origin, or only the owner's (when set)."""
    origin = request.headers.get("Origin")
    if allowed and (origin is None or origin.lower() not in allowed):
        raise ApiError(403, "origin_not_allowed", "this site may not use this chat widget")
    headers = {"Vary": "Origin"}
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


async def _widget_tenant(request: web.Request) -> tuple[str, list[str]]:
    found = await _deps(request).accounts.widget_tenant(request.match_info["key"][:100])
    if found is None:
        raise ApiError(404, "not_found", "unknown widget key (or the bot is not active)")
    return found


async def widget_preflight(request: web.Request) -> web.Response:
    _tenant_id, allowed = await _widget_tenant(request)
    headers = _cors(request, allowed)
    headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    headers["Access-Control-Allow-Headers"] = "Content-Type"
    headers["Access-Control-Max-Age"] = "600"
    return web.Response(status=204, headers=headers)


async def _widget_ip_admit(runtime: TenantRuntime, ip: str) -> bool:
    """Per client IP and widget, under the tenant's prefix (its own ACL user)."""
    counter = f"{runtime.ctx.settings.redis_key_prefix}web:widget-ip:{ip}"
    try:
        async with runtime.redis.pipeline(transaction=False) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, WIDGET_IP_WINDOW, nx=True)
            count, _ = await pipe.execute()
    except RedisError as exc:
        log.warning("widget rate limit unavailable: %s", exc)
        return True
    return int(count) <= WIDGET_IP_LIMIT


async def widget_chat(request: web.Request) -> web.Response:
    deps = _deps(request)
    tenant_id, allowed = await _widget_tenant(request)
    headers = _cors(request, allowed)
    try:
        body = await _body(request, WidgetChatIn)
        runtime = await _runtime(deps.gate, tenant_id)
        if not await _widget_ip_admit(runtime, _client_ip(request)):
            raise ApiError(
                429,
                "too_many_messages",
                f"too many messages from here: try again in {WIDGET_IP_WINDOW} seconds",
                headers={"Retry-After": str(WIDGET_IP_WINDOW)},
            )
        window = deps.settings.assistant_rate_window
        name = body.name or "Посетитель сайта"
        out = await _turn(runtime, window, WIDGET, body.visitor_id, name, body.text)
    except ApiError as exc:
        exc.headers.update(headers)
        raise
    response = _json(out)
    response.headers.update(headers)
    return response


# --- one bot's bookings, customers, conversations and services --------------------------
# Every one of these takes the bot's id in the path: someone else's (or an unknown one) is a
# 404 before anything is read, and then only that bot's own role reaches its schema.
def _path_id(request: web.Request, name: str, what: str, *, signed: bool = False) -> int:
    raw = request.match_info[name]
    digits = raw[1:] if signed and raw.startswith("-") else raw
    # Up to bigint: website customers' ids are 19 digits long (web.chat.web_customer_id).
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 19 and int(digits) < 2**63):
        raise ApiError(404, "not_found", f"no such {what}")
    return int(raw)


async def _tenant_runtime(request: web.Request) -> tuple[Account, OwnedTenant, TenantRuntime]:
    deps = _deps(request)
    account, session = await _caller(request)
    (tenant,) = await _owned(deps, account, request.match_info["tenant_id"], session)
    runtime = await _runtime(deps.gate, tenant.tenant_id)
    runtime.ctx.refresh()  # what the bot's /admin changed meanwhile
    return account, tenant, runtime


def _booking_out(tenant_id: str, row: dict[str, object]) -> BookingOut:
    return BookingOut.model_validate({"tenant_id": tenant_id, **row})


async def bookings(request: web.Request) -> web.Response:
    _account, tenant, runtime = await _tenant_runtime(request)
    query = _query(request, BookingsQuery)
    business = await runtime.ctx.business()
    zone = business.zone
    first = query.day or runtime.ctx.now().astimezone(zone).date()
    start = datetime.combine(first, time(0), zone)
    end = datetime.combine(first + timedelta(days=query.days), time(0), zone)
    total, rows = await data.bookings(runtime, start, end, query.status, query.limit, query.offset)
    items = [_booking_out(tenant.tenant_id, r) for r in rows]
    return _json(BookingPage(total=total, items=items, timezone=zone.key))


async def _booking_or_404(runtime: TenantRuntime, booking_id: int) -> dict[str, object]:
    row = await data.booking(runtime, booking_id)
    if row is None:
        raise ApiError(404, "not_found", f"no booking #{booking_id} in {runtime.tenant_id}")
    return row


async def cancel_booking(request: web.Request) -> web.Response:
    """As /admin → Bookings → Cancel: the booking is cancelled by an admin with the note, its
    reminders dropped, a class seat freed; the bot's admins get the notice in Telegram."""
    _account, tenant, runtime = await _tenant_runtime(request)
    booking_id = _path_id(request, "booking_id", "booking")
    body = await _body(request, BookingCancelIn) if request.can_read_body else BookingCancelIn()
    await _booking_or_404(runtime, booking_id)
    cancelled = await runtime.ctx.store.cancel_booking(
        booking_id, by="admin", note=body.note or None
    )
    if cancelled is None:
        raise ApiError(
            409, "booking_not_active", f"booking #{booking_id} is not confirmed (done or cancelled)"
        )
    locale = await runtime.ctx.locale()
    with runtime.ctx.i18n.context(), runtime.ctx.i18n.use_locale(locale):
        await QueuedNotices(runtime.ctx).booking_cancelled(cancelled)
    log.info("tenant %s: booking %s cancelled on the web", tenant.tenant_id, booking_id)
    return _json(_booking_out(tenant.tenant_id, await _booking_or_404(runtime, booking_id)))


async def set_booking_status(request: web.Request) -> web.Response:
    _account, tenant, runtime = await _tenant_runtime(request)
    booking_id = _path_id(request, "booking_id", "booking")
    body = await _body(request, BookingStatusIn)
    await _booking_or_404(runtime, booking_id)
    if await runtime.ctx.store.set_booking_status(booking_id, body.status) is None:
        raise ApiError(409, "booking_not_active", f"booking #{booking_id} was cancelled")
    return _json(_booking_out(tenant.tenant_id, await _booking_or_404(runtime, booking_id)))


async def customers(request: web.Request) -> web.Response:
    _account, _tenant, runtime = await _tenant_runtime(request)
    query = _query(request, PageQuery)
    total, rows = await data.customers(runtime, query.limit, query.offset)
    items = [CustomerOut.model_validate(r) for r in rows]
    return _json(CustomerPage(total=total, items=items))


async def conversations(request: web.Request) -> web.Response:
    _account, _tenant, runtime = await _tenant_runtime(request)
    query = _query(request, PageQuery)
    total, rows = await data.conversations(runtime, query.limit, query.offset)
    items = [ConversationOut.model_validate(r) for r in rows]
    return _json(ConversationPage(total=total, items=items))


async def conversation(request: web.Request) -> web.Response:
    _account, _tenant, runtime = await _tenant_runtime(request)
    customer_id = _path_id(request, "customer_id", "conversation", signed=True)
    found = await data.conversation(runtime, customer_id)
    if found is None:
        raise ApiError(404, "not_found", f"no conversation with {customer_id}")
    name, with_human, messages = found
    out = ConversationDetail(
        customer_id=customer_id,
        name=name,
        with_human=with_human,
        messages=[MessageOut.model_validate(m) for m in messages],
    )
    return _json(out)


def _service_out(service: Service) -> ServiceOut:
    return ServiceOut.model_validate(service, from_attributes=True)


async def services(request: web.Request) -> web.Response:
    _account, _tenant, runtime = await _tenant_runtime(request)
    found = await runtime.ctx.store.services(include_hidden=True)
    return _json(ServiceList([_service_out(s) for s in found]))


async def add_service(request: web.Request) -> web.Response:
    """As /admin → Services → Add: at the end of the menu."""
    _account, tenant, runtime = await _tenant_runtime(request)
    body = await _body(request, ServiceIn)
    store = runtime.ctx.store
    service = await store.add_service(body.name, body.price, body.duration_min, body.description)
    if body.hidden:
        await store.set_service_hidden(service.id, True)
        service = await store.service(service.id) or service
    log.info("tenant %s: service %s added on the web", tenant.tenant_id, service.id)
    return _json(_service_out(service), 201)


async def edit_service(request: web.Request) -> web.Response:
    _account, _tenant, runtime = await _tenant_runtime(request)
    service_id = _path_id(request, "service_id", "service")
    body = await _body(request, ServicePatch)
    store = runtime.ctx.store
    if await store.service(service_id) is None:
        raise ApiError(404, "not_found", f"no service #{service_id} in {runtime.tenant_id}")
    changes = body.model_dump(include=body.model_fields_set)
    hidden = changes.pop("hidden", None)
    for field_name, value in changes.items():
        await store.update_service(service_id, field_name, value)
    if hidden is not None:
        await store.set_service_hidden(service_id, hidden)
    service = await store.service(service_id)
    if service is None:
        raise ApiError(404, "not_found", f"no service #{service_id} in {runtime.tenant_id}")
    return _json(_service_out(service))


# --- a bot's "Open the web panel" link, passwords -----------------------------------------
async def bot_link(request: web.Request) -> web.Response:
    """Spend the one-time token a bot's /admin wrote (hashed) into its own schema: checked and
    marked used as that tenant's own role. Only the tenant's owner (by the platform's record,
    control.tenants) is let in, and the session covers that bot only: the token was vouched for
    by the tenant's data alone, which must not open the owner's other bots."""
    deps = _deps(request)
    body = await _body(request, BotLinkIn)
    refused = unauthorized(
        "this link is not valid (used, expired or unknown); press the button again"
    )
    try:
        runtime = await deps.gate.runtime(body.tenant_id)
    except TenantUnavailable:
        raise refused from None
    telegram_id = await runtime.pool.fetchval(
        "UPDATE web_login_tokens SET used_at = now()"
        " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING telegram_id",
        hashlib.sha256(body.token.encode()).digest(),
    )
    if telegram_id is None:
        raise refused
    owner, name = await deps.control.fetchrow(
        "SELECT owner_telegram_id, business_name FROM control.tenants WHERE tenant_id = $1",
        body.tenant_id,
    ) or (None, "")
    if telegram_id != owner:
        log.warning("tenant %s: a web-panel link for someone not its owner", body.tenant_id)
        raise ApiError(403, "not_the_owner", "only the bot's owner can open its web panel for now")
    account = await deps.accounts.for_telegram(owner, name)
    session_id, refresh_token = await deps.accounts.open_session(account.id, body.tenant_id)
    ttl = deps.settings.web_access_ttl
    log.info("web account %s logged in from %s's /admin", account.id, body.tenant_id)
    out = TokenOut(
        access_token=issue_access(deps.keys, account.id, session_id, ttl),
        expires_in=ttl,
        refresh_token=refresh_token,
    )
    return _json(out)


RESET_SENT = (
    "if an account with this email exists and has a Telegram chat linked, the reset link is on"
    " its way to that chat with the sales bot"
)


async def reset_password(request: web.Request) -> web.Response:
    """Start a password reset. The answer is the same whoever asks (no account enumeration);
    the link goes to the account's Telegram through the sales bot's chat, never in the answer."""
    deps = _deps(request)
    body = await _body(request, ResetIn)
    ip = _client_ip(request)
    await _throttle_login(deps, ip, body.email)
    await _login_failed(deps, ip, body.email)  # resets count as attempts: no mail-bombing
    found = await deps.accounts.credentials(body.email)
    if found is not None:
        account, _hash = found
        token = await deps.accounts.start_reset(account.id, deps.settings.web_reset_ttl)
        url = f"{deps.settings.web_public_url.rstrip('/')}/reset#token={token}"
        await deliver_reset(deps, account, url)
    return _json(ResetOut(message=RESET_SENT), 202)


async def reset_confirm(request: web.Request) -> web.Response:
    deps = _deps(request)
    body = await _body(request, ResetConfirmIn)
    account_id = await deps.accounts.finish_reset(body.token, await hash_password(body.password))
    if account_id is None:
        raise unauthorized("this reset link is not valid (used, expired or unknown); ask again")
    log.info("web account %s set a new password by a reset link", account_id)
    return _json(await _tokens(deps, account_id))


async def set_password(request: web.Request) -> web.Response:
    """Set (or change) the account's password; the account's other sessions end."""
    deps = _deps(request)
    account, session = await _caller(request)
    _whole_account(session)
    body = await _body(request, PasswordIn)
    email = account.email
    if email is None:
        if body.email is None:
            raise ApiError(
                422, "email_required", "this account has no email yet: send one with the password"
            )
        email = body.email.lower()
    found = await deps.accounts.credentials(account.email) if account.email else None
    current_hash = found[1] if found is not None else None
    if current_hash is not None and not await verify_password(
        current_hash, body.current_password or ""
    ):
        raise ApiError(403, "wrong_password", "the current password is wrong")
    try:
        await deps.accounts.set_login(account.id, email, await hash_password(body.password))
    except EmailTaken:
        raise ApiError(
            409, "email_taken", "another account uses this email: log in there instead"
        ) from None
    await deps.accounts.revoke_all(account.id, "password changed")
    return _json(await _tokens(deps, account.id))
