"""Accounts over real HTTP: register, the OAuth2 password login, /me, refresh rotation, logout,
and every way a token can be wrong (expired, forged, another kind, another key, revoked)."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from jwt.utils import base64url_encode

from tests.web.conftest import Client, new_email
from web.tokens import (
    ACCESS_AUDIENCE,
    ISSUER,
    SigningKeys,
    TokenError,
    generate_key,
    issue_access,
    issue_login_link,
    key_id,
    verify_access,
)

PASSWORD = "correct horse battery"
SID = "00000000-0000-4000-8000-000000000000"


async def test_register_login_me(web_server, http):
    email = new_email()
    alice = Client(http, web_server)
    await alice.register(email.upper(), PASSWORD)  # emails are case-insensitive

    status, me = await alice.call("GET", "/api/auth/me")
    assert status == 200
    assert me["email"] == email
    assert me["company_name"] == "ООО Ромашка"
    assert me["tenants"] == []

    fresh = Client(http, web_server)
    status, tokens = await fresh.login(email, PASSWORD)
    assert status == 200, tokens
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == web_server.settings.web_access_ttl
    status, me2 = await fresh.call("GET", "/api/auth/me")
    assert (status, me2["id"]) == (200, me["id"])

    # The password is stored as an Argon2id hash, never as given.
    stored = await web_server.deps.control.fetchval(
        "SELECT password_hash FROM control.web_accounts WHERE id = $1", me["id"]
    )
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_wrong_password_and_unknown_email_are_the_same_401(web_server, http):
    email = new_email()
    await Client(http, web_server).register(email, PASSWORD)
    client = Client(http, web_server)
    wrong = await client.login(email, PASSWORD + "!")
    unknown = await client.login(new_email(), PASSWORD)
    assert wrong[0] == unknown[0] == 401
    assert wrong[1]["error"]["message"] == unknown[1]["error"]["message"]
    assert client.access == ""


async def test_failed_logins_are_throttled_per_email(start_web, http):
    web_server = await start_web(web_login_email_limit=3)
    email = new_email()
    await Client(http, web_server).register(email, PASSWORD)
    client = Client(http, web_server)
    for _ in range(3):
        status, _body = await client.login(email, "wrong password")
        assert status == 401
    status, body = await client.login(email, PASSWORD)  # even the right one, for a while
    assert status == 429
    assert "try again in" in body["error"]["message"]


async def test_register_refuses_bad_input_and_a_taken_email(web_server, http):
    client = Client(http, web_server)
    email = new_email()
    await client.register(email, PASSWORD)
    status, body = await client.call(
        "POST",
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "company_name": "x"},
    )
    assert (status, body["error"]["code"]) == (409, "email_taken")
    bad = [
        {"email": "not-an-email", "password": PASSWORD, "company_name": "x"},
        {"email": new_email(), "password": "short", "company_name": "x"},
        {"email": new_email(), "password": PASSWORD, "company_name": ""},
        {"email": new_email(), "password": PASSWORD},
        {"email": new_email(), "password": PASSWORD, "company_name": "x", "admin": True},
        [1, 2],
    ]
    for payload in bad:
        status, body = await client.call("POST", "/api/auth/register", json=payload)
        assert status == 422, (payload, body)
    status, body = await client.call(
        "POST", "/api/auth/register", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    # The login is a form (OAuth2): JSON is refused with a clear 415, a missing field is a 422.
    status, body = await client.call(
        "POST", "/api/auth/login", json={"username": email, "password": PASSWORD}
    )
    assert status == 415
    status, body = await client.call("POST", "/api/auth/login", data={"username": email})
    assert status == 422


async def test_expired_forged_and_foreign_tokens_are_401(web_server, http):
    client = Client(http, web_server)
    await client.register(new_email(), PASSWORD)
    keys = web_server.deps.keys
    claims = verify_access(keys, client.access)

    async def me_with(token: str) -> int:
        status, body = await client.call("GET", "/api/auth/me", token=token)
        if status == 401:
            assert body["error"]["code"] == "unauthorized"
        return status

    assert await me_with(client.access) == 200
    expired = issue_access(keys, claims.account_id, claims.session_id, ttl=-60)
    assert await me_with(expired) == 401
    # Signed with a key the server does not have, but claiming the server's key id.
    attacker = generate_key()
    payload = jwt.decode(client.access, options={"verify_signature": False})
    real_kid = jwt.get_unverified_header(client.access)["kid"]
    forged = jwt.encode(payload, attacker, algorithm="HS256", headers={"kid": real_kid})
    assert await me_with(forged) == 401
    # Another account's id in a token otherwise copied: the signature no longer matches.
    head, _body, sig = client.access.split(".")
    tampered_payload = base64url_encode(
        json.dumps({**payload, "sub": str(claims.account_id + 1)}).encode()
    ).decode()
    assert await me_with(f"{head}.{tampered_payload}.{sig}") == 401
    # alg=none and garbage.
    unsigned = jwt.encode(payload, "", algorithm="none", headers={"kid": real_kid})
    assert await me_with(unsigned) == 401
    assert await me_with("not.a.jwt") == 401
    # A login link is signed by the same keys but is not an access token.
    link = issue_login_link(keys, 12345, ttl=60)
    assert await me_with(link) == 401
    # No header, another scheme.
    status, _ = await client.call("GET", "/api/auth/me", token="")
    assert status == 401
    async with http.get(
        web_server.url + "/api/auth/me", headers={"Authorization": f"Basic {client.access}"}
    ) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_signing_keys_rotate_newest_signs_all_verify():
    old, new = generate_key(), generate_key()
    before = SigningKeys(old)
    token = issue_access(before, 7, SID, ttl=60)
    after = SigningKeys(f"{new},{old}")
    assert verify_access(after, token).account_id == 7  # an old token still verifies
    fresh = issue_access(after, 8, SID, ttl=60)
    assert jwt.get_unverified_header(fresh)["kid"] == key_id(new)  # the newest signs
    with pytest.raises(TokenError, match="unknown key"):
        verify_access(SigningKeys(new), token)  # a retired key's tokens stop verifying
    assert old not in repr(after) and new not in repr(after)
    # Claims are checked too: another issuer, with a valid signature, is refused.
    now = int(time.time())
    wrong_issuer = after.sign(
        {"iss": "someone", "aud": ACCESS_AUDIENCE, "sub": "7", "sid": SID, "iat": now,
         "exp": now + 60}
    )  # fmt: skip
    with pytest.raises(TokenError):
        verify_access(after, wrong_issuer)
    assert ISSUER != "someone"


async def test_refresh_rotates_and_a_reused_token_ends_the_session(web_server, http):
    client = Client(http, web_server)
    await client.register(new_email(), PASSWORD)
    first_refresh, first_access = client.refresh, client.access

    status, tokens = await client.call(
        "POST", "/api/auth/refresh", json={"refresh_token": first_refresh}, token=""
    )
    assert status == 200, tokens
    assert tokens["refresh_token"] != first_refresh
    client.keep(tokens)
    status, _ = await client.call("GET", "/api/auth/me")
    assert status == 200

    # The old refresh token again: refused, and the session it belongs to is ended (it leaked).
    status, body = await client.call(
        "POST", "/api/auth/refresh", json={"refresh_token": first_refresh}, token=""
    )
    assert status == 401 and "already used" in body["error"]["message"]
    for access in (client.access, first_access):
        status, _ = await client.call("GET", "/api/auth/me", token=access)
        assert status == 401
    status, _ = await client.call(
        "POST", "/api/auth/refresh", json={"refresh_token": client.refresh}, token=""
    )
    assert status == 401
    status, _ = await client.call(
        "POST", "/api/auth/refresh", json={"refresh_token": "made-up"}, token=""
    )
    assert status == 401


async def test_logout_revokes_access_and_refresh(web_server, http):
    email = new_email()
    client = Client(http, web_server)
    await client.register(email, PASSWORD)
    other = Client(http, web_server)  # another session of the same account
    assert (await other.login(email, PASSWORD))[0] == 200

    status, _ = await client.call("POST", "/api/auth/logout")
    assert status == 204
    status, _ = await client.call("GET", "/api/auth/me")
    assert status == 401
    status, _ = await client.call(
        "POST", "/api/auth/refresh", json={"refresh_token": client.refresh}, token=""
    )
    assert status == 401
    status, _ = await other.call("GET", "/api/auth/me")  # only that session ended
    assert status == 200


async def test_behind_a_trusted_proxy_each_client_has_its_own_login_limit(start_web, http):
    """X-Forwarded-For names the client only when the peer is a trusted proxy: browsers behind
    the proxy do not share its address (and its limit), and nobody else can claim one."""
    proxied = await start_web(web_login_ip_limit=2, web_trusted_proxies=["127.0.0.1/32"])
    client = Client(http, proxied)

    async def fail(forwarded_for: str) -> int:
        status, _ = await client.call(
            "POST",
            "/api/auth/login",
            data={"username": new_email(), "password": "wrong password"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return status

    assert [await fail("203.0.113.5") for _ in range(3)] == [401, 401, 429]
    assert await fail("203.0.113.6") == 401  # another browser behind the same proxy
    assert await fail("203.0.113.5, 127.0.0.1") == 429  # a hop the proxy chain added
    direct = await start_web(web_login_ip_limit=2)  # no trusted proxy: the header is ignored
    client = Client(http, direct)
    statuses = [await fail(f"198.51.100.{n}") for n in range(3)]
    assert statuses == [401, 401, 429]
