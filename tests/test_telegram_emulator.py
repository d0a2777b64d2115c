"""The Telegram emulator, driven by real aiogram bots (long polling and webhooks) and users."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router, html
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from telegram_emulator import EmulatorClient, EmulatorControlError, EmulatorServer

TOKEN_A = "1111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
TOKEN_B = "2222222:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
ALICE = 501
BOB = 502


class Pick(CallbackData, prefix="pick"):
    action: str
    n: int


def make_bot(base_url: str, token: str) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(base_url))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode="HTML"))


def build_router() -> Router:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        assert message.from_user is not None
        keyboard = InlineKeyboardBuilder()
        keyboard.button(text="Yes", callback_data=Pick(action="yes", n=1))
        keyboard.button(text="No", callback_data=Pick(action="no", n=2))
        name = html.quote(message.from_user.first_name)
        await message.answer(f"Hello, <b>{name}</b>!", reply_markup=keyboard.as_markup())

    @router.callback_query(Pick.filter())
    async def picked(query: CallbackQuery, callback_data: Pick) -> None:
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"You chose <i>{callback_data.action}</i> #{callback_data.n}")
        await query.answer("Saved")

    @router.message(Command("ping"))
    async def ping(message: Message) -> SendMessage:
        # Returned, not awaited: in webhook mode aiogram puts it into the webhook reply.
        return message.answer("pong")

    @router.message(F.voice)
    async def voice(message: Message, bot: Bot) -> None:
        assert message.voice is not None
        file = await bot.get_file(message.voice.file_id)
        assert file.file_path is not None
        buffer = await bot.download_file(file.file_path)
        assert buffer is not None
        data = buffer.read()
        digest = hashlib.sha256(data).hexdigest()
        await message.answer(f"voice {len(data)} bytes, {message.voice.duration}s, sha256={digest}")

    @router.message(F.text)
    async def echo(message: Message, bot: Bot) -> None:
        me = await bot.me()
        await message.answer(f"{me.username}: {html.quote(message.text or '')}")

    return router


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer()
    await server.start(port=0)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(emulator: EmulatorServer) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(emulator.base_url) as driver:
        await driver.register_bot(TOKEN_A, "alpha_bot", "Alpha")
        await driver.register_bot(TOKEN_B, "beta_bot", "Beta")
        yield driver


@pytest.fixture
async def bot_a(emulator: EmulatorServer, client: EmulatorClient) -> AsyncIterator[Bot]:
    bot = make_bot(emulator.base_url, TOKEN_A)
    try:
        yield bot
    finally:
        await bot.session.close()


PollingStarter = Callable[..., Awaitable[list[Bot]]]


@pytest.fixture
async def start_polling(
    emulator: EmulatorServer, client: EmulatorClient
) -> AsyncIterator[PollingStarter]:
    """Start one Dispatcher long-polling the given tokens; stopped at teardown."""
    running: list[tuple[Dispatcher, asyncio.Task[None]]] = []

    async def start(*tokens: str) -> list[Bot]:
        dp = Dispatcher()
        dp.include_router(build_router())
        bots = [make_bot(emulator.base_url, token) for token in tokens]
        task = asyncio.create_task(dp.start_polling(*bots, handle_signals=False))
        running.append((dp, task))
        for token in tokens:  # polling is really running once getUpdates arrives
            await client.wait_for_calls(token, "getUpdates")
        return bots

    yield start
    for dp, task in running:
        await dp.stop_polling()
        await asyncio.wait_for(task, 5)


async def bot_api(base_url: str, token: str, method: str, **params: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/bot{token}/{method}", json=params) as response,
    ):
        return response.status, await response.json()


# --------------------------------------------------------------------------- long polling


async def test_polling_bot_start_keyboard_click_edit_and_answer(
    client: EmulatorClient, start_polling: PollingStarter
) -> None:
    await start_polling(TOKEN_A)
    update = await client.send_message(TOKEN_A, ALICE, "/start", first_name="Alice <3")
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]

    greeting = await client.wait_for_message(TOKEN_A, ALICE, contains="Hello")
    assert greeting.text == "Hello, <b>Alice &lt;3</b>!"
    assert greeting.plain_text == "Hello, Alice <3!"
    assert greeting.buttons() == [["Yes", "No"]]
    assert greeting.button_data("No") == Pick(action="no", n=2).pack()

    with pytest.raises(EmulatorControlError, match="no button 'Maybe'"):
        await client.click(TOKEN_A, ALICE, greeting.message_id, text="Maybe")

    query_id = await client.click(TOKEN_A, ALICE, greeting.message_id, text="No")
    answer = await client.wait_for_callback_answer(TOKEN_A, query_id)
    assert answer.text == "Saved"
    assert answer.show_alert is False
    assert answer.data == "pick:no:2"

    edited = await client.wait_for_message(TOKEN_A, ALICE, contains="You chose no #2")
    assert edited.message_id == greeting.message_id
    assert edited.original_text == "Hello, Alice <3!"
    assert edited.edits == ["You chose no #2"]
    assert edited.reply_markup is None  # edit_text without markup drops the keyboard
    assert [m.message_id for m in await client.messages(TOKEN_A, ALICE)] == [2]

    # The keyboard is gone, so the same button can no longer be pressed.
    with pytest.raises(EmulatorControlError, match="no inline keyboard"):
        await client.click(TOKEN_A, ALICE, greeting.message_id, text="Yes")
    assert len(await client.callback_answers(TOKEN_A)) == 1


async def test_voice_from_user_is_downloadable_by_bot(
    client: EmulatorClient, start_polling: PollingStarter
) -> None:
    await start_polling(TOKEN_A)
    audio = bytes(range(256)) * 40 + b"OggS-tail"
    update = await client.send_voice(TOKEN_A, ALICE, audio, duration=3)
    assert update["message"]["voice"]["file_size"] == len(audio)

    reply = await client.wait_for_message(TOKEN_A, ALICE, contains="voice")
    assert reply.plain_text == (
        f"voice {len(audio)} bytes, 3s, sha256={hashlib.sha256(audio).hexdigest()}"
    )
    methods = [call.method for call in await client.calls(TOKEN_A) if call.method != "getUpdates"]
    assert methods == ["getMe", "getFile", "sendMessage"]


async def test_two_bots_and_two_users_do_not_see_each_other(
    client: EmulatorClient, start_polling: PollingStarter
) -> None:
    await start_polling(TOKEN_A, TOKEN_B)
    for token in (TOKEN_A, TOKEN_B):
        for user in (ALICE, BOB):
            await client.send_message(token, user, f"hi from {user}")

    for token, name in ((TOKEN_A, "alpha_bot"), (TOKEN_B, "beta_bot")):
        for user in (ALICE, BOB):
            await client.wait_for_message(token, user, contains="hi from")
            sent = await client.messages(token, user)
            assert [m.plain_text for m in sent] == [f"{name}: hi from {user}"]
            history = await client.history(token, user)
            assert [(m.message_id, m.outgoing) for m in history] == [(1, False), (2, True)]


# --------------------------------------------------------------------------- webhooks


async def test_webhook_secret_retry_and_reply_method(
    emulator: EmulatorServer, client: EmulatorClient, bot_a: Bot
) -> None:
    emulator.webhook_max_attempts = 1000  # keep retrying while we fix the secret below
    dp = Dispatcher()
    dp.include_router(build_router())
    app = web.Application()
    SimpleRequestHandler(dp, bot_a, handle_in_background=False, secret_token="s3cret").register(
        app, path="/hook"
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site.port}/hook"
    try:
        with pytest.raises(TelegramBadRequest, match="bad webhook"):
            await bot_a.set_webhook("http://example.com/hook")

        assert await bot_a.set_webhook(url, secret_token="wrong")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot_a.get_updates()

        await client.send_message(TOKEN_A, ALICE, "/start", first_name="Alice")
        deadline = time.monotonic() + 5
        info = await bot_a.get_webhook_info()
        while info.last_error_message is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            info = await bot_a.get_webhook_info()
        assert info.url == url
        assert info.last_error_message == "Wrong response from the webhook: 401 Unauthorized"
        assert info.pending_update_count == 1
        assert await client.messages(TOKEN_A, ALICE) == []  # the bot refused the update

        # With the right secret the same pending update is redelivered and handled.
        assert await bot_a.set_webhook(url, secret_token="s3cret")
        greeting = await client.wait_for_message(TOKEN_A, ALICE, contains="Hello")
        assert greeting.plain_text == "Hello, Alice!"

        query_id = await client.click(TOKEN_A, ALICE, greeting.message_id, text="Yes")
        assert (await client.wait_for_callback_answer(TOKEN_A, query_id)).text == "Saved"
        await client.wait_for_message(TOKEN_A, ALICE, contains="You chose yes #1")

        # A handler that *returns* a method: aiogram answers in the webhook response body.
        await client.send_message(TOKEN_A, ALICE, "/ping")
        pong = await client.wait_for_message(TOKEN_A, ALICE, contains="pong")
        [call] = [c for c in await client.calls(TOKEN_A, "sendMessage") if c.source != "http"]
        assert call.source == "webhook-reply"
        assert call.params["chat_id"] == ALICE
        assert pong.plain_text == "pong"
        assert (await bot_a.get_webhook_info()).pending_update_count == 0

        assert await bot_a.delete_webhook()
        assert await bot_a.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- getUpdates


async def test_get_updates_offset_limit_and_long_poll(
    emulator: EmulatorServer, client: EmulatorClient
) -> None:
    base = emulator.base_url
    first = await client.send_message(TOKEN_A, ALICE, "one")
    second = await client.send_message(TOKEN_A, ALICE, "two")

    status, body = await bot_api(base, TOKEN_A, "GETUPDATES", limit=1)
    assert status == 200
    assert [u["update_id"] for u in body["result"]] == [first["update_id"]]
    _, body = await bot_api(base, TOKEN_A, "getUpdates")
    assert [u["message"]["text"] for u in body["result"]] == ["one", "two"]

    # offset confirms everything below it; confirmed updates never come back
    _, body = await bot_api(base, TOKEN_A, "getUpdates", offset=second["update_id"])
    assert [u["update_id"] for u in body["result"]] == [second["update_id"]]
    _, body = await bot_api(base, TOKEN_A, "getUpdates", offset=second["update_id"] + 1)
    assert body["result"] == []

    started = time.monotonic()
    _, body = await bot_api(base, TOKEN_A, "getUpdates", offset=second["update_id"] + 1, timeout=1)
    elapsed = time.monotonic() - started
    assert body == {"ok": True, "result": []}
    assert 0.9 <= elapsed < 2.0

    poll = asyncio.create_task(bot_api(base, TOKEN_A, "getUpdates", timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    started = time.monotonic()
    third = await client.send_message(TOKEN_A, ALICE, "three")
    _, body = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 0.5
    assert [u["update_id"] for u in body["result"]] == [third["update_id"]]

    # A second poller terminates the first one, as Telegram does.
    old = asyncio.create_task(
        bot_api(base, TOKEN_A, "getUpdates", offset=third["update_id"] + 1, timeout=10)
    )
    await asyncio.sleep(0.2)
    _, body = await bot_api(base, TOKEN_A, "getUpdates", timeout=0)
    assert body["result"] == []
    status, body = await asyncio.wait_for(old, 2)
    assert status == 409
    assert "terminated by other getUpdates request" in body["description"]


async def test_form_and_query_params_and_unknown_method(emulator: EmulatorServer) -> None:
    base = emulator.base_url
    emulator.state.register_bot(TOKEN_A, "alpha_bot")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/bot{TOKEN_A}/getme") as response:
            assert (await response.json())["result"]["username"] == "alpha_bot"
        async with session.post(f"{base}/bot{TOKEN_A}/getUpdates", data={"limit": "5"}) as resp:
            assert await resp.json() == {"ok": True, "result": []}
        async with session.post(f"{base}/bot{TOKEN_A}/sendSticker") as response:
            assert response.status == 404
            assert (await response.json())["description"] == "Not Found: method not found"


# --------------------------------------------------------------------------- errors


async def test_unknown_and_revoked_tokens_are_unauthorized(
    emulator: EmulatorServer, client: EmulatorClient, bot_a: Bot
) -> None:
    stranger = make_bot(emulator.base_url, "3333333:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()

    me = await bot_a.get_me()
    assert (me.id, me.username, me.is_bot) == (1111111, "alpha_bot", True)
    await client.revoke_bot(TOKEN_A)
    with pytest.raises(TelegramUnauthorizedError):
        await bot_a.get_me()
    status, body = await bot_api(emulator.base_url, TOKEN_A, "getMe")
    assert (status, body["ok"], body["error_code"]) == (401, False, 401)


async def test_blocked_user_and_unknown_chat(client: EmulatorClient, bot_a: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot_a.send_message(ALICE, "hello")  # Alice never wrote to the bot

    await client.send_message(TOKEN_A, ALICE, "hi")
    await client.block(TOKEN_A, ALICE)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot_a.send_message(ALICE, "are you there?")
    await client.unblock(TOKEN_A, ALICE)
    await bot_a.send_message(ALICE, "welcome back")
    assert [m.plain_text for m in await client.messages(TOKEN_A, ALICE)] == ["welcome back"]
    kinds = [update.event_type for update in await bot_a.get_updates()]
    assert kinds == ["message", "my_chat_member", "my_chat_member"]


async def test_injected_faults_surface_as_aiogram_errors(
    client: EmulatorClient, bot_a: Bot
) -> None:
    await client.send_message(TOKEN_A, ALICE, "hi")
    await client.send_message(TOKEN_A, BOB, "hi")
    await client.inject_fault(
        TOKEN_A,
        "sendMessage",
        error_code=429,
        description="Too Many Requests: retry after 1",
        retry_after=1,
    )
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot_a.send_message(ALICE, "first")
    assert caught.value.retry_after == 1
    await bot_a.send_message(ALICE, "second")

    await client.inject_fault(
        TOKEN_A, "*", error_code=500, description="Internal Server Error", chat_id=BOB, count=2
    )
    await bot_a.send_message(ALICE, "alice is not affected")
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot_a.send_chat_action(BOB, "typing")
    await bot_a.send_chat_action(BOB, "typing")

    calls = await client.calls(TOKEN_A, "sendmessage")
    assert [(c.ok, c.error_code, c.params["text"]) for c in calls] == [
        (False, 429, "first"),
        (True, None, "second"),
        (True, None, "alice is not affected"),
    ]
    assert [m.plain_text for m in await client.messages(TOKEN_A, ALICE)] == [
        "second",
        "alice is not affected",
    ]
    assert [a.action for a in await client.chat_actions(TOKEN_A, BOB)] == ["typing"]


async def test_message_validation_edits_and_deletes(client: EmulatorClient, bot_a: Bot) -> None:
    await client.send_message(TOKEN_A, ALICE, "hi")
    sent = await bot_a.send_message(ALICE, "a &lt; b <i>c</i> &amp; d")
    assert sent.text == "a < b c & d"
    assert sent.entities is not None and sent.entities[0].type == "italic"

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot_a.edit_message_text("a &lt; b <i>c</i> &amp; d", chat_id=ALICE, message_id=2)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot_a.edit_message_text("x", chat_id=ALICE, message_id=99)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot_a.edit_message_reply_markup(chat_id=ALICE, message_id=2, reply_markup=None)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot_a.send_message(ALICE, "<b>unclosed")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot_a.send_message(ALICE, "line<br>break")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot_a.send_message(ALICE, "<b></b>")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot_a.send_message(ALICE, "x" * 4097)
    await bot_a.send_message(ALICE, "y" * 4096)

    await bot_a.edit_message_text("<b>v2</b>", chat_id=ALICE, message_id=sent.message_id)
    await bot_a.edit_message_text("v3", chat_id=ALICE, message_id=sent.message_id)
    assert await bot_a.delete_message(ALICE, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot_a.delete_message(ALICE, sent.message_id)

    first = (await client.messages(TOKEN_A, ALICE))[0]
    assert (first.text, first.edits, first.deleted) == ("v3", ["v2", "v3"], True)
    assert await client.last_message(TOKEN_A, ALICE) == (await client.messages(TOKEN_A, ALICE))[1]
    with pytest.raises(TimeoutError, match="the chat has"):
        await client.wait_for_message(TOKEN_A, ALICE, contains="never", timeout=0.3)

    await bot_a.set_my_commands([BotCommand(command="start", description="Start")])
    assert await client.commands(TOKEN_A) == [{"command": "start", "description": "Start"}]
    assert [c.command for c in await bot_a.get_my_commands()] == ["start"]


async def test_send_document_upload_then_download(
    emulator: EmulatorServer, client: EmulatorClient, bot_a: Bot
) -> None:
    await client.send_message(TOKEN_A, ALICE, "hi")
    payload = b"id,amount\n1,100\n" + bytes(range(256))
    message = await bot_a.send_document(
        ALICE, BufferedInputFile(payload, filename="report.csv"), caption="<b>Report</b>"
    )
    assert message.document is not None
    assert message.document.file_name == "report.csv"
    assert message.caption == "Report"
    file_id = message.document.file_id

    assert await client.download(TOKEN_A, file_id) == payload
    file = await bot_a.get_file(file_id)
    assert file.file_size == len(payload) and file.file_path is not None
    downloaded = await bot_a.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == payload

    again = await bot_a.send_document(ALICE, file_id)  # resend by file_id
    assert again.document is not None and again.document.file_unique_id == (
        message.document.file_unique_id
    )
    [first, _] = await client.messages(TOKEN_A, ALICE)
    assert first.document is not None and first.document["file_name"] == "report.csv"
    assert first.plain_text == "Report"

    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot_a.get_file("nope")
    other = make_bot(emulator.base_url, TOKEN_B)
    try:
        with pytest.raises(TelegramBadRequest, match="invalid file_id"):
            await other.get_file(file_id)  # file ids belong to one bot
    finally:
        await other.session.close()

    big = emulator.state.add_file(TOKEN_A, "document", b"\0" * (20 * 1024 * 1024 + 1))
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot_a.get_file(big.file_id)


async def test_reply_keyboard_and_contact(client: EmulatorClient, bot_a: Bot) -> None:
    await client.send_message(TOKEN_A, ALICE, "/start", first_name="Alice")
    keyboard = ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text="Share phone", request_contact=True)],
            [KeyboardButton(text="Menu")],
        ],
        one_time_keyboard=True,
    )
    await bot_a.send_message(ALICE, "Pick one", reply_markup=keyboard)
    assert (await client.messages(TOKEN_A, ALICE))[0].reply_buttons() == [["Share phone"], ["Menu"]]
    with pytest.raises(EmulatorControlError, match="no reply button 'Help'"):
        await client.click_reply(TOKEN_A, ALICE, "Help")
    await client.click_reply(TOKEN_A, ALICE, "Menu")
    with pytest.raises(EmulatorControlError, match="no reply keyboard"):
        await client.click_reply(TOKEN_A, ALICE, "Menu")  # one-time keyboard is hidden now
    await client.send_contact(TOKEN_A, ALICE, "+79990001122", first_name="Alice")

    updates = await bot_a.get_updates()
    assert [u.message.text for u in updates if u.message] == ["/start", "Menu", None]
    contact = updates[-1].message.contact if updates[-1].message else None
    assert contact is not None
    assert (contact.phone_number, contact.user_id, contact.first_name) == (
        "+79990001122",
        ALICE,
        "Alice",
    )
