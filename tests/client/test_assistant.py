"""The AI sales assistant, end to end: a real client bot (aiogram, real HTTP) against the Telegram
emulator, PostgreSQL and Redis, and the real `openai` SDK against a local OpenAI-compatible
server scripted per test. Assertions are on what the customer and the admins see, what the
model was sent, and what is in the database.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from openai_emulator import OpenAIEmulator
from tests.client.conftest import ADMIN, T0, Customer, fetch

ROOT = Path(__file__).resolve().parents[2]
FALLBACK = "Извините, сейчас не могу ответить"


@pytest.fixture
async def model():
    emulator = OpenAIEmulator(api_key="test-key")
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def ai_bot(bot_factory, model):
    async def start(admin_ids=(ADMIN,), **settings):
        config = {
            "openai_api_key": "test-key",
            "openai_base_url": model.base_url,
            "openai_model": "gpt-test",
            "openai_timeout": 5,
            "openai_retry_delay": 0.01,
            **settings,
        }
        return await bot_factory(settings=config, admin_ids=admin_ids)

    return start


async def ai_messages(bot, customer_id):
    rows = await fetch(
        bot.tenant.dsn,
        "SELECT role, content FROM ai_messages WHERE customer_id = $1 ORDER BY id",
        customer_id,
    )
    return [(r["role"], r["content"]) for r in rows]


async def admin_note(bot, contains, *, count=1):
    return await bot.client.wait_for_message(
        bot.token, ADMIN, contains=contains, timeout=10, count=count
    )


# --- booking through tools ----------------------------------------------------------------------
async def test_tool_calls_find_a_slot_and_book_it(ai_bot, model):
    bot = await ai_bot()
    await bot.admin()
    haircut = (await bot.store.services())[0]
    anna = bot.customer(201)
    model.call_tools(("find_free_slots", {"service": haircut.id, "date": "2026-12-02"}))
    model.call_tools(
        ("create_booking", {"service": haircut.id, "slot": "2026-12-02T10:00", "name": "Анна",
                            "phone": "8 900 123-45-67"}),
    )  # fmt: skip
    model.reply("Готово! Записала вас на стрижку в среду, 2 декабря, в 10:00.")

    answer = await anna.ask("Хочу подстричься завтра в 10, я Анна, 89001234567", "Готово!")
    assert answer.plain_text == "Готово! Записала вас на стрижку в среду, 2 декабря, в 10:00."

    rows = await fetch(bot.tenant.dsn, "SELECT * FROM bookings")
    assert len(rows) == 1
    booking = rows[0]
    assert booking["customer_id"] == 201 and booking["phone"] == "+79001234567"
    assert booking["customer_name"] == "Анна" and booking["source"] == "assistant"
    assert booking["starts_at"] == T0 + timedelta(days=1, hours=1)  # 10:00 MSK on 2 Dec
    reminders = await fetch(bot.tenant.dsn, "SELECT offset_min FROM reminders ORDER BY 1")
    assert [r["offset_min"] for r in reminders] == [120, 1440]  # the menu flow's path
    note = await admin_note(bot, "Новая запись")
    assert "Стрижка" in note.plain_text and "+79001234567" in note.plain_text
    assert "ИИ-ассистент" in note.plain_text

    first, second, third = await model.wait_for_chat(3)
    assert first.body["model"] == "gpt-test"
    assert set(first.tool_names) == {
        "list_services", "find_free_slots", "create_booking", "cancel_booking", "register_lead",
        "request_human",
    }  # fmt: skip
    system = first.system
    assert "Салон «Ромашка»" in system and "Москва, ул. Ленина, 1" in system
    assert f"{haircut.id} · Стрижка · 1500 ₽ · 60 min · Мужская и женская" in system
    assert "Mon: 10:00–19:00 (break 13:00–14:00)" in system and "Sun: closed" in system
    assert "Tue 2026-12-01 09:00" in system  # now, in the business's time zone
    assert first.messages[-1] == {
        "role": "user",
        "content": "Хочу подстричься завтра в 10, я Анна, 89001234567",
    }
    [slots] = second.tool_results()
    assert slots["free_times"][:3] == ["10:00", "10:30", "11:00"]
    assert "13:00" not in slots["free_times"] and "18:00" in slots["free_times"]
    booked = third.tool_results()[-1]  # the request carries every tool result of the turn
    assert booked["ok"] is True and booked["booking_id"] == booking["id"]
    assert booked["starts_at"] == "2026-12-02 10:00"

    # The conversation is stored; the customer saw "typing…" while waiting.
    assert await ai_messages(bot, 201) == [
        ("user", "Хочу подстричься завтра в 10, я Анна, 89001234567"),
        ("assistant", "Готово! Записала вас на стрижку в среду, 2 декабря, в 10:00."),
    ]
    actions = await bot.client.chat_actions(bot.token, 201)
    assert "typing" in {a.action for a in actions}


async def test_invalid_tool_arguments_go_back_to_the_model(ai_bot, model):
    bot = await ai_bot()
    haircut = (await bot.store.services())[0]
    # Someone else's booking: the model must not be able to touch it.
    await bot.store.touch_customer(999, "Чужой", None, None)
    other = await bot.store.create_booking(
        customer_id=999, service=haircut, starts_at=T0 + timedelta(days=2, hours=1),
        customer_name="Чужой", phone="+79990000000",
    )  # fmt: skip
    anna = bot.customer(202)
    model.call_tools(
        ("create_booking", {"service": haircut.id, "slot": "завтра утром", "name": "",
                            "phone": "позвоните мне"}),
        ("find_free_slots", "{not json"),
        ("drop_all_tables", {}),
        ("cancel_booking", {"booking_id": other.id}),
        ("find_free_slots", {"service": "Массаж", "date": "2026-12-02"}),
        ("find_free_slots", {"service": haircut.id, "date": "2027-06-01"}),
        ("create_booking", {"service": haircut.id, "slot": "2026-12-02T13:00", "name": "Анна",
                            "phone": "+79001112233"}),
        ("create_booking", {"service": haircut.id, "slot": "2026-12-02T10:00", "name": "Анна",
                            "phone": "+79001112233", "customer_id": 999}),
    )  # fmt: skip
    model.reply("Уточните, пожалуйста, время и телефон.")

    answer = await anna.ask("запиши меня", "Уточните")
    assert answer.plain_text == "Уточните, пожалуйста, время и телефон."
    _first, second = await model.wait_for_chat(2)
    results = second.tool_results()
    assert len(results) == 8 and all(r["ok"] is False for r in results)
    bad_args, bad_json, unknown, foreign, no_service, far, in_break, smuggled = (
        r["error"] for r in results
    )
    assert "slot" in bad_args and "name" in bad_args and "phone" in bad_args
    assert "позвоните мне" not in bad_args  # the input is not echoed back
    assert "not valid JSON" in bad_json
    assert "unknown tool" in unknown
    assert "no booking with this number" in foreign
    assert "no such service" in no_service
    assert "between 2026-12-01 and 2026-12-30" in far
    assert "cannot be booked (in_break)" in in_break and "10:00" in in_break
    assert "customer_id" in smuggled and "Extra inputs are not permitted" in smuggled
    # Nothing changed: no new booking, the other customer's booking is still confirmed.
    rows = await fetch(bot.tenant.dsn, "SELECT id, status FROM bookings")
    assert [(r["id"], r["status"]) for r in rows] == [(other.id, "confirmed")]


async def test_cancel_through_the_assistant_follows_the_rules(ai_bot, model):
    bot = await ai_bot()
    await bot.admin()
    haircut = (await bot.store.services())[0]
    await bot.store.touch_customer(203, "Анна", None, None)
    soon = await bot.store.create_booking(
        customer_id=203, service=haircut, starts_at=T0 + timedelta(hours=1, minutes=30),
        customer_name="Анна", phone="+79001234567",
    )  # fmt: skip
    later = await bot.store.create_booking(
        customer_id=203, service=haircut, starts_at=T0 + timedelta(days=3, hours=1),
        customer_name="Анна", phone="+79001234567",
    )  # fmt: skip
    anna = bot.customer(203)
    model.call_tools(("cancel_booking", {"booking_id": soon.id}))
    model.call_tools(("cancel_booking", {"booking_id": later.id}))
    model.reply("Отменила запись на пятницу.")
    await anna.ask("отмените мои записи", "Отменила")
    first, second, third = await model.wait_for_chat(3)
    # The customer's own bookings are in the prompt, so the model knows their numbers.
    assert f"#{soon.id} · Стрижка · Tue 2026-12-01 10:30" in first.system
    assert f"#{later.id} · Стрижка · Fri 2026-12-04 10:00" in first.system
    assert "too late to cancel online" in second.tool_results()[0]["error"]
    assert third.tool_results()[-1] == {"ok": True, "booking_id": later.id, "status": "cancelled"}
    rows = await fetch(bot.tenant.dsn, "SELECT id, status FROM bookings ORDER BY id")
    assert [(r["id"], r["status"]) for r in rows] == [
        (soon.id, "confirmed"),
        (later.id, "cancelled"),
    ]
    await admin_note(bot, f"Клиент отменил запись №{later.id}")


# --- leads ------------------------------------------------------------------------------------------
async def test_a_second_lead_within_five_minutes_updates_the_first(ai_bot, model):
    bot = await ai_bot(admin_ids=(ADMIN, ADMIN + 1))
    owner, partner = await bot.admin(), await bot.admin(ADMIN + 1)
    anna = bot.customer(204)
    model.call_tools(
        ("register_lead", {"name": "Анна", "phone": "+7 900 555-44-33", "interest": "окрашивание"})
    )
    model.reply("Спасибо! Менеджер перезвонит вам сегодня.")
    await anna.ask("Хочу окрашивание, перезвоните мне: +7 900 555-44-33", "Менеджер перезвонит")
    first_note = await admin_note(bot, "Новый лид")
    assert "Анна" in first_note.plain_text and "+79005554433" in first_note.plain_text
    assert "окрашивание" in first_note.plain_text
    assert first_note.buttons() == [["🙋 Взять"]]

    bot.clock.advance(timedelta(minutes=3))
    model.call_tools(
        ("register_lead", {"name": "Анна", "phone": "+7 900 555-44-33", "comment": "после 18:00"})
    )
    model.reply("Передала: позвоним после 18:00.")
    await anna.ask("Лучше после 18:00", "после 18:00")
    updated = await admin_note(bot, "Лид обновлён")
    assert "после 18:00" in updated.plain_text and "окрашивание" in updated.plain_text
    leads = await fetch(bot.tenant.dsn, "SELECT * FROM leads")
    assert len(leads) == 1
    assert leads[0]["comment"] == "после 18:00" and leads[0]["interest"] == "окрашивание"
    assert leads[0]["status"] == "new" and leads[0]["customer_id"] == 204
    # The second turn's history holds no tool messages of the first: one result here.
    assert model.chat_requests[3].tool_results() == [
        {"ok": True, "lead_id": leads[0]["id"], "updated_existing": True}
    ]

    bot.clock.advance(timedelta(minutes=6))
    model.call_tools(("register_lead", {"name": "Анна", "phone": "+79005554433",
                                        "interest": "стрижка"}))  # fmt: skip
    model.reply("Записала ещё одну заявку.")
    await anna.ask("И ещё стрижку хочу", "ещё одну заявку")
    assert len(await fetch(bot.tenant.dsn, "SELECT id FROM leads")) == 2

    # The "take it" button: the first admin to press gets the lead, the other is told.
    await owner.click(first_note, "🙋 Взять")
    taken = await owner.wait("Вы взяли лид")
    assert "+79005554433" in taken.plain_text
    row = (await fetch(bot.tenant.dsn, "SELECT * FROM leads WHERE id = $1", leads[0]["id"]))[0]
    assert row["status"] == "in_work" and row["taken_by"] == ADMIN
    partners_note = next(
        m for m in await bot.client.messages(bot.token, ADMIN + 1) if "Новый лид" in m.plain_text
    )
    query = await partner.click(partners_note, "🙋 Взять")
    answer = await bot.client.wait_for_callback_answer(bot.token, query)
    assert f"уже в работе (администратор {ADMIN})" in answer.text


async def test_admin_lists_leads_changes_status_and_exports_csv(ai_bot, model):
    bot = await ai_bot()
    owner = await bot.admin()
    for user_id, name in ((205, "Анна"), (206, '=HYPERLINK("x")')):
        await bot.store.assistant.save_lead(
            customer_id=user_id, name=name, phone="+79001234567", interest="окрашивание",
            comment="", now=bot.clock.now(),
        )  # fmt: skip
    panel = await owner.ask("/admin", "Панель управления")
    assert ["🔥 Лиды", "🤖 Ассистент"] in panel.buttons()
    leads = await owner.press(panel, "🔥 Лиды", "Лиды: 2")
    assert "Анна" in leads.plain_text and "новый" in leads.plain_text
    button = next(b for row in leads.buttons() for b in row if "Анна" in b)
    card = await owner.press(leads, button, "Лид #")
    assert "окрашивание" in card.plain_text
    won = await owner.press(card, "✅ выигран", "Статус: выигран")
    assert won.buttons()[0] == ["🆕 новый", "⏳ в работе", "✖️ проигран"]
    statuses = await fetch(bot.tenant.dsn, "SELECT customer_id, status, taken_by FROM leads")
    assert {(r["customer_id"], r["status"], r["taken_by"]) for r in statuses} == {
        (205, "won", ADMIN), (206, "new", None),
    }  # fmt: skip

    leads = await owner.press(panel, "🔥 Лиды", "Лиды: 2")
    before = await owner.seen()
    await owner.click(leads, "📄 CSV")
    document = await owner.wait("Лиды: 2", after=before)
    assert document.document is not None and document.document["file_name"] == "leads.csv"
    data = await bot.client.download(bot.token, document.document["file_id"])
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Номер;Создан;Имя;Телефон")
    assert any(";Анна;+79001234567;окрашивание;;выигран;" in line for line in lines)
    assert any("'=HYPERLINK" in line for line in lines)  # no formula injection


# --- resilience and cost ----------------------------------------------------------------------------
async def test_a_429_is_retried_after_its_retry_after(ai_bot, model):
    bot = await ai_bot()
    anna = bot.customer(207)
    model.fail(429, retry_after=0.2)
    model.reply("Здравствуйте! Чем помочь?")
    await anna.ask("Здравствуйте", "Чем помочь?")
    assert len(model.chat_requests) == 2
    assert await ai_messages(bot, 207) == [
        ("user", "Здравствуйте"),
        ("assistant", "Здравствуйте! Чем помочь?"),
    ]


async def test_repeated_500s_end_in_a_polite_fallback_and_the_message_is_kept(ai_bot, model):
    bot = await ai_bot()
    anna = bot.customer(208)
    model.fail(500, times=3)
    answer = await anna.ask("Сколько стоит стрижка?", FALLBACK)
    assert answer.buttons() == [["💇 Услуги", "📅 Записаться"], ["🗂 Мои записи", "📍 Контакты"]]
    assert len(model.chat_requests) == 3  # the first try and two retries
    assert await ai_messages(bot, 208) == [("user", "Сколько стоит стрижка?")]
    usage = await fetch(bot.tenant.dsn, "SELECT requests, prompt_tokens FROM ai_usage")
    assert [(r["requests"], r["prompt_tokens"]) for r in usage] == [(0, 0)]
    # The next message works again, and the model sees the unanswered one in the history.
    model.reply("Стрижка — 1500 ₽.")
    await anna.ask("Алло?", "1500 ₽")
    last = model.chat_requests[-1]
    assert [m["content"] for m in last.messages[1:]] == ["Сколько стоит стрижка?", "Алло?"]


async def test_daily_token_budget_and_per_customer_rate_limit(ai_bot, model):
    bot = await ai_bot(assistant_daily_tokens=1000, assistant_rate_limit=3)
    anna, boris = bot.customer(209), bot.customer(210)
    model.reply("Ответ первый.", prompt_tokens=900, completion_tokens=200)
    await anna.ask("Вопрос", "Ответ первый.")
    redis = Redis.from_url(bot.tenant.redis_url)
    try:
        key = f"{bot.settings.redis_key_prefix}ai:tokens:2026-12-01"
        assert await redis.get(key) == b"1100"
        assert 0 < await redis.ttl(key) <= 2 * 86400
    finally:
        await redis.aclose()
    refusal = await boris.ask("А у вас есть парковка?", "отдыхает до завтра")
    assert "+7 495 000-00-00" in refusal.plain_text  # the business's phone instead
    assert len(model.chat_requests) == 1  # the model was not called
    assert await ai_messages(bot, 210) == [("user", "А у вас есть парковка?")]  # kept
    usage = await fetch(bot.tenant.dsn, "SELECT * FROM ai_usage")
    assert [(r["requests"], r["prompt_tokens"], r["completion_tokens"]) for r in usage] == [
        (1, 900, 200)
    ]

    # A new day, a new budget; the per-customer flood limit still applies.
    bot.clock.advance(timedelta(days=1))
    vera = bot.customer(219)
    for i in range(3):
        model.reply(f"Ответ {i}.", prompt_tokens=10, completion_tokens=10)
        await vera.ask(f"Вопрос {i}", f"Ответ {i}.")
    await vera.ask("Ещё вопрос", "быстрее, чем я успеваю отвечать")
    assert len(model.chat_requests) == 4


async def test_history_is_the_last_20_messages_of_this_customer(ai_bot, model):
    bot = await ai_bot()
    for i in range(30):
        await bot.store.assistant.add_message(211, "user" if i % 2 == 0 else "assistant", f"m{i}")
    await bot.store.assistant.add_message(212, "user", "чужое сообщение")
    model.reply("Ок.")
    await bot.customer(211).ask("новое", "Ок.")
    [request] = await model.wait_for_chat(1)
    history = request.messages[1:]
    assert len(history) == 20
    assert [m["content"] for m in history] == [f"m{i}" for i in range(11, 30)] + ["новое"]
    assert "чужое сообщение" not in str(request.body)


# --- voice ------------------------------------------------------------------------------------------
def ogg_page(packet: bytes, *, sequence: int, granule: int, flags: int) -> bytes:
    """One Ogg page holding one packet (RFC 3533), with its CRC."""
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = b"OggS" + struct.pack("<BBqIII", 0, flags, granule, 0x5EED, sequence, 0)
    page = header + bytes([len(segments), *segments]) + packet
    crc = 0
    for byte in page:  # CRC-32 with polynomial 0x04C11DB7, no reflection
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return page[:22] + struct.pack("<I", crc) + page[26:]


def small_ogg_opus() -> bytes:
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    silence = bytes([0xF8, 0xFF, 0xFE])  # a 20 ms frame of silence
    return (
        ogg_page(head, sequence=0, granule=0, flags=2)
        + ogg_page(tags, sequence=1, granule=0, flags=0)
        + ogg_page(silence * 50, sequence=2, granule=48000, flags=4)
    )


async def test_a_voice_message_is_transcribed_quoted_and_answered(ai_bot, model):
    bot = await ai_bot()
    audio = small_ogg_opus()
    assert audio.startswith(b"OggS") and audio.count(b"OggS") == 3  # three Ogg pages
    model.transcript("Сколько стоит окрашивание?")
    model.reply("Окрашивание стоит 4000 ₽ и длится 2 часа.")
    anna = Customer(bot.client, bot.token, 213, "Анна")
    before = await anna.seen()
    await bot.client.send_voice(bot.token, 213, audio, duration=1, first_name="Анна")
    quote = await anna.wait("🎙", after=before)
    assert quote.plain_text == "🎙 Сколько стоит окрашивание?"
    assert "<blockquote>" in (quote.text or "")
    answer = await anna.wait("4000 ₽", after=before)
    assert answer.plain_text == "Окрашивание стоит 4000 ₽ и длится 2 часа."
    [heard] = model.transcription_requests
    assert heard.model == "whisper-1" and heard.data == audio
    [request] = model.chat_requests
    assert request.messages[-1] == {"role": "user", "content": "Сколько стоит окрашивание?"}
    assert await ai_messages(bot, 213) == [
        ("user", "Сколько стоит окрашивание?"),
        ("assistant", "Окрашивание стоит 4000 ₽ и длится 2 часа."),
    ]
    assert "typing" in {a.action for a in await bot.client.chat_actions(bot.token, 213)}


async def test_a_voice_message_over_the_download_limit_gets_a_clear_answer(
    ai_bot, model, monkeypatch
):
    from client_bot.handlers import assistant as handler

    monkeypatch.setattr(handler, "MAX_VOICE_BYTES", 100)  # instead of sending 20 MB
    bot = await ai_bot()
    anna = Customer(bot.client, bot.token, 214, "Анна")
    before = await anna.seen()
    await bot.client.send_voice(bot.token, 214, small_ogg_opus(), duration=1)
    await anna.wait("больше 20 МБ", after=before)
    assert model.transcription_requests == [] and model.chat_requests == []


# --- human handoff ----------------------------------------------------------------------------------
async def test_handoff_to_a_person_and_back(ai_bot, model):
    bot = await ai_bot()
    owner = await bot.admin()
    anna = bot.customer(215)
    model.call_tools(("request_human", {"reason": "хочет поговорить с администратором"}))
    model.reply("Позвала администратора, он ответит прямо здесь.")
    await anna.ask("Позовите живого человека", "Позвала администратора")
    call = await admin_note(bot, "просит человека")
    assert "Позовите живого человека" in call.plain_text
    assert "хочет поговорить с администратором" in call.plain_text
    assert call.buttons() == [["✍️ Ответить"], ["🤖 Вернуть ассистенту"]]

    # The assistant is silent now: the customer's words go to the admins.
    before = await anna.seen()
    await anna.send("Алло, вы тут?")
    relayed = await admin_note(bot, "Алло, вы тут?")
    assert "Анна" in relayed.plain_text
    assert await anna.seen() == before and len(model.chat_requests) == 2

    await owner.press(call, "✍️ Ответить", "Напишите ответ клиенту")
    done = await owner.ask("Здравствуйте, это Мария. Чем помочь?", "Доставлено")
    assert done.buttons() == [["✍️ Ответить"], ["🤖 Вернуть ассистенту"]]
    reply = await anna.wait("это Мария", after=before)
    assert reply.plain_text == "👤 Здравствуйте, это Мария. Чем помочь?"

    await owner.press(done, "🤖 Вернуть ассистенту", "Ассистент снова отвечает")
    await anna.wait("Спасибо за ожидание", after=before)
    assert await fetch(bot.tenant.dsn, "SELECT * FROM ai_handoffs") == []
    model.reply("Конечно, подскажу!")
    await anna.ask("Спасибо, а можно ещё вопрос?", "Конечно, подскажу!")
    last = model.chat_requests[-1]
    contents = [m["content"] for m in last.messages[1:]]
    assert contents[-3:] == [
        "Алло, вы тут?",
        "(a human manager wrote) Здравствуйте, это Мария. Чем помочь?",
        "Спасибо, а можно ещё вопрос?",
    ]
    assert ("staff", "Здравствуйте, это Мария. Чем помочь?") in await ai_messages(bot, 215)


# --- on, off and settings -----------------------------------------------------------------------------
async def test_without_a_key_the_assistant_is_off_and_free_text_gets_the_menu(bot_factory, model):
    bot = await bot_factory()
    assert bot.app.assistant is None
    owner = await bot.admin()
    anna = bot.customer(216)
    await anna.ask("Сколько стоит стрижка?", "Лучше всего я понимаю кнопки меню")
    before = await anna.seen()
    await bot.client.send_voice(bot.token, 216, small_ogg_opus(), duration=1)
    await anna.wait("Лучше всего я понимаю кнопки меню", after=before)
    assert model.chat_requests == [] and model.transcription_requests == []
    panel = await owner.ask("/admin", "Панель управления")
    screen = await owner.press(panel, "🤖 Ассистент", "ИИ-ассистент")
    assert "не подключён" in screen.plain_text
    assert not any("Выключить" in b for row in screen.buttons() for b in row)


def test_the_openai_sdk_is_not_imported_by_a_bot_without_a_key():
    code = (
        "import sys, client_bot.app, client_bot.handlers.admin, client_bot.assistant;"
        "sys.exit('openai' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


async def test_admin_sets_faq_and_tone_and_switches_the_assistant_off(ai_bot, model):
    bot = await ai_bot()
    owner = await bot.admin()
    panel = await owner.ask("/admin", "Панель управления")
    screen = await owner.press(panel, "🤖 Ассистент", "ИИ-ассистент")
    assert "включён" in screen.plain_text
    await owner.press(screen, "✏️ FAQ", "Пришлите FAQ")
    screen = await owner.ask(
        "Парковка: бесплатная во дворе.\nОплата: картой или наличными.", "Сохранено"
    )
    await owner.press(screen, "✏️ Тон", "Как ассистенту общаться")
    screen = await owner.ask("на «вы», коротко и без эмодзи", "Сохранено")
    assert "Парковка: бесплатная во дворе." in screen.plain_text

    model.reply("Да, парковка бесплатная во дворе.")
    await bot.customer(217).ask("Есть парковка?", "парковка бесплатная")
    system = model.chat_requests[-1].system
    assert "## FAQ (from the business)\nПарковка: бесплатная во дворе.\nОплата: картой" in system
    assert "Tone: на «вы», коротко и без эмодзи." in system

    screen = await owner.press(screen, "⏸ Выключить", "Ассистент выключен")
    assert "выключен" in screen.plain_text
    await bot.customer(217).ask("А в субботу работаете?", "Лучше всего я понимаю кнопки меню")
    assert len(model.chat_requests) == 1
    await owner.press(screen, "▶️ Включить", "Ассистент включён")
    model.reply("Да, в субботу с 10 до 19.")
    await bot.customer(217).ask("А в субботу работаете?", "в субботу с 10 до 19")


async def test_a_message_the_model_writes_is_shown_as_plain_text(ai_bot, model):
    bot = await ai_bot()
    model.reply('<b>Жирный</b> & <a href="tg://x">ссылка</a>')
    answer = await bot.customer(218).ask("привет", "Жирный")
    assert answer.plain_text == '<b>Жирный</b> & <a href="tg://x">ссылка</a>'
    assert not answer.entities


async def test_conversations_older_than_the_retention_are_deleted(ai_bot, model):
    bot = await ai_bot(assistant_history_days=30)
    anna = bot.customer(219)
    model.reply("Здравствуйте! Чем помочь?")
    await anna.ask("Давний вопрос", "Чем помочь")
    await fetch(bot.tenant.dsn, "UPDATE ai_messages SET created_at = now() - interval '31 days'")
    model.reply("Да, в субботу с 10 до 19.")
    await anna.ask("А в субботу работаете?", "в субботу с 10 до 19")

    assert await bot.app.housekeeping.tick() == 2  # the old question and its answer
    assert await ai_messages(bot, 219) == [
        ("user", "А в субботу работаете?"),
        ("assistant", "Да, в субботу с 10 до 19."),
    ]
    assert await bot.app.housekeeping.tick() == 0
