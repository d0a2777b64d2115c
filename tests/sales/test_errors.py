"""An exception in a sales bot handler never leaves the owner in silence: a short "something
went wrong" in their language, and a pressed button is answered too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from sales_bot.plans import Catalog
from sales_bot.store import SalesStore
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop
from tests.sales.people import Person


async def unreachable_store(pg_dsn: str) -> SalesStore:
    """A store whose pool is closed: every query fails as with a database that went away."""
    pool = await asyncpg.create_pool(pg_dsn, min_size=0, max_size=1)
    await pool.close()
    return SalesStore(pool)


class BrokenCatalog(Catalog):
    def __init__(self) -> None:
        pass

    def get(self, plan_id: str) -> None:
        raise RuntimeError("the catalog is broken")


async def test_a_failing_command_tells_the_owner_in_russian(
    make_shop: Callable[..., Awaitable[Shop]], pg_dsn: str
) -> None:
    shop = await make_shop(polling=True)
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    await owner.ask("/start", "Botfleet")
    shop.app.ctx.store = await unreachable_store(pg_dsn)  # what handlers get as `ctx`
    reply = await owner.ask("/subscription", "Что-то пошло не так")
    assert "попробуйте ещё раз" in reply.plain_text


async def test_an_english_speaker_is_told_in_english(
    make_shop: Callable[..., Awaitable[Shop]], pg_dsn: str
) -> None:
    shop = await make_shop(polling=True)
    owner = Person(shop.tg, SALES_TOKEN, OWNER + 1, language="en")
    shop.app.ctx.store = await unreachable_store(pg_dsn)  # what handlers get as `ctx`
    reply = await owner.ask("/subscription", "Something went wrong")
    assert "please try again" in reply.plain_text


async def test_a_failing_button_is_answered_and_the_owner_told(
    make_shop: Callable[..., Awaitable[Shop]],
) -> None:
    shop = await make_shop(polling=True)
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    home = await owner.ask("/start", "Botfleet")
    plans = await owner.press(home, "🛒 Купить бота", "Выберите тариф")
    shop.app.ctx.catalog = BrokenCatalog()
    before = await owner.seen()
    alert = await owner.press_for_alert(plans, plans.buttons()[1][0])
    assert "Что-то пошло не так" in alert
    told = await owner.wait("Что-то пошло не так", after=before)
    assert "попробуйте ещё раз" in told.plain_text


async def test_a_flood_from_one_user_is_cut_off_politely(
    make_shop: Callable[..., Awaitable[Shop]],
) -> None:
    """Anyone can write to the sales bot: one user's burst gets one "too many requests" and
    no more answers (the shared runtime's throttling, core/runtime.py), while another owner is
    served at the same time."""
    shop = await make_shop(polling=True)
    flooder, other = Person(shop.tg, SALES_TOKEN, OWNER + 7), Person(shop.tg, SALES_TOKEN, OWNER)
    for _ in range(30):
        await shop.tg.send_message(SALES_TOKEN, flooder.id, "/start", first_name="Flood")
    await flooder.wait("Слишком много запросов")
    assert "Botfleet" in (await other.ask("/start", "Botfleet")).plain_text
    for _ in range(50):  # the handled ones may still be answering (updates run as tasks)
        messages = await shop.tg.messages(SALES_TOKEN, flooder.id)
        answers = [m for m in messages if "Botfleet" in m.plain_text]
        if len(answers) >= 20:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # nothing more comes
    messages = await shop.tg.messages(SALES_TOKEN, flooder.id)
    warnings = [m for m in messages if "Слишком много запросов" in m.plain_text]
    answers = [m for m in messages if "Botfleet" in m.plain_text]
    assert len(warnings) == 1 and len(answers) == 20  # 20 per 10 s, then one warning
    assert await shop.app.redis.get(f"sales:throttle:{flooder.id}") is not None
