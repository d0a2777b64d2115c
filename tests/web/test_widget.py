"""The website widget's API (public key, CORS, per-visitor limits) and the documents the web
serves itself: its OpenAPI document and Swagger UI from local assets."""

from __future__ import annotations

import json

from tests.web.conftest import Client, fetch
from tests.web.test_tenant_data import owner_client

SITE = "https://salon.example"


async def widget_key(client: Client, tenant_id: str) -> str:
    status, out = await client.call("GET", f"/api/tenants/{tenant_id}/widget")
    assert status == 200, out
    assert out["key"] in out["snippet"] and "/widget.js" in out["snippet"]
    key: str = out["key"]
    return key


async def widget_chat(http, server, key, visitor, text, origin=SITE):
    async with http.post(
        f"{server.url}/api/widget/{key}/chat",
        json={"visitor_id": visitor, "text": text},
        headers={"Origin": origin},
    ) as response:
        return response.status, await response.json(), response.headers


async def test_widget_chat_answers_and_stores_the_visitors_conversation(
    web_server, http, make_web_tenant, model
):
    tenant = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, tenant)
    key = await widget_key(owner, tenant.tenant_id)
    assert key == await widget_key(owner, tenant.tenant_id)  # one key per bot, kept

    model.reply("Добрый день! Чем помочь?")
    status, out, headers = await widget_chat(http, web_server, key, "visitor-0001", "Привет")
    assert status == 200, out
    assert out["reply"] == "Добрый день! Чем помочь?"
    assert headers["Access-Control-Allow-Origin"] == SITE
    rows = await fetch(
        tenant.dsn,
        "SELECT role, content FROM ai_messages WHERE customer_id = $1 ORDER BY id",
        out["customer_id"],
    )
    assert [r["content"] for r in rows] == ["Привет", "Добрый день! Чем помочь?"]
    # A widget visitor and an API user with the same id are different customers.
    model.reply("ok")
    status, api = await owner.call(
        "POST", "/api/chat", json={"user_id": "visitor-0001", "text": "Привет"}
    )
    assert status == 200 and api["customer_id"] != out["customer_id"]

    # The CORS preflight the browser sends first.
    async with http.options(
        f"{web_server.url}/api/widget/{key}/chat",
        headers={"Origin": SITE, "Access-Control-Request-Method": "POST"},
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == SITE
        assert "POST" in response.headers["Access-Control-Allow-Methods"]


async def test_widget_keys_origins_and_bad_input(web_server, http, make_web_tenant, model):
    a_tenant = await make_web_tenant(web_server)
    b_tenant = await make_web_tenant(web_server)
    a = await owner_client(http, web_server, a_tenant)
    key = await widget_key(a, a_tenant.tenant_id)

    for bad_key in ("w_" + "x" * 22, "nope", key + "x"):
        status, body, _ = await widget_chat(http, web_server, bad_key, "visitor-0001", "hi")
        assert status == 404, bad_key
    for payload in (
        {"visitor_id": "short", "text": "hi"},
        {"visitor_id": "visitor-0001", "text": ""},
        {"visitor_id": "visitor-0001", "text": "x" * 2001},
        {"visitor_id": "../../etc", "text": "hi"},
    ):
        async with http.post(f"{web_server.url}/api/widget/{key}/chat", json=payload) as r:
            assert r.status == 422, payload

    # The owner limits the widget to their site: another site is refused before any work.
    status, out = await a.call(
        "PUT", f"/api/tenants/{a_tenant.tenant_id}/widget", json={"allowed_origins": [SITE]}
    )
    assert (status, out["allowed_origins"]) == (200, [SITE])
    status, body, _ = await widget_chat(
        http, web_server, key, "visitor-0001", "hi", origin="https://evil.example"
    )
    assert (status, body["error"]["code"]) == (403, "origin_not_allowed")
    status, _ = await a.call(
        "PUT", f"/api/tenants/{a_tenant.tenant_id}/widget", json={"allowed_origins": ["ftp://x"]}
    )
    assert status == 422
    assert model.chat_requests == []  # nothing above reached the model

    # A suspended bot's widget goes quiet.
    b = await owner_client(http, web_server, b_tenant)
    b_key = await widget_key(b, b_tenant.tenant_id)
    await web_server.deps.control.execute(
        "UPDATE control.tenants SET status = 'suspended' WHERE tenant_id = $1", b_tenant.tenant_id
    )
    status, _, _ = await widget_chat(http, web_server, b_key, "visitor-0001", "hi")
    assert status == 404


async def test_widget_rate_limit_per_visitor(start_web, http, make_web_tenant, model, redis_admin):
    server = await start_web(assistant_rate_limit=2, assistant_rate_window=60)
    tenant = await make_web_tenant(server)
    owner = await owner_client(http, server, tenant)
    key = await widget_key(owner, tenant.tenant_id)
    for _ in range(2):
        model.reply("ok")
        status, _, _ = await widget_chat(http, server, key, "visitor-fast", "hi")
        assert status == 200
    status, body, headers = await widget_chat(http, server, key, "visitor-fast", "hi")
    assert (status, body["error"]["code"]) == (429, "too_many_messages")
    assert headers["Retry-After"] == "60"
    assert headers["Access-Control-Allow-Origin"] == SITE  # the widget can read the refusal
    model.reply("ok")
    status, _, _ = await widget_chat(http, server, key, "visitor-calm", "hi")
    assert status == 200  # another visitor is not affected
    # The counters live under the tenant's own prefix.
    keys = [k.decode() async for k in redis_admin.scan_iter(f"{{{tenant.tenant_id}}}:ai:rate:*")]
    assert len(keys) == 2


async def test_openapi_and_swagger_ui_are_served_locally(web_server, http):
    async with http.get(web_server.url + "/openapi.json") as response:
        doc = await response.json()
    assert doc["openapi"] == "3.0.3"  # what the bundled Swagger UI 4 renders
    assert '"type": "null"' not in json.dumps(doc)  # 3.1 spelling rewritten as nullable
    login = doc["paths"]["/api/auth/login"]["post"]
    assert "application/x-www-form-urlencoded" in login["requestBody"]["content"]
    flows = doc["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["password"]["tokenUrl"] == "/api/auth/login"
    for path in ("/api/auth/register", "/api/auth/me", "/api/leads", "/api/chat", "/health"):
        assert path in doc["paths"], path

    async with http.get(web_server.url + "/docs") as response:
        assert response.status == 200
        page = await response.text()
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "/docs/assets/swagger-ui-bundle.js" in page and "http" not in page.split("<body>")[1]
    async with http.get(web_server.url + "/docs/assets/swagger-ui-bundle.js") as response:
        assert response.status == 200
        assert response.content_type == "application/javascript"
        assert len(await response.read()) > 100_000
    for path in ("/docs/assets/index.j2", "/docs/assets/..%2F..%2Fpasswords.py", "/static/x.py"):
        async with http.get(web_server.url + path) as response:
            assert response.status == 404, path
    async with http.get(web_server.url + "/widget.js") as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    async with http.get(web_server.url + "/health") as response:
        assert (response.status, (await response.json())["status"]) == (200, "ok")


async def test_a_lead_from_the_site_lands_in_leads_and_is_queued_for_the_owner(
    web_server, http, make_web_tenant, model
):
    """The assistant's register_lead tool on the web: the lead is the tenant's (listed by the
    API), and the notice to the owner waits in the tenant's admin_notices, rendered in Russian
    with the bot's "take it" button, for the tenant's bot to deliver."""
    tenant = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, tenant)
    key = await widget_key(owner, tenant.tenant_id)
    model.call_tools(
        ("register_lead", {"name": "Ольга", "phone": "+7 900 555-44-33", "interest": "окрашивание"})
    )
    model.reply("Спасибо, Ольга! Менеджер перезвонит.")
    status, out, _ = await widget_chat(http, web_server, key, "visitor-lead", "Перезвоните мне")
    assert (status, out["reply"]) == (200, "Спасибо, Ольга! Менеджер перезвонит.")
    assert model.chat_requests[-1].tool_results()[0].get("error") is None

    status, page = await owner.call("GET", "/api/leads", params={"status": "new"})
    assert status == 200
    (lead,) = page["items"]
    assert (lead["name"], lead["interest"], lead["customer_id"]) == (
        "Ольга",
        "окрашивание",
        out["customer_id"],
    )
    notices = await fetch(
        tenant.dsn, "SELECT admin_id, text, reply_markup, sent_at FROM admin_notices"
    )
    assert [n["admin_id"] for n in notices] == [tenant.owner_telegram_id]
    assert "Новый лид" in notices[0]["text"] and "Имя: Ольга" in notices[0]["text"]
    assert "inline_keyboard" in notices[0]["reply_markup"]
    assert notices[0]["sent_at"] is None  # the tenant's bot delivers it, not the web
