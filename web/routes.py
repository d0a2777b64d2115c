"""The route table: one list drives both the aiohttp router and the OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from web import handlers as h
from web import pages
from web.errors import Handler
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
    ConversationPage,
    CustomerPage,
    HealthOut,
    LeadOut,
    LeadPage,
    LeadsQuery,
    LeadStatusIn,
    LinkIn,
    LoginForm,
    MeOut,
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
    TokenOut,
    WidgetChatIn,
    WidgetKeyOut,
    WidgetOriginsIn,
)

Auth = Literal["public", "bearer", "optional"]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str = "api"
    ok: int = 200
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    form: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: Auth = "bearer"
    errors: tuple[int, ...] = field(default=(401, 422))
    documented: bool = True
    content_type: str = "application/json"


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/health",
        h.health,
        "PostgreSQL and Redis answer",
        "service",
        response=HealthOut,
        auth="public",
        errors=(503,),
    ),
    Route(
        "POST",
        "/api/auth/register",
        h.register,
        "Register a company account (email, password, company name); logs it in",
        "auth",
        ok=201,
        response=TokenOut,
        body=RegisterIn,
        auth="public",
        errors=(400, 409, 415, 422),
    ),
    Route(
        "POST",
        "/api/auth/login",
        h.login,
        "Log in with the OAuth2 password form (username = email): an access JWT and a"
        " refresh token",
        "auth",
        response=TokenOut,
        form=LoginForm,
        auth="public",
        errors=(401, 415, 422, 429),
    ),
    Route(
        "POST",
        "/api/auth/refresh",
        h.refresh,
        "Spend a refresh token for a new access token and the next refresh token (each"
        " refresh token works once; a reused one ends the session)",
        "auth",
        response=TokenOut,
        body=RefreshIn,
        auth="public",
        errors=(400, 401, 415, 422),
    ),
    Route(
        "POST",
        "/api/auth/logout",
        h.logout,
        "End this session: its access and refresh tokens stop working",
        "auth",
        ok=204,
        errors=(401,),
    ),
    Route(
        "GET",
        "/api/auth/me",
        h.me,
        "The account and the bots it owns",
        "auth",
        response=MeOut,
        errors=(401,),
    ),
    Route(
        "POST",
        "/api/auth/link",
        h.link_login,
        "Spend a one-time login link from the bot: logs its Telegram owner in (with a"
        " bearer token: binds that Telegram account to yours)",
        "auth",
        response=TokenOut,
        body=LinkIn,
        auth="optional",
        errors=(400, 401, 409, 415, 422),
    ),
    Route(
        "POST",
        "/api/auth/bot-link",
        h.bot_link,
        'Spend the one-time link a bot\'s /admin gave its owner ("Open the web panel"): a'
        " session that sees that bot only",
        "auth",
        response=TokenOut,
        body=BotLinkIn,
        auth="public",
        errors=(400, 401, 403, 415, 422),
    ),
    Route(
        "POST",
        "/api/auth/password",
        h.set_password,
        "Set or change the account's password (and its email, when it has none); the other"
        " sessions end",
        "auth",
        response=TokenOut,
        body=PasswordIn,
        errors=(400, 401, 403, 409, 415, 422),
    ),
    Route(
        "POST",
        "/api/auth/reset",
        h.reset_password,
        "Ask for a password reset: a one-time link goes to the account's Telegram chat with the"
        " sales bot (the same answer whether or not the account exists)",
        "auth",
        ok=202,
        response=ResetOut,
        body=ResetIn,
        auth="public",
        errors=(400, 415, 422, 429),
    ),
    Route(
        "POST",
        "/api/auth/reset/confirm",
        h.reset_confirm,
        "Spend a reset link's token with the new password: logs in, every other session ends",
        "auth",
        response=TokenOut,
        body=ResetConfirmIn,
        auth="public",
        errors=(400, 401, 415, 422),
    ),
    Route(
        "GET",
        "/api/leads",
        h.leads,
        "Leads of your bots, newest first (filter by status or bot)",
        "data",
        response=LeadPage,
        query=LeadsQuery,
        errors=(401, 404, 409, 422),
    ),
    Route(
        "PATCH",
        "/api/tenants/{tenant_id}/leads/{lead_id}",
        h.set_lead_status,
        "Set a lead's status (new, in_work, won, lost), as /admin does",
        "data",
        response=LeadOut,
        body=LeadStatusIn,
        errors=(400, 401, 404, 409, 415, 422),
    ),
    Route(
        "GET",
        "/api/tenants/{tenant_id}/bookings",
        h.bookings,
        "The bot's bookings from a day (in its time zone) for some days, earliest first",
        "data",
        response=BookingPage,
        query=BookingsQuery,
        errors=(401, 404, 409, 422),
    ),
    Route(
        "POST",
        "/api/tenants/{tenant_id}/bookings/{booking_id}/cancel",
        h.cancel_booking,
        "Cancel a confirmed booking as an admin (the bot's admins are told in Telegram)",
        "data",
        response=BookingOut,
        body=BookingCancelIn,
        errors=(400, 401, 404, 409, 415, 422),
    ),
    Route(
        "PATCH",
        "/api/tenants/{tenant_id}/bookings/{booking_id}",
        h.set_booking_status,
        "Mark a booking done or no-show (or back to confirmed)",
        "data",
        response=BookingOut,
        body=BookingStatusIn,
        errors=(400, 401, 404, 409, 415, 422),
    ),
    Route(
        "GET",
        "/api/tenants/{tenant_id}/customers",
        h.customers,
        "The bot's customers, the most recently seen first",
        "data",
        response=CustomerPage,
        query=PageQuery,
        errors=(401, 404, 409, 422),
    ),
    Route(
        "GET",
        "/api/tenants/{tenant_id}/conversations",
        h.conversations,
        "The AI assistant's conversations, the latest first",
        "data",
        response=ConversationPage,
        query=PageQuery,
        errors=(401, 404, 409, 422),
    ),
    Route(
        "GET",
        "/api/tenants/{tenant_id}/conversations/{customer_id}",
        h.conversation,
        "One conversation's messages (the last 200)",
        "data",
        response=ConversationDetail,
        errors=(401, 404, 409),
    ),
    Route(
        "GET",
        "/api/tenants/{tenant_id}/services",
        h.services,
        "The bot's services in menu order, hidden ones too",
        "data",
        response=ServiceList,
        errors=(401, 404, 409),
    ),
    Route(
        "POST",
        "/api/tenants/{tenant_id}/services",
        h.add_service,
        "Add a service at the end of the menu",
        "data",
        ok=201,
        response=ServiceOut,
        body=ServiceIn,
        errors=(400, 401, 404, 409, 415, 422),
    ),
    Route(
        "PATCH",
        "/api/tenants/{tenant_id}/services/{service_id}",
        h.edit_service,
        "Change a service's name, price, duration, description or visibility",
        "data",
        response=ServiceOut,
        body=ServicePatch,
        errors=(400, 401, 404, 409, 415, 422),
    ),
    Route(
        "POST",
        "/api/chat",
        h.chat,
        "One message to your bot's AI assistant, as one of your users (user_id)",
        "data",
        response=ChatOut,
        body=ChatIn,
        errors=(400, 401, 404, 409, 415, 422, 429),
    ),
    Route(
        "GET",
        "/api/tenants/{tenant_id}/widget",
        h.widget_key,
        "The bot's public website-widget key and the snippet to embed",
        "widget",
        response=WidgetKeyOut,
        errors=(401, 404),
    ),
    Route(
        "PUT",
        "/api/tenants/{tenant_id}/widget",
        h.widget_origins,
        "Which sites may use the widget (empty: any)",
        "widget",
        response=WidgetKeyOut,
        body=WidgetOriginsIn,
        errors=(400, 401, 404, 415, 422),
    ),
    Route(
        "POST",
        "/api/widget/{key}/chat",
        h.widget_chat,
        "A website visitor's message to the assistant (what widget.js sends; CORS)",
        "widget",
        response=ChatOut,
        body=WidgetChatIn,
        auth="public",
        errors=(400, 403, 404, 409, 415, 422, 429),
    ),
    Route(
        "OPTIONS",
        "/api/widget/{key}/chat",
        h.widget_preflight,
        "CORS preflight",
        "widget",
        auth="public",
        documented=False,
    ),
    Route("GET", "/openapi.json", h.openapi, "This document", "service", auth="public", errors=()),
    Route("GET", "/docs", pages.docs, "Swagger UI", auth="public", documented=False),
    Route(
        "GET",
        "/docs/assets/{name}",
        pages.docs_asset,
        "Swagger UI files",
        auth="public",
        documented=False,
    ),
    Route(
        "GET", "/static/{name}", pages.own_asset, "page scripts", auth="public", documented=False
    ),
    Route(
        "GET", "/widget.js", pages.widget_js, "the website widget", auth="public", documented=False
    ),
    Route("GET", "/dashboard", pages.dashboard, "the dashboard", auth="public", documented=False),
    Route(
        "GET",
        "/reset",
        pages.reset_page,
        "the password-reset page",
        auth="public",
        documented=False,
    ),
    Route(
        "GET",
        "/login/link",
        pages.login_link_page,
        "the login-link page",
        auth="public",
        documented=False,
    ),
)
