"""Two tenants' bots in one process (the future dense mode): each sees only its own data."""

from __future__ import annotations

from tests.client.conftest import fetch


async def test_two_tenants_in_one_process(bot_factory):
    first = await bot_factory()
    second = await bot_factory()
    await second.store.update_business(
        name="Барбершоп «Борода»", welcome_text="Привет, это «Борода»!"
    )
    second.app.ctx.refresh()

    anna = first.customer(601, "Анна")
    boris = second.customer(601, "Борис")  # the same Telegram user in both bots
    assert "Ромашка" in (await anna.ask("/start", "Добро пожаловать")).plain_text
    assert "Борода" in (await boris.ask("/start", "Привет, это «Борода»!")).plain_text

    assert [
        r["first_name"] for r in await fetch(first.tenant.dsn, "SELECT first_name FROM customers")
    ] == ["Анна"]
    assert [
        r["first_name"] for r in await fetch(second.tenant.dsn, "SELECT first_name FROM customers")
    ] == ["Борис"]
