"""An owner's daily work on the web beside the bot's /admin, on the same rows: notes on leads and
"take it", answering a customer as a person in Telegram (the assistant silent until handed
back), the hours, and CSV exports. The bot runs for real against the Telegram emulator and the
OpenAI emulator; the web sends as the tenant's own bot, with that tenant's token only."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from tests.client.conftest import TenantCreds, bot_factory, emulator  # noqa: F401 - fixtures
from tests.web.conftest import Client, Tenant, WebServer, fetch
from tests.web.test_owner_data import add_booking, tomorrow_noon
from tests.web.test_tenant_data import add_lead, owner_client
from tests.web.test_widget import widget_key


async def give_bot_token(server: WebServer, tenant: Tenant, token: str) -> None:
    """The tenant's bot token as the master keeps it: encrypted for this tenant."""
    await server.deps.control.execute(
        "UPDATE control.tenants SET bot_token_enc = $2 WHERE tenant_id = $1",
        tenant.tenant_id,
        server.box.encrypt(tenant.tenant_id, token),
    )


async def running_bot(
    emulated: Any,
    start_bot: Any,
    server: WebServer,
    tenant: Tenant,
    *,
    clock: Any = None,
    **settings: Any,
) -> Any:
    _server, client = emulated
    token = f"{6000000 + secrets.randbelow(999_999)}:web-desk-{secrets.token_hex(8)}"
    await client.register_bot(token, f"desk{tenant.tenant_id[-4:]}_bot", "Salon")
    await give_bot_token(server, tenant, token)
    return await start_bot(
        tenant=TenantCreds(tenant.tenant_id, tenant.dsn, tenant.redis_url),
        token=token,
        admin_ids=(tenant.owner_telegram_id,),
        seed=False,
        settings=settings,
        clock=clock,  # None: the tests' fixed clock
    )


async def test_notes_and_take_it_are_the_same_in_admin_and_on_the_web(
    start_web,
    http,
    make_web_tenant,
    emulator,  # noqa: F811 - the imported fixture
    bot_factory,  # noqa: F811 - the imported fixture
):
    server = await start_web(telegram_api_url=emulator[0].base_url)
    tenant = await make_web_tenant(server)
    await add_lead(tenant, "Анна")
    lead_id = (await fetch(tenant.dsn, "SELECT id FROM leads"))[0]["id"]
    web = await owner_client(http, server, tenant)
    base = f"/api/tenants/{tenant.tenant_id}/leads/{lead_id}"

    status, taken = await web.call("POST", f"{base}/take")
    assert status == 200, taken
    assert (taken["status"], taken["taken_by"]) == ("in_work", tenant.owner_telegram_id)
    status, again = await web.call("POST", f"{base}/take")
    assert (status, again["error"]["code"]) == (409, "lead_taken")
    status, note = await web.call("POST", f"{base}/notes", json={"text": "Перезвонить в пятницу"})
    assert status == 201, note
    assert (note["via"], note["author_id"]) == ("web", tenant.owner_telegram_id)

    # In the bot's /admin: the lead shows the web's note, and a note written there...
    bot = await running_bot(emulator, bot_factory, server, tenant)
    owner = await bot.admin(tenant.owner_telegram_id)
    panel = await owner.ask("/admin", "Панель управления")
    leads = await owner.press(panel, "🔥 Лиды", "Лиды")
    card = await owner.press(leads, f"⏳ #{lead_id} · Анна", "Перезвонить в пятницу")
    assert "в работе" in card.plain_text
    await owner.press(card, "📝 Заметка", "Напишите заметку")
    saved = await owner.ask("Клиент просит <скидку> 10%", "Заметка сохранена")
    assert "Клиент просит <скидку> 10%" in saved.plain_text

    # ...is on the web, after the web's own, with the leads list counting both.
    status, notes = await web.call("GET", f"{base}/notes")
    assert status == 200
    assert [(n["text"], n["via"]) for n in notes] == [
        ("Перезвонить в пятницу", "web"),
        ("Клиент просит <скидку> 10%", "telegram"),
    ]
    status, mine = await web.call("GET", "/api/leads", params={"mine": "true"})
    assert [(lead["id"], lead["notes"]) for lead in mine["items"]] == [(lead_id, 2)]
    status, new = await web.call("GET", "/api/leads", params={"status": "new"})
    assert (status, new["total"]) == (200, 0)
    for payload in ({"text": ""}, {"text": "x" * 1001}, {"note": "x"}, {}):
        status, _ = await web.call("POST", f"{base}/notes", json=payload)
        assert status == 422, payload
    # Hours set on the web reach the running bot when its cache ages out (30 s; short here).
    ctx = bot.app.ctx
    ctx.max_age = 0.05
    assert (await ctx.schedule()).hours.days[0] == ((time(10), time(19)),)
    monday = {"weekday": 0, "hours": [{"start": "08:00", "end": "09:00"}]}
    assert (
        await web.call("PUT", f"/api/tenants/{tenant.tenant_id}/hours", json={"week": [monday]})
    )[0] == 200
    await asyncio.sleep(0.1)
    assert (await ctx.schedule()).hours.days[0] == ((time(8), time(9)),)

    for bad in ("999999", "0x1", "-3"):
        path = f"/api/tenants/{tenant.tenant_id}/leads/{bad}"
        assert (await web.call("POST", f"{path}/notes", json={"text": "x"}))[0] == 404
        assert (await web.call("GET", f"{path}/notes"))[0] == 404
        assert (await web.call("POST", f"{path}/take"))[0] == 404


async def test_a_person_answers_from_the_web_and_the_assistant_waits(
    start_web,
    http,
    make_web_tenant,
    model,
    emulator,  # noqa: F811 - the imported fixture
    bot_factory,  # noqa: F811 - the imported fixture
):
    server = await start_web(telegram_api_url=emulator[0].base_url)
    tenant = await make_web_tenant(server)
    bot = await running_bot(
        emulator,
        bot_factory,
        server,
        tenant,
        openai_api_key="test-key",
        openai_base_url=model.base_url,
        openai_model="gpt-test",
        openai_timeout=5,
        openai_retry_delay=0.01,
    )
    owner = await bot.admin(tenant.owner_telegram_id)
    anna = bot.customer(9101, "Анна")
    model.reply("Стрижка стоит 1500 ₽.")
    await anna.ask("Сколько стоит стрижка?", "Стрижка стоит 1500 ₽.")
    assert len(model.chat_requests) == 1

    web = await owner_client(http, server, tenant)
    talk = f"/api/tenants/{tenant.tenant_id}/conversations/9101"
    before = await anna.seen()
    status, detail = await web.call(
        "POST", f"{talk}/reply", json={"text": "Здравствуйте, это <b>Ольга</b>, администратор"}
    )
    assert status == 200, detail
    assert detail["with_human"] is True
    assert detail["messages"][-1] == {
        **detail["messages"][-1],
        "role": "staff",
        "content": "Здравствуйте, это <b>Ольга</b>, администратор",
    }
    # Anna reads it in Telegram, from the bot, as text (the owner's markup is not interpreted).
    shown = await anna.wait("Ольга", after=before)
    assert shown.plain_text == "👤 Здравствуйте, это <b>Ольга</b>, администратор"

    # While a person has her, the assistant is not asked: her message is kept, shown on the web
    # and sent to the admins in Telegram.
    seen_by_owner = await owner.seen()
    await anna.send("А в субботу можно?")
    notice = await owner.wait("А в субботу можно?", after=seen_by_owner)
    assert "Анна" in notice.plain_text
    status, detail = await web.call("GET", talk)
    assert [m["content"] for m in detail["messages"]][-1] == "А в субботу можно?"
    assert detail["with_human"] is True
    assert len(model.chat_requests) == 1

    # Handed back: she is told, and the assistant answers her next message.
    before = await anna.seen()
    status, detail = await web.call("POST", f"{talk}/release")
    assert (status, detail["with_human"]) == (200, False)
    await anna.wait("С вами снова ассистент", after=before)
    status, again = await web.call("POST", f"{talk}/release")
    assert (status, again["error"]["code"]) == (409, "not_with_a_person")
    model.reply("Да, в субботу с 11:00.")
    await anna.ask("Тогда в субботу", "Да, в субботу с 11:00.")
    assert len(model.chat_requests) == 2

    # Only this bot's customers, only in Telegram, only with something to say.
    base = f"/api/tenants/{tenant.tenant_id}/conversations"
    assert (await web.call("POST", f"{base}/424242/reply", json={"text": "спам"}))[0] == 404
    assert (await web.call("POST", f"{base}/-5/reply", json={"text": "x"}))[0] == 404
    for payload in ({"text": ""}, {"text": "x" * 3501}, {}):
        assert (await web.call("POST", f"{talk}/reply", json=payload))[0] == 422
    rows = await fetch(
        tenant.dsn, "SELECT role, content FROM ai_messages WHERE customer_id = 9101 ORDER BY id"
    )
    assert [r["role"] for r in rows] == ["user", "assistant", "staff", "user", "user", "assistant"]


async def test_hours_and_days_off_on_the_web_are_the_bots(web_server, http, make_web_tenant):
    tenant = await make_web_tenant(web_server)
    web = await owner_client(http, web_server, tenant)
    base = f"/api/tenants/{tenant.tenant_id}/hours"
    status, hours = await web.call("GET", base)
    assert status == 200, hours
    monday = hours["week"][0]
    assert monday["hours"] == [{"start": "10:00", "end": "19:00"}]  # as seeded in the bot
    assert monday["breaks"] == [{"start": "13:00", "end": "14:00"}]
    assert hours["week"][6]["hours"] == []  # Sunday closed

    status, hours = await web.call(
        "PUT",
        base,
        json={
            "week": [
                {
                    "weekday": 0,
                    "hours": [
                        {"start": "14:00", "end": "20:00"},
                        {"start": "08:00", "end": "12:00"},
                    ],
                    "breaks": [],
                },
                {"weekday": 5, "hours": []},
                {"weekday": 6, "hours": [{"start": "11:00", "end": "16:00"}]},
            ]
        },
    )
    assert status == 200, hours
    rows = await fetch(
        tenant.dsn,
        "SELECT weekday, opens::text, closes::text FROM working_hours"
        " WHERE weekday IN (0, 5, 6) ORDER BY weekday, opens",
    )
    assert [tuple(r) for r in rows] == [
        (0, "08:00:00", "12:00:00"),
        (0, "14:00:00", "20:00:00"),
        (6, "11:00:00", "16:00:00"),
    ]
    breaks = await fetch(tenant.dsn, "SELECT weekday FROM breaks ORDER BY weekday")
    assert [r["weekday"] for r in breaks] == [1, 2, 3, 4]  # Monday's and Saturday's gone
    assert hours["week"][1]["hours"] == [{"start": "10:00", "end": "19:00"}]  # untouched

    day = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    status, hours = await web.call("POST", f"{base}/days-off", json={"day": day, "note": "ремонт"})
    assert (status, hours["days_off"]) == (201, [day])
    rows = await fetch(tenant.dsn, "SELECT day::text, note FROM days_off")
    assert [tuple(r) for r in rows] == [(day, "ремонт")]
    status, hours = await web.call("DELETE", f"{base}/days-off/{day}")
    assert (status, hours["days_off"]) == (200, [])
    assert (await web.call("DELETE", f"{base}/days-off/{day}"))[0] == 404
    assert (await web.call("DELETE", f"{base}/days-off/not-a-day"))[0] == 404

    yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    bad: tuple[dict[str, Any], ...] = (
        {"week": [{"weekday": 7, "hours": []}]},
        {"week": [{"weekday": 1, "hours": [{"start": "19:00", "end": "10:00"}]}]},
        {"week": [{"weekday": 1, "hours": [{"start": "9:00", "end": "10:00"}]}]},
        {
            "week": [
                {
                    "weekday": 1,
                    "hours": [
                        {"start": "10:00", "end": "14:00"},
                        {"start": "13:00", "end": "18:00"},
                    ],
                }
            ]
        },
        {"week": [{"weekday": 1, "hours": []}, {"weekday": 1, "hours": []}]},
        {"week": []},
    )
    for payload in bad:
        status, body = await web.call("PUT", base, json=payload)
        assert status == 422, (payload, body)
    status, body = await web.call("POST", f"{base}/days-off", json={"day": yesterday})
    assert (status, body["error"]["code"]) == (422, "day_in_the_past")
    rows = await fetch(tenant.dsn, "SELECT count(*) AS n FROM working_hours WHERE weekday = 1")
    assert rows[0]["n"] == 1


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))


async def test_csv_exports_of_leads_bookings_and_customers(web_server, http, make_web_tenant):
    tenant = await make_web_tenant(web_server)
    other = await make_web_tenant(web_server)
    web = await owner_client(http, web_server, tenant)
    conn = await asyncpg.connect(tenant.dsn)
    try:
        lead_id = await conn.fetchval(
            "INSERT INTO leads (customer_id, name, phone, interest, comment)"
            " VALUES (1, 'Анна; \"Ромашка\"', '+79001234567', '=HYPERLINK(\"x\")',"
            " E'две строки\\nвторая') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO lead_notes (lead_id, author_id, via, body) VALUES"
            " ($1, 1, 'web', 'первая'), ($1, 2, 'telegram', 'вторая')",
            lead_id,
        )
    finally:
        await conn.close()
    await add_lead(other, "Чужой Лид")
    booking = await add_booking(tenant, 501, "Борис", tomorrow_noon())
    base = f"/api/tenants/{tenant.tenant_id}"

    async with http.get(
        f"{web_server.url}{base}/leads.csv", headers={"Authorization": f"Bearer {web.access}"}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = read_csv(await response.read())
    assert rows[0][:3] == ["Номер", "Создана", "Имя"]
    assert len(rows) == 2
    row = rows[1]
    assert row[0] == str(lead_id)
    assert row[2] == 'Анна; "Ромашка"'  # quoted by the writer, read back whole
    assert row[4] == '\'=HYPERLINK("x")'  # never a formula
    assert row[5] == "две строки\nвторая"
    assert row[6] == "новая"
    assert row[9] == "первая\nвторая"

    async with http.get(
        f"{web_server.url}{base}/bookings.csv",
        params={"lang": "en"},
        headers={"Authorization": f"Bearer {web.access}"},
    ) as response:
        rows = read_csv(await response.read())
    assert rows[0][:2] == ["Number", "Starts"]
    assert [(r[0], r[3], r[5], r[7]) for r in rows[1:]] == [
        (str(booking), "Стрижка", "Борис", "confirmed")
    ]
    assert rows[1][1] == tomorrow_noon().astimezone(ZoneInfo("Europe/Moscow")).strftime(
        "%Y-%m-%d %H:%M"
    )

    async with http.get(
        f"{web_server.url}{base}/customers.csv", headers={"Authorization": f"Bearer {web.access}"}
    ) as response:
        rows = read_csv(await response.read())
    assert [(r[0], r[1], r[3], r[4]) for r in rows[1:]] == [("501", "Борис", "+79001112233", "нет")]

    # The bookings page's total comes with its rows, and past the end it is still counted.
    day = {"day": tomorrow_noon().date().isoformat()}
    for offset, shown in (("0", [booking]), ("1", [])):
        status, page = await web.call(
            "GET", f"{base}/bookings", params={**day, "limit": "1", "offset": offset}
        )
        assert (status, page["total"], [b["id"] for b in page["items"]]) == (200, 1, shown)

    status, body = await web.call("GET", f"{base}/leads.csv", params={"lang": "de"})
    assert status == 422, body
    status, _ = await web.call("GET", f"{base}/leads.csv", token="")
    assert status == 401


async def test_lead_pages_across_one_and_several_bots(web_server, http, make_web_tenant):
    """One bot's page comes straight from its table (OFFSET in SQL); several bots' are merged:
    either way the pages are the newest-first list cut in order, nothing twice, nothing lost."""
    a = await make_web_tenant(web_server)
    b = await make_web_tenant(web_server, owner=a.owner_telegram_id)
    names = {a.tenant_id: ["A1", "A2", "A3"], b.tenant_id: ["B1", "B2"]}
    order = ["A1", "B1", "A2", "B2", "A3"]  # oldest first
    for tenant in (a, b):
        conn = await asyncpg.connect(tenant.dsn)
        try:
            for name in names[tenant.tenant_id]:
                await conn.execute(
                    "INSERT INTO leads (customer_id, name, phone, created_at)"
                    " VALUES (1, $1, '+79001234567', now() - make_interval(mins => $2))",
                    name,
                    100 - order.index(name),
                )
        finally:
            await conn.close()
    web = await owner_client(http, web_server, a)

    async def pages(**params: str) -> list[str]:
        seen: list[str] = []
        for offset in range(0, 6, 2):
            status, page = await web.call(
                "GET", "/api/leads", params={"limit": "2", "offset": str(offset), **params}
            )
            assert status == 200, page
            seen += [lead["name"] for lead in page["items"]]
        return seen

    assert await pages() == order[::-1]
    assert await pages(tenant_id=a.tenant_id) == ["A3", "A2", "A1"]
    status, page = await web.call("GET", "/api/leads", params={"tenant_id": b.tenant_id})
    assert (status, page["total"], [lead["name"] for lead in page["items"]]) == (
        200,
        2,
        ["B2", "B1"],
    )


async def test_a_website_visitor_reads_a_persons_answer_in_the_widget(
    web_server, http, make_web_tenant, model
):
    tenant = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, tenant)
    key = await widget_key(owner, tenant.tenant_id)
    visitor = f"visitor-{secrets.token_hex(8)}"
    site = Client(http, web_server)  # the widget: no token

    async def say(text: str) -> dict[str, Any]:
        status, out = await site.call(
            "POST", f"/api/widget/{key}/chat", json={"visitor_id": visitor, "text": text}
        )
        assert status == 200, out
        return dict(out)

    async def poll(who: str = visitor, after: int = 0) -> dict[str, Any]:
        status, out = await site.call(
            "GET", f"/api/widget/{key}/messages", params={"visitor_id": who, "after": str(after)}
        )
        assert status == 200, out
        return dict(out)

    model.reply("Стрижка стоит 1500 ₽.")
    customer_id = (await say("Сколько стоит стрижка?"))["customer_id"]
    assert await poll() == {"items": [], "with_human": False}
    talk = f"/api/tenants/{tenant.tenant_id}/conversations/{customer_id}"
    status, detail = await owner.call("POST", f"{talk}/reply", json={"text": "Ольга на связи"})
    assert status == 200, detail
    assert detail["with_human"] is True
    polled = await poll()
    assert ([m["text"] for m in polled["items"]], polled["with_human"]) == (
        ["Ольга на связи"],
        True,
    )
    assert (await poll(after=polled["items"][-1]["id"]))["items"] == []
    assert (await poll(f"visitor-{secrets.token_hex(8)}"))["items"] == []  # another visitor

    # Handed over: the visitor's message goes to the admins (queued for the bot), not the model.
    asked = len(model.chat_requests)
    assert (await say("А завтра можно?"))["outcome"] == "relayed"
    assert len(model.chat_requests) == asked
    notices = await fetch(tenant.dsn, "SELECT text FROM admin_notices ORDER BY id")
    assert "А завтра можно?" in notices[-1]["text"]
    status, detail = await owner.call("POST", f"{talk}/release")
    assert (status, detail["with_human"]) == (200, False)
    status, detail = await owner.call("GET", talk)  # a 19-digit id is a conversation too
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "staff", "user"]
    model.reply("Да, завтра с 10:00.")
    assert (await say("Тогда завтра"))["reply"] == "Да, завтра с 10:00."
    assert len(model.chat_requests) == asked + 1

    for params in ({"visitor_id": "x"}, {"visitor_id": visitor, "after": "-1"}, {}):
        status, _ = await site.call("GET", f"/api/widget/{key}/messages", params=params)
        assert status == 422, params
    status, _ = await site.call(
        "GET", "/api/widget/w_nosuchkeyatall123456/messages", params={"visitor_id": visitor}
    )
    assert status == 404
