"""Bad input anywhere is a clear 4xx in the one error shape, never a 500: every POST, PUT and
PATCH route of the table gets malformed bodies, wrong types, a wrong Content-Type, an oversized
body, and (for the bearer routes) no token."""

from __future__ import annotations

from tests.support import free_port
from tests.web.conftest import Client, new_email
from tests.web.test_tenant_data import owner_client
from web.routes import ROUTES

GARBAGE: list[tuple[bytes, str]] = [
    (b"{", "application/json"),
    (b"[]", "application/json"),
    (b'{"text": 5, "user_id": [], "email": null}', "application/json"),
    (b"[" * 5000 + b"]" * 5000, "application/json"),
    (b"\xff\xfe\x00", "application/json"),
    (b"username=&password=", "application/x-www-form-urlencoded"),
    (b"hello", "text/plain"),
    (b"x" * (65 * 1024), "application/json"),
]


async def test_every_route_answers_garbage_with_a_4xx(web_server, http, make_web_tenant):
    tenant = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, tenant)
    key = (await owner.call("GET", f"/api/tenants/{tenant.tenant_id}/widget"))[1]["key"]
    anonymous = Client(http, web_server)
    await anonymous.register(new_email())
    seen = 0
    for route in ROUTES:
        if route.method not in {"POST", "PUT", "PATCH"}:
            continue
        path = route.path.replace("{tenant_id}", tenant.tenant_id).replace("{key}", key)
        for name in ("lead_id", "booking_id", "service_id", "customer_id", "order_id"):
            path = path.replace("{" + name + "}", "1")
        for body, content_type in GARBAGE:
            status, answer = await owner.call(
                route.method, path, data=body, headers={"Content-Type": content_type}
            )
            seen += 1
            if route.path == "/api/auth/logout":
                assert status == 204  # takes no body; this ends the owner's session
                owner = await owner_client(http, web_server, tenant)
                continue
            assert 400 <= status < 500, (route.path, body[:30], status, answer)
            assert answer["error"]["code"] and answer["error"]["message"], answer
        if route.auth == "bearer":
            status, answer = await anonymous.call(route.method, path, token="")
            assert status == 401, route.path
    for path in ("/api/leads?limit=x", "/api/leads?offset=-1", "/api/leads?status=%00", "/nope"):
        status, answer = await owner.call("GET", path)
        assert 400 <= status < 500 and answer["error"]["code"], (path, status)
    status, _ = await owner.call("DELETE", "/api/leads")
    assert status == 405
    assert seen >= 100


async def test_a_bots_database_that_does_not_answer_is_a_503_not_a_500(
    start_web, http, make_web_tenant
):
    """The tenant's PostgreSQL server is down (here: nothing listens where the web looks for
    it): the owner is told to try again, with Retry-After, and the web keeps serving."""
    down = f"postgresql://nobody@127.0.0.1:{free_port()}/botfleet"
    web_server = await start_web(tenant_database_url=down)
    tenant = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, tenant)
    status, body = await owner.call("GET", f"/api/tenants/{tenant.tenant_id}/customers")
    assert (status, body["error"]["code"]) == (503, "database_unavailable"), body
    assert "try again" in body["error"]["message"]
    async with http.get(f"{web_server.url}/health") as response:
        assert response.status == 200
