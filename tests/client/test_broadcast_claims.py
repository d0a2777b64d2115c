"""A broadcast claim takes exactly what it asks for, and a bot killed mid-broadcast and started
again delivers it to everyone exactly once (issue 12, observation 9).

PostgreSQL is made to choose the plan that broke the old claim: a nested-loop semi join that
re-runs the claim's `LIMIT … FOR UPDATE SKIP LOCKED` subquery per row, so that "claim 1" took
the whole list (set for the tenant's login role, so the bot itself runs with it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg

from client_bot.store import Store
from database.identifiers import quote_ident
from database.roles import login_role
from telegram_emulator import EmulatorClient, EmulatorServer
from telegram_emulator.state import UserRecord
from tests.client.conftest import ADMIN, RunningBot, fetch

# The planner settings under which `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP
# LOCKED)` claims every row (checked on PostgreSQL 15: 300 of 300 for "claim 1").
NESTED_LOOP = {
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "enable_material": "off",
    "enable_hashagg": "off",
    "enable_sort": "off",
    "enable_bitmapscan": "off",
}
FIRST_ID = 900_001
TEXT = "Мы открылись после ремонта!"


async def force_nested_loops(pg_dsn: str, tenant_id: str) -> None:
    """The tenant's sessions from now on plan semi joins as nested loops."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        role = quote_ident(login_role(tenant_id))
        for name, value in NESTED_LOOP.items():
            await conn.execute(f"ALTER ROLE {role} SET {name} = {value}")
    finally:
        await conn.close()


async def add_customers(
    server: EmulatorServer, bot: RunningBot, count: int, first: int = FIRST_ID
) -> list[int]:
    """`count` customers who started the bot (their chats exist in the emulator), in id order."""
    ids = list(range(first, first + count))
    record = server.state.bots[bot.token]
    for user_id in ids:
        server.state.ensure_chat(record, UserRecord(id=user_id, first_name=f"Клиент {user_id}"))
    conn = await asyncpg.connect(bot.tenant.dsn)
    try:
        await conn.executemany(
            "INSERT INTO customers (telegram_id, first_name) VALUES ($1, $2)",
            [(i, f"Клиент {i}") for i in ids],
        )
    finally:
        await conn.close()
    return ids


async def delivered(client: EmulatorClient, token: str, text: str = TEXT) -> Counter[int]:
    """How many times each chat got `text`, from the emulator's record of sendMessage."""
    counts: Counter[int] = Counter()
    for call in await client.calls(token, "sendMessage"):
        if call.ok and call.params.get("text") == text:
            counts[int(call.params["chat_id"])] += 1
    return counts


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def kill(bot: RunningBot) -> None:
    """What a kill -9 leaves behind, in process: polling stops at once (an update being handled
    inline is cancelled mid-way), handlers still running as tasks are cancelled, and so are the
    workers (a broadcast's send under way is the one thing allowed to finish)."""
    bot.task.cancel()  # its polling task (with the update being handled) and workers with it
    await asyncio.gather(bot.task, return_exceptions=True)
    await bot.app.close()


async def statuses(dsn: str) -> Counter[str]:
    rows = await fetch(dsn, "SELECT status FROM broadcast_recipients")
    return Counter(r["status"] for r in rows)


async def test_a_claim_takes_exactly_what_it_asks_for(make_tenant, pg_dsn):
    tenant = await make_tenant()
    await force_nested_loops(pg_dsn, tenant.tenant_id)
    pool = await asyncpg.create_pool(tenant.dsn, min_size=1, max_size=1)
    try:
        store = Store(pool)
        for user_id in range(FIRST_ID, FIRST_ID + 300):
            await store.touch_customer(user_id, "Клиент", None, None)
        broadcast_id = await store.create_broadcast(TEXT, ADMIN)
        assert await pool.fetchval("SHOW enable_hashjoin") == "off"

        assert await store.claim_recipients(broadcast_id, 1) == [FIRST_ID]
        assert await statuses(tenant.dsn) == {"pending": 299, "sending": 1}
        assert await store.claim_recipients(broadcast_id, 5) == list(
            range(FIRST_ID + 1, FIRST_ID + 6)
        )
        assert await statuses(tenant.dsn) == {"pending": 294, "sending": 6}
        # Given back: pending again, and the next claim takes it first.
        await store.release_recipient(broadcast_id, FIRST_ID)
        assert await store.claim_recipients(broadcast_id, 1) == [FIRST_ID]
        assert await statuses(tenant.dsn) == {"pending": 294, "sending": 6}
    finally:
        await pool.close()


async def test_a_bot_killed_mid_broadcast_delivers_to_everyone_once_after_a_restart(
    bot_factory, emulator, make_tenant, pg_dsn
):
    server, client = emulator
    bot = await bot_factory(broadcast_rate=100)
    await force_nested_loops(pg_dsn, bot.tenant.tenant_id)
    people = await add_customers(server, bot, 300)
    broadcast_id = await bot.store.create_broadcast(TEXT, ADMIN)
    bot.app.broadcasts.start(broadcast_id)

    async def some_sent() -> bool:
        return sum((await delivered(client, bot.token)).values()) >= 5

    await wait_for(some_sent, 15, "the first sends")
    await kill(bot)
    before = await delivered(client, bot.token)
    left = await statuses(bot.tenant.dsn)
    assert sum(before.values()) < 300, "killed mid-broadcast"
    assert left["pending"] == 300 - sum(before.values()), f"claimed but not sent: {left}"

    again = await bot_factory(tenant=bot.tenant, token=bot.token, seed=False, broadcast_rate=200)

    async def finished() -> bool:
        rows = await fetch(again.tenant.dsn, "SELECT status FROM broadcasts")
        return [r["status"] for r in rows] == ["done"]

    await wait_for(finished, 30, "the broadcast finished by the new process")
    after = await delivered(client, bot.token)
    assert {chat: after[chat] for chat in people} == dict.fromkeys(people, 1)
    assert set(after) == set(people), "nobody else got it"
    assert await statuses(again.tenant.dsn) == {"sent": 300}
