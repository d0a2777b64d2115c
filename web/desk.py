"""An owner's daily work on the web, beside the bot's /admin on the same rows: notes on leads
and "take it", answering a customer as a person (and handing back to the assistant), the bot's
hours and days off, and CSV exports. Every route takes the bot's id in the path: someone else's
(or an unknown) id is a 404 before anything is read, then only that bot's own role reaches its
schema (`handlers._tenant_runtime`)."""

from __future__ import annotations

import logging
from datetime import date, time

from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiohttp import web

from client_bot import text
from client_bot.store import LeadNote, LeadNotes
from web import data, exports
from web import handlers as h
from web.accounts import Account, OwnedTenant
from web.chat import WIDGET, web_customer_id
from web.errors import ApiError
from web.models import (
    ConversationDetail,
    DayHours,
    DayOffIn,
    ExportQuery,
    HoursIn,
    HoursOut,
    Interval,
    LeadOut,
    MessageOut,
    NoteIn,
    NoteList,
    NoteOut,
    ReplyIn,
    WidgetMessageOut,
    WidgetMessagesOut,
    WidgetMessagesQuery,
)
from web.tenants import TenantRuntime

log = logging.getLogger(__name__)
# What the customer reads when the owner hands the conversation back (the bot's own words in
# /admin → hand back, client_bot/handlers/admin/handoff.py).
BACK = {
    "ru": "Спасибо за ожидание! С вами снова ассистент: спрашивайте что угодно или пользуйтесь"
    " меню.",
    "en": "Thank you for waiting! I am the assistant again: ask me anything or use the menu.",
}


def _me(account: Account, tenant: OwnedTenant) -> int:
    """Who the web acts as in the bot's tables (taken_by, a note's author): the account's
    Telegram id, or the bot owner's for an account without one."""
    return account.owner_telegram_id or tenant.owner_telegram_id


# --- leads: take it, notes ----------------------------------------------------------------
async def _lead_out(runtime: TenantRuntime, lead_id: int) -> LeadOut:
    row = await runtime.pool.fetchrow(f"SELECT {h.LEAD_COLUMNS} FROM leads WHERE id = $1", lead_id)
    if row is None:
        raise ApiError(404, "not_found", f"no lead #{lead_id} in {runtime.tenant_id}")
    return LeadOut(tenant_id=runtime.tenant_id, **dict(row))


async def take_lead(request: web.Request) -> web.Response:
    """As the "take it" button under a lead's notice in Telegram: a new lead becomes yours."""
    account, tenant, runtime = await h._tenant_runtime(request)
    lead_id = h._lead_id(request)
    lead, mine = await runtime.ctx.store.assistant.take_lead(
        lead_id, _me(account, tenant), runtime.ctx.now()
    )
    if lead is None:
        raise ApiError(404, "not_found", f"no lead #{lead_id} in {tenant.tenant_id}")
    if not mine:
        raise ApiError(
            409,
            "lead_taken",
            f"lead #{lead_id} is already {lead.status} (taken by {lead.taken_by or '—'})",
        )
    return h._json(await _lead_out(runtime, lead_id))


def _note_out(note: LeadNote) -> NoteOut:
    return NoteOut(
        id=note.id,
        lead_id=note.lead_id,
        author_id=note.author_id,
        via="web" if note.via == "web" else "telegram",
        text=note.body,
        created_at=note.created_at,
    )


async def lead_notes(request: web.Request) -> web.Response:
    _account, tenant, runtime = await h._tenant_runtime(request)
    lead_id = h._lead_id(request)
    if await runtime.ctx.store.assistant.lead(lead_id) is None:
        raise ApiError(404, "not_found", f"no lead #{lead_id} in {tenant.tenant_id}")
    notes = await LeadNotes(runtime.pool).of_lead(lead_id, 200)
    return h._json(NoteList([_note_out(n) for n in notes]))


async def add_note(request: web.Request) -> web.Response:
    """A note on a lead: the same rows /admin → Leads shows under the lead."""
    account, tenant, runtime = await h._tenant_runtime(request)
    lead_id = h._lead_id(request)
    body = await h._body(request, NoteIn)
    note = await LeadNotes(runtime.pool).add(lead_id, _me(account, tenant), body.text, "web")
    if note is None:
        raise ApiError(404, "not_found", f"no lead #{lead_id} in {tenant.tenant_id}")
    return h._json(_note_out(note), 201)


# --- answering a customer as a person ---------------------------------------------------------
async def _detail(runtime: TenantRuntime, customer_id: int) -> ConversationDetail:
    found = await data.conversation(runtime, customer_id)
    if found is None:
        raise ApiError(404, "not_found", f"no conversation with {customer_id}")
    name, with_human, messages = found
    return ConversationDetail(
        customer_id=customer_id,
        name=name,
        with_human=with_human,
        messages=[MessageOut.model_validate(m) for m in messages],
    )


async def _known_customer(runtime: TenantRuntime, customer_id: int) -> None:
    """Only someone who wrote to this bot (a customer of it, or a conversation with its
    assistant) can be written to as this bot."""
    known = await runtime.pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM customers WHERE telegram_id = $1)"
        " OR EXISTS (SELECT 1 FROM ai_messages WHERE customer_id = $1)",
        customer_id,
    )
    if not known:
        raise ApiError(404, "not_found", f"no customer {customer_id} in {runtime.tenant_id}")


async def reply(request: web.Request) -> web.Response:
    """As /admin's "answer" under a customer's message: the text goes to the customer from the
    bot, and the assistant stays silent for them until handed back (what they write meanwhile
    is stored and sent to the admins in Telegram by the bot). A website visitor (a negative id)
    reads it in the widget, which asks for a person's messages (`widget_messages`)."""
    _account, tenant, runtime = await h._tenant_runtime(request)
    customer_id = h._path_id(request, "customer_id", "conversation", signed=True)
    body = await h._body(request, ReplyIn)
    await _known_customer(runtime, customer_id)
    store = runtime.ctx.store.assistant
    if customer_id < 0:
        await store.start_handoff(customer_id, "manager replied on the web")
        await store.add_message(customer_id, "staff", body.text)
        return h._json(await _detail(runtime, customer_id))
    bot = runtime.bot()
    if bot is None:
        raise ApiError(409, "no_bot", "this bot has no Telegram token yet")
    await store.start_handoff(customer_id, "manager replied on the web")
    try:
        await bot.send_message(customer_id, "👤 " + text.esc(body.text))
    except TelegramForbiddenError as exc:
        log.info("tenant %s: web reply to %s refused: %s", tenant.tenant_id, customer_id, exc)
        raise ApiError(
            409, "not_delivered", "not delivered: the customer has blocked the bot or left"
        ) from None
    except TelegramAPIError as exc:
        log.warning("tenant %s: web reply to %s failed: %s", tenant.tenant_id, customer_id, exc)
        raise ApiError(
            502, "telegram_unavailable", "Telegram did not take the message: try again"
        ) from None
    await store.add_message(customer_id, "staff", body.text)
    log.info("tenant %s: a person answered %s on the web", tenant.tenant_id, customer_id)
    return h._json(await _detail(runtime, customer_id))


async def release(request: web.Request) -> web.Response:
    """Hand the conversation back to the assistant (the customer is told, as from /admin)."""
    _account, tenant, runtime = await h._tenant_runtime(request)
    customer_id = h._path_id(request, "customer_id", "conversation", signed=True)
    if not await runtime.ctx.store.assistant.end_handoff(customer_id):
        raise ApiError(409, "not_with_a_person", "the assistant already answers this customer")
    bot = runtime.bot()
    if customer_id > 0 and bot is not None:
        locale = await runtime.ctx.locale()
        try:
            await bot.send_message(customer_id, BACK.get(locale, BACK["ru"]))
        except TelegramAPIError as exc:
            log.info(
                "tenant %s: %s not told of the hand-back: %s", tenant.tenant_id, customer_id, exc
            )
    return h._json(await _detail(runtime, customer_id))


# --- hours and days off -------------------------------------------------------------------
def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _time(value: str) -> time:
    return time.fromisoformat(value)


async def _hours_out(runtime: TenantRuntime) -> HoursOut:
    ctx = runtime.ctx
    schedule = await ctx.store.work_schedule()
    business = await ctx.business()
    today = ctx.now().astimezone(business.zone).date()
    week = [
        DayHours(
            weekday=wd,
            hours=[Interval(start=_hhmm(s), end=_hhmm(e)) for s, e in schedule.hours.get(wd, [])],
            breaks=[
                Interval(start=_hhmm(s), end=_hhmm(e)) for d, s, e in schedule.breaks if d == wd
            ],
        )
        for wd in range(7)
    ]
    return HoursOut(week=week, days_off=sorted(d for d in schedule.days_off if d >= today))


async def hours(request: web.Request) -> web.Response:
    _account, _tenant, runtime = await h._tenant_runtime(request)
    return h._json(await _hours_out(runtime))


async def set_hours(request: web.Request) -> web.Response:
    """As /admin → Hours: the given weekdays' hours and breaks replace theirs."""
    _account, tenant, runtime = await h._tenant_runtime(request)
    body = await h._body(request, HoursIn)
    store = runtime.ctx.store
    await store.set_week_hours(
        [(d.weekday, [(_time(i.start), _time(i.end)) for i in d.hours]) for d in body.week]
    )
    for day in body.week:
        await store.set_breaks(day.weekday, [(_time(i.start), _time(i.end)) for i in day.breaks])
    log.info("tenant %s: hours changed on the web", tenant.tenant_id)
    return h._json(await _hours_out(runtime))


async def add_day_off(request: web.Request) -> web.Response:
    _account, _tenant, runtime = await h._tenant_runtime(request)
    body = await h._body(request, DayOffIn)
    business = await runtime.ctx.business()
    if body.day < runtime.ctx.now().astimezone(business.zone).date():
        raise ApiError(422, "day_in_the_past", f"{body.day} is in the past")
    await runtime.ctx.store.add_day_off(body.day, body.note)
    return h._json(await _hours_out(runtime), 201)


async def remove_day_off(request: web.Request) -> web.Response:
    _account, tenant, runtime = await h._tenant_runtime(request)
    raw = request.match_info["day"]
    try:
        day = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        day = None
    schedule = await runtime.ctx.store.work_schedule()
    if day is None or day not in schedule.days_off:
        raise ApiError(404, "not_found", f"{raw[:20]} is not a day off of {tenant.tenant_id}")
    await runtime.ctx.store.remove_day_off(day)
    return h._json(await _hours_out(runtime))


# --- CSV exports --------------------------------------------------------------------------
async def _export(request: web.Request, what: str) -> web.Response:
    _account, tenant, runtime = await h._tenant_runtime(request)
    query = h._query(request, ExportQuery)
    business = await runtime.ctx.business()
    body = await exports.export(runtime.pool, what, business.zone, query.lang)
    filename = f"{tenant.tenant_id}-{what}.csv"
    return web.Response(
        body=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def export_leads(request: web.Request) -> web.Response:
    return await _export(request, "leads")


async def export_bookings(request: web.Request) -> web.Response:
    return await _export(request, "bookings")


async def export_customers(request: web.Request) -> web.Response:
    return await _export(request, "customers")


# --- the widget asks for a person's answers ---------------------------------------------------
async def widget_messages(request: web.Request) -> web.Response:
    """What a person wrote to this website visitor after message `after` (the widget asks now
    and then while open); the visitor id is the widget's secret for its visitor."""
    deps = h._deps(request)
    tenant_id, allowed = await h._widget_tenant(request)
    headers = h._cors(request, allowed)
    try:
        query = h._query(request, WidgetMessagesQuery)
        runtime = await h._runtime(deps.gate, tenant_id)
        customer_id = web_customer_id(WIDGET, query.visitor_id)
        async with runtime.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, content AS text, created_at FROM ai_messages"
                " WHERE customer_id = $1 AND id > $2 AND role = 'staff' ORDER BY id LIMIT 50",
                customer_id,
                query.after,
            )
            with_human = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ai_handoffs WHERE customer_id = $1)", customer_id
            )
    except ApiError as exc:
        exc.headers.update(headers)
        raise
    out = WidgetMessagesOut(
        items=[WidgetMessageOut.model_validate(dict(r)) for r in rows], with_human=with_human
    )
    response = h._json(out)
    response.headers.update(headers)
    return response
