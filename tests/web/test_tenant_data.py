"""A tenant's data on the web: only the owner's, only through the tenant's own role, and the
AI assistant answering on the web exactly as in the bot (the OpenAI emulator as the model).

The attack: account A asks for account B's leads, bot and widget settings in every way the API
takes an id (query, body, path); each is a 404, never data.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from redis.exceptions import NoPermissionError

from database.roles import login_role
from tests.web.conftest import Client, Tenant, WebServer, fetch, new_email
from web.tokens import issue_login_link


async def owner_client(http: Any, server: WebServer, tenant: Tenant) -> Client:
    """The tenant's owner, logged in by a one-time link from the bot (as after a purchase)."""
    client = Client(http, server)
    link = issue_login_link(server.deps.keys, tenant.owner_telegram_id, ttl=60)
    status, tokens = await client.call("POST", "/api/auth/link", json={"token": link}, token="")
    assert status == 200, tokens
    client.keep(tokens)
    return client


async def add_lead(tenant: Tenant, name: str, status: str = "new") -> None:
    conn = await asyncpg.connect(tenant.dsn)
    try:
        await conn.execute(
            "INSERT INTO leads (customer_id, name, phone, interest, status)"
            " VALUES (1, $1, '+79001234567', 'стрижка', $2)",
            name,
            status,
        )
    finally:
        await conn.close()


async def test_login_link_is_one_time_and_links_the_bought_bots(web_server, http, make_web_tenant):
    tenant = await make_web_tenant(web_server)
    link = issue_login_link(web_server.deps.keys, tenant.owner_telegram_id, ttl=60)
    client = Client(http, web_server)
    status, tokens = await client.call("POST", "/api/auth/link", json={"token": link}, token="")
    assert status == 200
    client.keep(tokens)
    status, me = await client.call("GET", "/api/auth/me")
    assert status == 200
    assert me["telegram_linked"] is True and me["email"] is None
    assert [t["tenant_id"] for t in me["tenants"]] == [tenant.tenant_id]

    status, body = await client.call("POST", "/api/auth/link", json={"token": link}, token="")
    assert status == 401 and "already used" in body["error"]["message"]
    expired = issue_login_link(web_server.deps.keys, tenant.owner_telegram_id, ttl=-60)
    status, _ = await client.call("POST", "/api/auth/link", json={"token": expired}, token="")
    assert status == 401

    # The page behind the link spends nothing on GET (a link preview must not use it up),
    # runs only its own script, and the token never reaches the access log.
    async with http.get(f"{web_server.url}/login/link?token={link}") as response:
        assert response.status == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert "/static/link.js" in await response.text()


async def test_a_password_account_binds_its_telegram_owner_by_link(
    web_server, http, make_web_tenant
):
    tenant = await make_web_tenant(web_server)
    client = Client(http, web_server)
    await client.register(new_email())
    link = issue_login_link(web_server.deps.keys, tenant.owner_telegram_id, ttl=60)
    status, _ = await client.call("POST", "/api/auth/link", json={"token": link})
    assert status == 200
    status, me = await client.call("GET", "/api/auth/me")
    assert [t["tenant_id"] for t in me["tenants"]] == [tenant.tenant_id]
    # Another account cannot take the same Telegram owner over.
    intruder = Client(http, web_server)
    await intruder.register(new_email())
    link2 = issue_login_link(web_server.deps.keys, tenant.owner_telegram_id, ttl=60)
    status, body = await intruder.call("POST", "/api/auth/link", json={"token": link2})
    assert (status, body["error"]["code"]) == (409, "telegram_linked_elsewhere")
    status, me = await intruder.call("GET", "/api/auth/me")
    assert me["tenants"] == []


async def test_leads_only_the_accounts_own(web_server, http, make_web_tenant):
    a_tenant = await make_web_tenant(web_server)
    b_tenant = await make_web_tenant(web_server)
    await add_lead(a_tenant, "Анна")
    await add_lead(a_tenant, "Борис", "won")
    await add_lead(b_tenant, "Секрет Б")
    a = await owner_client(http, web_server, a_tenant)
    b = await owner_client(http, web_server, b_tenant)

    status, page = await a.call("GET", "/api/leads")
    assert status == 200, page
    assert page["total"] == 2
    assert sorted(lead["name"] for lead in page["items"]) == ["Анна", "Борис"]
    assert {lead["tenant_id"] for lead in page["items"]} == {a_tenant.tenant_id}
    status, page = await a.call("GET", "/api/leads", params={"status": "won"})
    assert [lead["name"] for lead in page["items"]] == ["Борис"]
    status, page = await b.call("GET", "/api/leads")
    assert [lead["name"] for lead in page["items"]] == ["Секрет Б"]

    # The attack: B's bot id forged into A's requests, in the query, the body and the path.
    status, body = await a.call("GET", "/api/leads", params={"tenant_id": b_tenant.tenant_id})
    assert status == 404 and "Секрет" not in str(body)
    status, body = await a.call(
        "POST",
        "/api/chat",
        json={"user_id": "x", "text": "покажи лиды", "tenant_id": b_tenant.tenant_id},
    )
    assert status == 404
    b_widget = f"/api/tenants/{b_tenant.tenant_id}/widget"
    status, _ = await a.call("GET", b_widget)
    assert status == 404
    status, _ = await a.call("PUT", b_widget, json={"allowed_origins": []})
    assert status == 404
    # Bad filters are 422, not 500; no token is 401.
    for params in ({"status": "deleted"}, {"limit": "0"}, {"tenant_id": "client_1;--"}):
        status, _ = await a.call("GET", "/api/leads", params=params)
        assert status == 422, params
    status, _ = await a.call("GET", "/api/leads", token="")
    assert status == 401


async def test_the_web_reaches_a_tenant_only_as_its_own_role(web_server, make_web_tenant):
    a_tenant = await make_web_tenant(web_server)
    b_tenant = await make_web_tenant(web_server)
    runtime = await web_server.deps.gate.runtime(a_tenant.tenant_id)
    async with runtime.pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == login_role(a_tenant.tenant_id)
        # B's schema and the platform's control schema are out of reach for this role.
        for table in (f'"{b_tenant.tenant_id}".leads', "control.tenants"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {table}")
    # Redis: the tenant's own ACL user, limited to its prefix (not even ACL WHOAMI is allowed).
    kwargs = runtime.redis.connection_pool.connection_kwargs
    assert kwargs["username"] == login_role(a_tenant.tenant_id)
    await runtime.redis.set(f"{{{a_tenant.tenant_id}}}:web:probe", "1", ex=10)
    with pytest.raises(NoPermissionError):
        await runtime.redis.get(f"{{{b_tenant.tenant_id}}}:ai:tokens:x")


async def test_chat_answers_with_the_assistant_and_keeps_the_conversation(
    web_server, http, make_web_tenant, model
):
    tenant = await make_web_tenant(web_server)
    client = await owner_client(http, web_server, tenant)
    model.reply("Здравствуйте! Стрижка стоит 1500 ₽.")
    status, out = await client.call(
        "POST", "/api/chat", json={"user_id": "crm-42", "text": "Сколько стоит стрижка?"}
    )
    assert status == 200, out
    assert out == {
        "outcome": "answer",
        "reply": "Здравствуйте! Стрижка стоит 1500 ₽.",
        "customer_id": out["customer_id"],
    }
    assert out["customer_id"] < 0  # web customers never meet Telegram ids
    # The model was given the tenant's own data (its services), as the bot gives it.
    request = model.chat_requests[-1]
    assert "Стрижка" in request.system
    rows = await fetch(
        tenant.dsn,
        "SELECT role, content FROM ai_messages WHERE customer_id = $1 ORDER BY id",
        out["customer_id"],
    )
    assert [(r["role"], r["content"]) for r in rows] == [
        ("user", "Сколько стоит стрижка?"),
        ("assistant", "Здравствуйте! Стрижка стоит 1500 ₽."),
    ]
    # The same user_id continues the same conversation: the history reaches the model.
    model.reply("Да, по субботам тоже.")
    status, out2 = await client.call(
        "POST", "/api/chat", json={"user_id": "crm-42", "text": "А в субботу?"}
    )
    assert (status, out2["customer_id"]) == (200, out["customer_id"])
    assert len(model.chat_requests) == 2
    assert "Сколько стоит стрижка?" in str(model.chat_requests[-1].messages)

    # Bad input is a 4xx.
    for payload in ({"user_id": "", "text": "x"}, {"user_id": "u", "text": ""}, {"text": "x"}):
        status, _ = await client.call("POST", "/api/chat", json=payload)
        assert status == 422, payload


async def test_chat_refused_when_the_plan_has_no_assistant(web_server, http, make_web_tenant):
    tenant = await make_web_tenant(web_server, plan="start")
    client = await owner_client(http, web_server, tenant)
    status, body = await client.call("POST", "/api/chat", json={"user_id": "u", "text": "hi"})
    assert (status, body["error"]["code"]) == (409, "assistant_off")


async def test_the_owner_changes_a_leads_status_and_only_their_own(
    web_server, http, make_web_tenant
):
    a_tenant = await make_web_tenant(web_server)
    b_tenant = await make_web_tenant(web_server)
    await add_lead(a_tenant, "Анна")
    await add_lead(b_tenant, "Секрет Б")
    a = await owner_client(http, web_server, a_tenant)
    b = await owner_client(http, web_server, b_tenant)
    (a_lead,) = (await a.call("GET", "/api/leads"))[1]["items"]
    (b_lead,) = (await b.call("GET", "/api/leads"))[1]["items"]

    path = f"/api/tenants/{a_tenant.tenant_id}/leads/{a_lead['id']}"
    status, lead = await a.call("PATCH", path, json={"status": "in_work"})
    assert status == 200, lead
    assert (lead["status"], lead["taken_by"]) == ("in_work", a_tenant.owner_telegram_id)
    # In the tenant's table, where the bot's /admin → Leads reads it.
    rows = await fetch(
        a_tenant.dsn, "SELECT status, taken_by FROM leads WHERE id = $1", a_lead["id"]
    )
    assert (rows[0]["status"], rows[0]["taken_by"]) == ("in_work", a_tenant.owner_telegram_id)

    # The attack: B's lead through B's bot id in A's path, or A's bot with an unknown lead id.
    b_path = f"/api/tenants/{b_tenant.tenant_id}/leads/{b_lead['id']}"
    status, _ = await a.call("PATCH", b_path, json={"status": "lost"})
    assert status == 404
    rows = await fetch(b_tenant.dsn, "SELECT status FROM leads")
    assert [r["status"] for r in rows] == ["new"]
    for bad in ("999999", "-1", "1e3", "99999999999999999999"):
        status, _ = await a.call(
            "PATCH", f"/api/tenants/{a_tenant.tenant_id}/leads/{bad}", json={"status": "won"}
        )
        assert status == 404, bad
    status, _ = await a.call("PATCH", path, json={"status": "deleted"})
    assert status == 422
