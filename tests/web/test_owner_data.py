"""One bot's bookings, customers, the assistant's conversations and services on the web, read
and changed through the tenant's own role and the bot's own store, and only by its owner.

The attack: account A with B's bot id in the path of every one of these routes (and B's ids of
bookings/services/customers under A's bot id) gets a 404, never B's rows, and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.web.conftest import Tenant, fetch
from tests.web.test_tenant_data import add_lead, owner_client


async def add_booking(
    tenant: Tenant, customer_id: int, name: str, starts_at: datetime, status: str = "confirmed"
) -> int:
    """A customer and their booking of the first service, written as the tenant's role."""
    conn = await asyncpg.connect(tenant.dsn)
    try:
        await conn.execute(
            "INSERT INTO customers (telegram_id, first_name, phone) VALUES ($1, $2, '+79001112233')"
            " ON CONFLICT (telegram_id) DO NOTHING",
            customer_id,
            name,
        )
        booking_id: int = await conn.fetchval(
            "INSERT INTO bookings (customer_id, service_id, starts_at, ends_at, status,"
            " customer_name, phone) SELECT $1, min(id), $2::timestamptz, $2::timestamptz + interval '1 hour', $3, $4,"
            " '+79001112233' FROM services RETURNING id",
            customer_id,
            starts_at,
            status,
            name,
        )
        await conn.execute(
            "INSERT INTO reminders (booking_id, offset_min, due_at) VALUES ($1, 120, $2)",
            booking_id,
            starts_at - timedelta(hours=2),
        )
        return booking_id
    finally:
        await conn.close()


async def add_messages(tenant: Tenant, customer_id: int, *texts: tuple[str, str]) -> None:
    conn = await asyncpg.connect(tenant.dsn)
    try:
        await conn.executemany(
            "INSERT INTO ai_messages (customer_id, role, content) VALUES ($1, $2, $3)",
            [(customer_id, role, content) for role, content in texts],
        )
    finally:
        await conn.close()


async def b_tenant_day_off(tenant: Tenant) -> None:
    conn = await asyncpg.connect(tenant.dsn)
    try:
        await conn.execute("INSERT INTO days_off (day, note) VALUES ('2099-01-02', 'B')")
    finally:
        await conn.close()


def tomorrow_noon() -> datetime:
    # Moscow (the seeded zone) is UTC+3 all year: 09:00 UTC is noon there.
    day = datetime.now(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


async def test_bookings_by_day_cancel_and_marks(web_server, http, make_web_tenant):
    tenant = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, tenant)
    noon = tomorrow_noon()
    anna = await add_booking(tenant, 501, "Анна", noon)
    boris = await add_booking(tenant, 502, "Борис", noon + timedelta(hours=2))
    later = await add_booking(tenant, 503, "Вера", noon + timedelta(days=3))
    base = f"/api/tenants/{tenant.tenant_id}/bookings"
    day = noon.date().isoformat()

    status, page = await owner.call("GET", base, params={"day": day})
    assert status == 200, page
    assert page["total"] == 2
    assert [(b["id"], b["customer_name"]) for b in page["items"]] == [
        (anna, "Анна"),
        (boris, "Борис"),
    ]
    assert page["items"][0]["service_name"] == "Стрижка"
    status, week = await owner.call("GET", base, params={"day": day, "days": "7"})
    assert [b["id"] for b in week["items"]] == [anna, boris, later]
    status, today = await owner.call("GET", base)  # today in the bot's zone: nothing
    assert (status, today["total"]) == (200, 0)

    status, cancelled = await owner.call(
        "POST", f"{base}/{anna}/cancel", json={"note": "мастер заболел"}
    )
    assert status == 200, cancelled
    assert (cancelled["status"], cancelled["cancel_note"]) == ("cancelled", "мастер заболел")
    rows = await fetch(
        tenant.dsn,
        "SELECT status, cancelled_by, (SELECT count(*) FROM reminders r WHERE r.booking_id = b.id)"
        " AS reminders FROM bookings b WHERE id = $1",
        anna,
    )
    assert dict(rows[0]) == {"status": "cancelled", "cancelled_by": "admin", "reminders": 0}
    # The bot's admins (the owner) hear of it in Telegram: queued for the bot to deliver.
    notices = await fetch(tenant.dsn, "SELECT admin_id, text FROM admin_notices")
    assert [n["admin_id"] for n in notices] == [tenant.owner_telegram_id]
    assert "Анна" in notices[0]["text"]
    status, again = await owner.call("POST", f"{base}/{anna}/cancel", json={})
    assert (status, again["error"]["code"]) == (409, "booking_not_active")
    status, only = await owner.call("GET", base, params={"day": day, "status": "cancelled"})
    assert [b["id"] for b in only["items"]] == [anna]

    status, done = await owner.call("PATCH", f"{base}/{boris}", json={"status": "no_show"})
    assert (status, done["status"]) == (200, "no_show")
    rows = await fetch(tenant.dsn, "SELECT status FROM bookings WHERE id = $1", boris)
    assert rows[0]["status"] == "no_show"
    status, _ = await owner.call("PATCH", f"{base}/{anna}", json={"status": "done"})
    assert status == 409  # a cancelled booking stays cancelled
    for params in ({"day": "31.12.2026"}, {"days": "0"}, {"days": "63"}, {"status": "gone"}):
        status, _ = await owner.call("GET", base, params=params)
        assert status == 422, params
    for bad in ("999999", "-1", "x", "99999999999999999999"):
        status, _ = await owner.call("POST", f"{base}/{bad}/cancel", json={})
        assert status == 404, bad


async def test_customers_conversations_and_services(web_server, http, make_web_tenant):
    tenant = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, tenant)
    await add_booking(tenant, 601, "Анна", tomorrow_noon())
    await add_messages(tenant, 601, ("user", "Сколько стоит стрижка?"), ("assistant", "1500 ₽"))
    await add_messages(tenant, 602, ("user", "Вы работаете в субботу?"))
    base = f"/api/tenants/{tenant.tenant_id}"

    status, customers = await owner.call("GET", f"{base}/customers")
    assert status == 200, customers
    assert customers["total"] == 1
    assert [(c["id"], c["first_name"], c["phone"]) for c in customers["items"]] == [
        (601, "Анна", "+79001112233")
    ]

    status, talks = await owner.call("GET", f"{base}/conversations")
    assert status == 200, talks
    assert [(c["customer_id"], c["messages"], c["last_text"]) for c in talks["items"]] == [
        (602, 1, "Вы работаете в субботу?"),
        (601, 2, "1500 ₽"),
    ]
    assert talks["items"][1]["name"] == "Анна"
    status, talk = await owner.call("GET", f"{base}/conversations/601")
    assert status == 200
    assert [(m["role"], m["content"]) for m in talk["messages"]] == [
        ("user", "Сколько стоит стрижка?"),
        ("assistant", "1500 ₽"),
    ]
    status, _ = await owner.call("GET", f"{base}/conversations/777")
    assert status == 404

    status, services = await owner.call("GET", f"{base}/services")
    assert status == 200
    assert [(s["name"], s["price"], s["duration_min"]) for s in services] == [
        ("Стрижка", "1500.00", 60),
        ("Окрашивание", "4000.00", 120),
    ]
    status, added = await owner.call(
        "POST", f"{base}/services", json={"name": "Укладка", "price": "900", "duration_min": 30}
    )
    assert status == 201, added
    status, edited = await owner.call(
        "PATCH", f"{base}/services/{added['id']}", json={"price": 950.5, "hidden": True}
    )
    assert status == 200, edited
    rows = await fetch(
        tenant.dsn, "SELECT name, price::text, hidden FROM services WHERE id = $1", added["id"]
    )
    assert tuple(rows[0]) == ("Укладка", "950.50", True)
    for payload in (
        {},
        {"price": -1},
        {"price": "1.234"},
        {"duration_min": 3},
        {"name": ""},
        {"name": None},
        {"position": 1},
    ):
        status, body = await owner.call("PATCH", f"{base}/services/{added['id']}", json=payload)
        assert status == 422, (payload, body)
    status, _ = await owner.call("PATCH", f"{base}/services/99999", json={"name": "X"})
    assert status == 404


async def test_another_owners_bot_is_a_404_on_every_route(web_server, http, make_web_tenant):
    a_tenant = await make_web_tenant(web_server)
    b_tenant = await make_web_tenant(web_server)
    a = await owner_client(http, web_server, a_tenant)
    b_booking = await add_booking(b_tenant, 701, "Секрет Б", tomorrow_noon())
    await add_messages(b_tenant, 701, ("user", "секретный вопрос"))
    b_service = (await fetch(b_tenant.dsn, "SELECT min(id) AS id FROM services"))[0]["id"]
    await add_lead(b_tenant, "Секрет Лид")
    b_lead = (await fetch(b_tenant.dsn, "SELECT id FROM leads"))[0]["id"]
    await b_tenant_day_off(b_tenant)
    hours_before = await fetch(b_tenant.dsn, "SELECT * FROM working_hours ORDER BY weekday, opens")
    b = f"/api/tenants/{b_tenant.tenant_id}"
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"{b}/bookings?day={tomorrow_noon().date().isoformat()}", None),
        ("POST", f"{b}/bookings/{b_booking}/cancel", {"note": "x"}),
        ("PATCH", f"{b}/bookings/{b_booking}", {"status": "no_show"}),
        ("GET", f"{b}/customers", None),
        ("GET", f"{b}/conversations", None),
        ("GET", f"{b}/conversations/701", None),
        ("GET", f"{b}/services", None),
        ("POST", f"{b}/services", {"name": "Чужая", "price": 1, "duration_min": 30}),
        ("PATCH", f"{b}/services/{b_service}", {"name": "Взлом"}),
        ("POST", f"{b}/leads/{b_lead}/take", None),
        ("GET", f"{b}/leads/{b_lead}/notes", None),
        ("POST", f"{b}/leads/{b_lead}/notes", {"text": "чужая заметка"}),
        ("POST", f"{b}/conversations/701/reply", {"text": "чужой ответ"}),
        ("POST", f"{b}/conversations/701/release", None),
        ("GET", f"{b}/hours", None),
        ("PUT", f"{b}/hours", {"week": [{"weekday": 0, "hours": []}]}),
        ("POST", f"{b}/hours/days-off", {"day": "2099-01-01"}),
        ("DELETE", f"{b}/hours/days-off/2099-01-02", None),
        ("GET", f"{b}/leads.csv", None),
        ("GET", f"{b}/bookings.csv", None),
        ("GET", f"{b}/customers.csv", None),
        # A bot id that exists nowhere, and one that is not a bot id at all.
        ("GET", "/api/tenants/client_999999/customers", None),
        ("GET", "/api/tenants/..%2Fcontrol/customers", None),
    ]
    for method, path, payload in attempts:
        status, body = await a.call(method, path, json=payload)
        assert status == 404, (method, path, status, body)
        assert "Секрет" not in str(body) and "секрет" not in str(body)
    rows = await fetch(b_tenant.dsn, "SELECT status FROM bookings WHERE id = $1", b_booking)
    assert rows[0]["status"] == "confirmed"
    names = await fetch(b_tenant.dsn, "SELECT name FROM services ORDER BY id")
    assert [r["name"] for r in names] == ["Стрижка", "Окрашивание"]
    leads = await fetch(b_tenant.dsn, "SELECT status, taken_by FROM leads")
    assert [tuple(r) for r in leads] == [("new", None)]
    assert await fetch(b_tenant.dsn, "SELECT * FROM lead_notes") == []
    assert await fetch(b_tenant.dsn, "SELECT * FROM ai_handoffs") == []
    assert await fetch(b_tenant.dsn, "SELECT * FROM working_hours ORDER BY weekday, opens") == (
        hours_before
    )
    days_off = await fetch(b_tenant.dsn, "SELECT day::text FROM days_off ORDER BY day")
    assert [r["day"] for r in days_off] == ["2099-01-02"]
    # B's lead id under A's own bot id reaches A's schema only.
    for method, rest in (("POST", "take"), ("GET", "notes")):
        path = f"/api/tenants/{a_tenant.tenant_id}/leads/{b_lead}/{rest}"
        status, _ = await a.call(method, path)
        assert status == 404, path
    # B's row ids under A's own bot id reach A's schema only: nothing there, nothing of B's.
    status, _ = await a.call("GET", f"/api/tenants/{a_tenant.tenant_id}/conversations/701")
    assert status == 404
    status, _ = await a.call(
        "POST", f"/api/tenants/{a_tenant.tenant_id}/bookings/{b_booking}/cancel", json={}
    )
    assert status == 404
    rows = await fetch(b_tenant.dsn, "SELECT status FROM bookings WHERE id = $1", b_booking)
    assert rows[0]["status"] == "confirmed"
