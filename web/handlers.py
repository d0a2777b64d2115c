"""Thin aiohttp handlers: parse and validate, check who asks and what they own, answer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from client_bot.assistant import Outcome
from web.accounts import Account, EmailTaken, OwnedTenant, RefreshRefused
from web.chat import API, WIDGET, AssistantOff, chat_turn
from web.deps import DEPS, WebDeps
from web.errors import ApiError, from_validation, unauthorized
from web.models import (
    ChatIn,
    ChatOut,
    HealthOut,
    LeadOut,
    LeadPage,
    LeadsQuery,
    LeadStatusIn,
    LinkIn,
    LoginForm,
    MeOut,
    RefreshIn,
    RegisterIn,
    TenantOut,
    TokenOut,
    WidgetChatIn,
    WidgetKeyOut,
    WidgetOriginsIn,
)
from web.passwords import hash_password, verify_password
from web.tenants import TenantGate, TenantRuntime, TenantUnavailable
from web.tokens import AccessClaims, TokenError, issue_access, verify_access, verify_login_link

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


async def _caller(request: web.Request) -> tuple[Account, AccessClaims]:
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
    if not await deps.accounts.session_active(claims.session_id, claims.account_id):
        raise unauthorized("this session has ended (logged out); log in again")
    account = await deps.accounts.get(claims.account_id)
    if account is None:
        raise unauthorized("this account no longer exists")
    return account, claims


async def _tokens(deps: WebDeps, account_id: int) -> TokenOut:
    session_id, refresh = await deps.accounts.open_session(account_id)
    ttl = deps.settings.web_access_ttl
    return TokenOut(
        access_token=issue_access(deps.keys, account_id, session_id, ttl),
        expires_in=ttl,
        refresh_token=refresh,
    )


def _client_ip(request: web.Request) -> str:
    return request.remote or "unknown"


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
    _account, claims = await _caller(request)
    await deps.accounts.revoke(claims.session_id)
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
    account, _claims = await _caller(request)
    tenants = await deps.accounts.tenants(account.id)
    out = MeOut(
        id=account.id,
        email=account.email,
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
        current, _access = await _caller(request)
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


# --- tenants' data ----------------------------------------------------------------------
async def _owned(deps: WebDeps, account: Account, tenant_id: str | None) -> list[OwnedTenant]:
    """The caller's tenants, or the one asked for; someone else's (or unknown) id is a 404."""
    tenants = await deps.accounts.tenants(account.id)
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
    "id, customer_id, name, phone, interest, comment, status, taken_by, created_at, updated_at"
)


async def leads(request: web.Request) -> web.Response:
    deps = _deps(request)
    account, _claims = await _caller(request)
    query = _query(request, LeadsQuery)
    tenants = await _owned(deps, account, query.tenant_id)
    window = query.offset + query.limit
    total = 0
    items: list[LeadOut] = []
    for tenant in tenants:
        if tenant.status != "active" and query.tenant_id is None:
            continue  # a paused bot's data waits until it is active again
        runtime = await _runtime(deps.gate, tenant.tenant_id)
        # As the tenant's own role: its search_path is its schema, nothing else is reachable.
        async with runtime.pool.acquire() as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM leads WHERE $1::text IS NULL OR status = $1", query.status
            )
            rows = await conn.fetch(
                f"SELECT {LEAD_COLUMNS} FROM leads WHERE $1::text IS NULL OR status = $1"
                " ORDER BY created_at DESC, id DESC LIMIT $2",
                query.status,
                window,
            )
        total += count
        items.extend(LeadOut(tenant_id=tenant.tenant_id, **dict(r)) for r in rows)
    items.sort(key=lambda lead: (lead.created_at, lead.id), reverse=True)
    page = items[query.offset : query.offset + query.limit]
    return _json(LeadPage(total=total, items=page))


def _lead_id(request: web.Request) -> int:
    raw = request.match_info["lead_id"]
    if not (raw.isdigit() and len(raw) <= 18):
        raise ApiError(404, "not_found", "no such lead")
    return int(raw)


async def set_lead_status(request: web.Request) -> web.Response:
    """The same change as /admin → Leads (the bot's own store), as the tenant's role."""
    deps = _deps(request)
    account, _claims = await _caller(request)
    (tenant,) = await _owned(deps, account, request.match_info["tenant_id"])
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
    account, _claims = await _caller(request)
    body = await _body(request, ChatIn)
    tenants = await _owned(deps, account, body.tenant_id)
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
    account, _claims = await _caller(request)
    tenant_id = request.match_info["tenant_id"]
    (tenant,) = await _owned(deps, account, tenant_id)
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
    account, _claims = await _caller(request)
    (tenant,) = await _owned(deps, account, request.match_info["tenant_id"])
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
