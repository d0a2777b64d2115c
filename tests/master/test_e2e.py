"""End to end: the API provisions a tenant, the real client bot starts as a process and answers."""

from __future__ import annotations

import time

from tests.master.conftest import Harness
from tests.master.procs import processes_of

CUSTOMER = 424242


async def test_provisioned_client_bot_answers_start(make_harness) -> None:
    harness: Harness = await make_harness(module="client_bot")
    token = await harness.new_bot("romashka_salon_bot")
    started = time.perf_counter()
    reply = await harness.api.provision(token, business_name="Салон Ромашка")
    assert reply.status == 201, reply.body
    tid = reply.body["tenant_id"]

    await harness.tg.send_message(token, CUSTOMER, "/start", first_name="Анна")
    try:
        answer = await harness.tg.wait_for_message(token, CUSTOMER, timeout=40)
    except TimeoutError:
        log = (harness.clients_dir / tid / "bot.log").read_text(errors="replace")
        raise AssertionError(
            f"the client bot did not answer /start; its log:\n{log[-3000:]}"
        ) from None
    latency = time.perf_counter() - started
    assert answer.plain_text
    print(f"provisioning -> /start answered in {latency:.2f}s")
    assert len(processes_of(tid)) == 1
    # no secret in the tenant's folder, the bot's own log included
    secret = token.split(":", 1)[1]
    for path in (harness.clients_dir / tid).rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path.name
