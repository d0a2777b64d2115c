"""The operators' Telegram bot, driven as an operator would: real aiogram polling over real HTTP
against the Telegram emulator, the real master (PostgreSQL, Redis, ProcessBackend with the
stand-in client bot). After every test: no message the bot sent holds a full bot token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from core.settings import MasterSettings
from core.telegram import build_bot
from master_bot.app import operator_bot
from master_bot.deploy.base import RuntimeState
from master_bot.operator import OperatorBot
from master_bot.operator import text as optext
from master_bot.operator.options import Options
from master_bot.operator.stats import month_bounds
from master_bot.reconciler import Backoff, Memory
from master_bot.store import Step
from telegram_emulator import EmulatorClient, EmulatorControlError, SentMessage
from tests.master.conftest import Harness, make_token
from tests.master.procs import processes_of
from tests.master.test_placement import hub_reports, placed

OPERATOR = 424_242
STRANGER = 777_001
SILENT = 424_243  # an operator who never opened the bot: Telegram lets nobody write to them
TOKEN_RE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{20,}")


def labels(message: SentMessage) -> list[str]:
    return [label for row in message.buttons() for label in row]


class Person:
    """One Telegram user in the operator bot's chat: send, click, read (edits included)."""

    def __init__(self, client: EmulatorClient, token: str, user_id: int) -> None:
        self.client, self.token, self.id = client, token, user_id

    async def messages(self) -> list[SentMessage]:
        return await self.client.messages(self.token, self.id)

    async def _snapshot(self) -> set[tuple[int, str]]:
        return {(m.message_id, m.plain_text) for m in await self.messages()}

    async def _wait_new(
        self, before: set[tuple[int, str]], contains: str, timeout: float = 15
    ) -> SentMessage:
        """A message, new or edited since `before`, whose text contains `contains`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for m in await self.messages():
                if (m.message_id, m.plain_text) in before or m.deleted:
                    continue
                if contains in m.plain_text:
                    return m
            if asyncio.get_running_loop().time() > deadline:
                seen = "\n---\n".join(m.describe() for m in (await self.messages())[-5:])
                raise AssertionError(f"no message containing {contains!r}; last ones:\n{seen}")
            await asyncio.sleep(0.05)

    async def ask(self, text: str, expect: str) -> SentMessage:
        before = await self._snapshot()
        await self.client.send_message(self.token, self.id, text, first_name="Оператор")
        return await self._wait_new(before, expect)

    async def press(self, message: SentMessage, button: str, expect: str) -> SentMessage:
        before = await self._snapshot()
        await self.client.click(self.token, self.id, message.message_id, text=button)
        return await self._wait_new(before, expect)

    async def wait(self, contains: str, timeout: float = 15) -> SentMessage:
        return await self._wait_new(set(), contains, timeout)


@dataclass
class Desk:
    harness: Harness
    bot: OperatorBot
    token: str
    op: Person
    tokens: list[str] = field(default_factory=list)  # every client bot token of the test

    async def new_bot(self) -> str:
        token = await self.harness.new_bot()
        self.tokens.append(token)
        return token

    async def provision(self, **fields: Any) -> str:
        reply = await self.harness.api.provision(await self.new_bot(), **fields)
        assert reply.status == 201, reply.body
        return str(reply.body["tenant_id"])

    async def status(self, tenant_id: str) -> str:
        (row,) = await self.harness.fetch(
            "SELECT status FROM control.tenants WHERE tenant_id = $1", tenant_id
        )
        return str(row["status"])

    async def seed(self, n: int, **overrides: Any) -> list[str]:
        """Tenant rows only (no schema, no bot), for lists and figures."""
        ids = []
        for _ in range(n):
            (row,) = await self.harness.fetch("SELECT nextval('control.tenant_number_seq') AS n")
            number = int(row["n"])
            tid = f"client_{number:03d}"
            values = {
                "status": "active",
                "plan": "start",
                "expires_at": datetime.now(UTC) + timedelta(days=30),
                **overrides,
            }
            await self.harness.fetch(
                "INSERT INTO control.tenants (tenant_id, number, status, plan, business_name,"
                " owner_telegram_id, bot_id, bot_username, provision_step, expires_at)"
                " VALUES ($1, $2, $3, $4, 'Seeded', 7001, $5, $6, 'done', $7)",
                tid,
                number,
                values["status"],
                values["plan"],
                number % 10**9,
                f"seed{number}_bot",
                values["expires_at"],
            )
            ids.append(tid)
        return ids


@pytest.fixture
async def desk(
    make_harness: Callable[..., Awaitable[Harness]],
) -> AsyncIterator[Desk]:
    async with open_desk(await make_harness()) as result:
        yield result


@contextlib.asynccontextmanager
async def open_desk(harness: Harness) -> AsyncIterator[Desk]:
    """The operators' bot polling the emulator over `harness`'s master, opened by OPERATOR."""
    token = make_token()
    await harness.tg.register_bot(token, "botfleet_ops_bot", "Operators")
    bot = OperatorBot(
        harness.master,
        build_bot(token, harness.emulator.base_url, timeout=10),
        [OPERATOR, SILENT],
        options=Options(page_size=3, logs_inline_max=1500),
    )
    bot.attach()
    task = asyncio.create_task(bot.run())
    await harness.tg.wait_for_calls(token, "getUpdates", timeout=10)
    op = Person(harness.tg, token, OPERATOR)
    await op.ask("/start", "Бот операторов")  # operators open the bot once (Telegram's rule)
    result = Desk(harness, bot, token, op)
    try:
        yield result
        await bot.alerter.drain()
        await assert_no_full_tokens(harness.tg, token, [OPERATOR, STRANGER], result.tokens)
    finally:
        await bot.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await bot.close()


async def assert_no_full_tokens(
    client: EmulatorClient, token: str, chats: list[int], tokens: list[str]
) -> None:
    """No message (text, caption, edit, document, button) the operator bot sent has a token."""
    for chat in chats:
        try:
            messages = await client.messages(token, chat)
        except EmulatorControlError:
            continue
        for m in messages:
            parts = [m.text or "", m.plain_text, m.caption or "", *m.edits, str(m.reply_markup)]
            if m.document:
                parts.append((await client.download(token, m.document["file_id"])).decode())
            blob = "\n".join(parts)
            for secret in [*tokens, token]:
                assert secret not in blob, f"a full token in message {m.describe()}"
            assert not TOKEN_RE.search(blob), f"something token-like in {m.describe()}"


# ---------------------------------------------------------------------- access
async def test_a_stranger_is_refused_and_the_attempt_logged(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    await desk.seed(1)
    stranger = Person(desk.harness.tg, desk.token, STRANGER)
    with caplog.at_level(logging.WARNING, logger="master_bot.operator.access"):
        reply = await stranger.ask("/clients", "только для операторов")
        await stranger.ask("/remove client_001", "только для операторов")
    assert str(STRANGER) in reply.plain_text
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("/clients" in m and str(STRANGER) in m for m in refused), refused
    assert any("/remove" in m for m in refused), refused
    texts = " ".join(m.plain_text for m in await stranger.messages())
    assert "client_" not in texts and "Seeded" not in texts


async def test_a_failing_handler_answers_the_operator_and_is_counted(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The operators' bot runs on the shared bot runtime (core/runtime.py): a handler that
    raises gets the operator an answer, not silence, and the error is logged and counted."""

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the store broke")

    monkeypatch.setattr(desk.harness.master.deps.store, "live_page", broken)
    with caplog.at_level(logging.ERROR, logger="core.errors"):
        reply = await desk.op.ask("/clients", "Внутренняя ошибка мастера")
    assert reply.plain_text == optext.INTERNAL_ERROR
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)
    errors = desk.bot.runtime.metrics.registry.get_sample_value(
        "botfleet_bot_errors_total", {"kind": "handler", "exception": "RuntimeError"}
    )
    assert errors == 1
    scraped = (await desk.harness.api.call("GET", "/metrics")).body  # the master's /metrics
    assert 'botfleet_bot_errors_total{exception="RuntimeError",kind="handler"} 1.0' in scraped
    monkeypatch.undo()
    await desk.op.ask("/clients", "Клиенты")  # the bot goes on


# ---------------------------------------------------------------------- /clients, /stats
async def test_clients_are_paged(desk: Desk) -> None:
    ids = await desk.seed(7)
    await desk.harness.fetch(
        "UPDATE control.tenants SET status = 'suspended' WHERE tenant_id = $1", ids[4]
    )
    first = await desk.op.ask("/clients", "страница 1 из 3")
    assert "Клиенты — 7" in first.plain_text
    assert all(tid in first.plain_text for tid in ids[:3])
    assert ids[3] not in first.plain_text
    assert "@seed" in first.plain_text and "start" in first.plain_text
    assert "⛔ приостановлен" not in first.plain_text
    second = await desk.op.press(first, "Вперёд ▶️", "страница 2 из 3")
    assert second.message_id == first.message_id  # the list is redrawn in place
    assert all(tid in second.plain_text for tid in ids[3:6])
    assert f"{ids[4]} · ⛔ приостановлен" in second.plain_text
    third = await desk.op.press(second, "Вперёд ▶️", "страница 3 из 3")
    assert ids[6] in third.plain_text
    assert ["◀️ Назад"] in third.buttons() and "Вперёд ▶️" not in labels(third)
    back = await desk.op.press(third, "◀️ Назад", "страница 2 из 3")
    card = await desk.op.press(back, f"{ids[3]} @seed{int(ids[3][7:])}_bot", "Подписка до")
    assert card.plain_text.startswith(f"{ids[3]} — Seeded")
    only = await desk.op.ask("/clients suspended", "Клиенты (suspended) — 1")
    assert ids[4] in only.plain_text and ids[3] not in only.plain_text


async def test_stats_on_a_seeded_fleet(desk: Desk) -> None:
    now = desk.harness.clock.now
    await desk.seed(3)
    await desk.seed(2, status="stopped")
    (suspended,) = await desk.seed(1, status="suspended", expires_at=now - timedelta(days=9))
    soon = await desk.seed(2, expires_at=now + timedelta(days=2))
    (grace,) = await desk.seed(1, expires_at=now - timedelta(days=1))
    (deleted,) = await desk.seed(1, status="deleted")
    (looping,) = await desk.seed(1)
    desk.harness.master.reconciler.memory[looping] = Memory(failures=6, alerted=True)

    store = desk.harness.master.deps.store
    since, until = month_bounds(now, optext.ZONE)
    baseline = await store.revenue(since, until)
    orders = await desk.harness.fetch("SELECT to_regclass('control.sales_orders') AS t")
    order_ids = []
    if orders[0]["t"] is not None:
        for amount, status, paid_at in (
            ("990.00", "paid", now),
            ("2490.00", "paid", since + timedelta(hours=1)),
            ("24900.00", "paid", since - timedelta(hours=1)),  # last month
            ("500.00", "pending", None),
        ):
            order_id = f"ord_{secrets.token_hex(12)}"
            order_ids.append(order_id)
            await desk.harness.fetch(
                "INSERT INTO control.sales_orders (order_id, kind, status, user_id, plan,"
                " period_days, amount, email, idempotence_key, paid_at)"
                " VALUES ($1, 'new', $2, 1, 'start', 30, $3::numeric, 'a@b.c', $1, $4)",
                order_id,
                status,
                amount,
                paid_at,
            )
    try:
        reply = await desk.op.ask("/stats", "Выручка")
    finally:
        if order_ids:
            await desk.harness.fetch(
                "DELETE FROM control.sales_orders WHERE order_id = ANY($1)", order_ids
            )
    shown = reply.plain_text
    assert "Клиентов: 10 (удалённых: 1)" in shown
    assert "🟢 работает: 7" in shown and "⏸ остановлен: 2" in shown
    assert "⛔ приостановлен: 1" in shown
    assert deleted not in shown and suspended not in shown
    assert f"Истекают в ближайшие 7 дн.: 2 — {soon[0]}" in shown and soon[1] in shown
    assert f"льготный период: 1 — {grace}" in shown
    assert f"Падают снова и снова: 1 — {looping}" in shown
    if order_ids:
        expected = dict(baseline or {})
        expected["RUB"] = expected.get("RUB", Decimal(0)) + Decimal("3480.00")
        assert f"за {optext.month_name(now)}: {optext.revenue(expected)}" in shown
    else:
        assert "Выручка за" in shown and ": n/a" in shown


# ---------------------------------------------------------------------- the card
async def test_card_buttons_drive_the_tenant(desk: Desk) -> None:
    tid = await desk.provision()
    backend = desk.harness.backend
    card = await desk.op.ask(f"/client {int(tid[7:])}", "Подписка до")
    assert f"{tid} — Салон «Ромашка»" in card.plain_text
    assert "🟢 работает" in card.plain_text and "Процесс: запущен" in card.plain_text
    assert re.search(r"Токен: \d+:\*\*\*\S{3}\b", card.plain_text), card.plain_text

    card = await desk.op.press(card, "⏸ Остановить", f"{tid} остановлен")
    assert await desk.status(tid) == "stopped"
    assert (await backend.status(tid)).state is not RuntimeState.RUNNING
    assert processes_of(tid) == []

    card = await desk.op.press(card, "▶️ Запустить", f"{tid} запущен")
    assert await desk.status(tid) == "active"
    assert (await backend.status(tid)).state is RuntimeState.RUNNING
    assert len(processes_of(tid)) == 1

    card = await desk.op.press(card, "⛔ Приостановить", f"{tid} приостановлен")
    assert await desk.status(tid) == "suspended"
    assert processes_of(tid) == []
    (row,) = await desk.harness.fetch("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", tid)
    assert row["rolcanlogin"] is False
    assert "▶️ Запустить" not in labels(card)

    card = await desk.op.press(card, "✅ Возобновить", f"{tid} возобновлён")
    assert await desk.status(tid) == "active"
    assert (await backend.status(tid)).state is RuntimeState.RUNNING

    # a command works on the same rules; a refused transition is explained, nothing changes
    await desk.op.ask(f"/restart {tid}", f"{tid} перезапущен")
    await desk.op.ask(f"/stop {tid}", f"{tid} остановлен")
    refused = await desk.op.ask(f"/restart {tid}", "Нельзя в текущем статусе")
    assert "⏸ остановлен" in refused.plain_text
    await desk.op.ask(f"/start {tid}", f"{tid} запущен")
    await desk.op.ask("/client client_99999", "Такого клиента нет")

    actors = {e["actor"] for e in await desk.harness.master.deps.store.audit_entries(tid)}
    assert f"operator:{OPERATOR}" in actors


async def test_operators_move_a_tenant_between_placements(
    make_harness: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    """Issue 13.1 from the operators' bot: the card's button moves a live tenant into a shared
    hub, /move brings it back to a process of its own (master_bot/placement.py, as the REST
    API's POST /api/v1/tenants/{id}/placement); bad input gets the usage, nothing moves."""
    clients = tmp_path / "clients"
    async with open_desk(await make_harness(backend=placed(clients))) as desk:
        tid = await desk.provision()
        card = await desk.op.ask(f"/client {tid}", "Размещение: отдельный процесс")
        assert len(processes_of(tid)) == 1

        card = await desk.op.press(card, "🔀 В общий хаб", "размещение — общий хаб")
        assert "Размещение: общий хаб" in card.plain_text
        assert "🔀 На отдельный процесс" in labels(card)
        (row,) = await desk.harness.fetch(
            "SELECT placement FROM control.tenants WHERE tenant_id = $1", tid
        )
        assert row["placement"] == "shared"
        assert processes_of(tid) == []  # its own process is gone: one runtime per token
        assert hub_reports(clients).get(tid) == "running"

        await desk.op.ask(f"/move {tid} sideways", "Так: /move client_001 shared")
        back = await desk.op.ask(f"/move {int(tid[7:])} dedicated", "отдельный процесс")
        assert "🔀 В общий хаб" in labels(back)
        assert len(processes_of(tid)) == 1
        assert tid not in hub_reports(clients)
        entries = await desk.harness.master.deps.store.audit_entries(tid)
        assert [e["actor"] for e in entries if "placement" in str(e["action"])] == [
            f"operator:{OPERATOR}"
        ] * 2


async def test_extend_and_remove_with_confirmation(desk: Desk) -> None:
    tid = await desk.provision()
    store = desk.harness.master.deps.store

    async def expires() -> datetime:
        tenant = await store.get(tid)
        assert tenant is not None and tenant.expires_at is not None
        return tenant.expires_at

    before = await expires()
    card = await desk.op.ask(f"/extend {tid} 10", "продлена на 10 дн.")
    assert await expires() - before == timedelta(days=10)
    await desk.op.ask(f"/extend {tid} zero", "/extend client_001 30")

    # a double press on "+30" extends once
    before = await expires()
    clicks = [
        desk.harness.tg.click(desk.token, OPERATOR, card.message_id, text="➕ 30 дней")
        for _ in range(2)
    ]
    await asyncio.gather(*clicks)

    async def card_said_extended() -> bool:
        # The second press may re-edit the card at once ("already done"): read its history.
        for m in await desk.op.messages():
            if m.message_id == card.message_id and any(
                "продлена на 30 дн." in text for text in (m.plain_text, *m.edits)
            ):
                return True
        return False

    await desk.harness.wait_for(card_said_extended, timeout=15)
    await asyncio.sleep(0.5)
    assert await expires() - before == timedelta(days=30)

    question = await desk.op.ask(f"/remove {tid}", "Отменить это нельзя")
    kept = await desk.op.press(question, "Отмена", "отменено")
    assert "остаётся" in kept.plain_text
    assert await desk.status(tid) == "active"
    assert len(processes_of(tid)) == 1

    question = await desk.op.ask(f"/remove {tid}", "Отменить это нельзя")
    done = await desk.op.press(question, "🗑 Да, удалить", f"{tid} удалён")
    assert "Резервная копия схемы" in done.plain_text
    assert await desk.status(tid) == "deleted"
    assert processes_of(tid) == []
    assert tid not in await desk.harness.backend.list()
    assert not await desk.harness.fetch("SELECT 1 FROM pg_namespace WHERE nspname = $1", tid)
    await desk.op.ask(f"/remove {tid}", "уже удалён")


# ---------------------------------------------------------------------- /logs
async def test_logs_short_inline_and_long_as_a_document(desk: Desk) -> None:
    tid = await desk.provision()
    log_file = desk.harness.clients_dir / tid / "bot.log"

    async def started() -> bool:
        return log_file.exists() and "started" in log_file.read_text()

    await desk.harness.wait_for(started)
    short = await desk.op.ask(f"/logs {tid}", f"Логи {tid} (последние 50 строк)")
    assert f"fake bot {tid} started" in short.plain_text
    assert short.document is None

    leaked = f"{desk.tokens[0]}"  # a client bot that printed its own token
    with log_file.open("a", encoding="utf-8") as fh:
        fh.write(f"token in a traceback: {leaked}\n")
        for i in range(300):
            fh.write(f"line {i:04d} polling update handled by the client bot\n")
    long = await desk.op.ask(f"/logs {tid} 400", f"Логи {tid}: последние 400 строк")
    assert long.document is not None
    content = (await desk.harness.tg.download(desk.token, long.document["file_id"])).decode()
    assert "line 0299" in content and f"fake bot {tid} started" in content
    assert leaked not in content and "[REDACTED]" in content

    await desk.op.ask(f"/logs {tid} 0", "/logs client_001 200")


# ---------------------------------------------------------------------- /deploy
async def test_deploy_dialog_provisions_one_tenant(desk: Desk) -> None:
    op = desk.op
    await op.ask("/deploy", "Название бизнеса")
    await op.ask("Барбершоп «Бритва»", "Тариф")
    days = await op.ask("pro", "Срок подписки")
    await op.press(days, "90 дней", "Токен бота")

    await op.ask("123:abc", "Это не токен бота")
    unknown = make_token()
    desk.tokens.append(unknown)
    await op.ask(unknown, "Telegram не принял токен")

    good = await desk.new_bot()
    accepted = await op.ask(good, "Токен принят")
    assert f"{good.split(':')[0]}:***{good[-3:]}" in accepted.plain_text
    history = await desk.harness.tg.history(desk.token, OPERATOR)
    assert not [m for m in history if not m.outgoing and good in (m.text or "") and not m.deleted]

    await op.ask("12ab", "Id не подходит")
    defaults = await op.ask("9001", "Язык и часовой пояс")
    summary = await op.press(defaults, "ru, Europe/Moscow", "Проверьте и подтвердите")
    assert "Барбершоп «Бритва»" in summary.plain_text and "pro, 90 дн." in summary.plain_text

    clicks = [
        desk.harness.tg.click(desk.token, OPERATOR, summary.message_id, text="🚀 Развернуть")
        for _ in range(2)
    ]
    await asyncio.gather(*clicks)  # both presses reach the bot
    card = await op.wait("🚀 Клиент", timeout=30)
    tid = card.plain_text.split()[2]
    assert f"{tid} — Барбершоп «Бритва»" in card.plain_text
    rows = await desk.harness.fetch(
        "SELECT tenant_id, status, plan, owner_telegram_id, expires_at - created_at AS period"
        " FROM control.tenants WHERE business_name = 'Барбершоп «Бритва»'"
    )
    assert len(rows) == 1
    assert (rows[0]["tenant_id"], rows[0]["status"], rows[0]["plan"]) == (tid, "active", "pro")
    assert rows[0]["owner_telegram_id"] == 9001
    assert abs(rows[0]["period"] - timedelta(days=90)) < timedelta(minutes=1)
    assert len(processes_of(tid)) == 1
    await op.wait(f"Клиент развёрнут: {tid}")  # the alert
    actors = {e["actor"] for e in await desk.harness.master.deps.store.audit_entries(tid)}
    assert f"operator:{OPERATOR}" in actors

    # the same token again is refused at once; /cancel ends the dialog
    await op.ask("/deploy", "Название бизнеса")
    await op.ask("Второй", "Тариф")
    await op.ask("start", "Срок подписки")
    await op.ask("30", "Токен бота")
    await op.ask(good, f"уже работает у клиента {tid}")
    await op.ask("/cancel", "Отменено")
    await op.ask("hello", "Не понял")


# ---------------------------------------------------------------------- alerts
async def test_alerts_reach_operators(desk: Desk, caplog: pytest.LogCaptureFixture) -> None:
    master = desk.harness.master
    with caplog.at_level(logging.WARNING, logger="master_bot.operator.alerts"):
        tid = await desk.provision()  # the API answers at once; alerts go out on their own
        await desk.op.wait(f"Клиент развёрнут: {tid}")
        await desk.bot.alerter.drain()
    assert f"alert provisioned to operator {SILENT} failed" in caplog.text

    async def fail_once(tenant_id: str, step: Step) -> None:
        if step is Step.FILES:
            master.provisioner.fault = no_fault
            raise OSError("disk full (injected)")

    async def no_fault(tenant_id: str, step: Step) -> None:
        return None

    master.provisioner.fault = fail_once
    failed = await desk.harness.api.provision(await desk.new_bot())
    assert failed.status == 503, failed.body
    failed_id = failed.body["error"]["details"]["tenant_id"]
    alert = await desk.op.wait(f"Развёртывание не удалось: {failed_id}")
    assert "disk full" in alert.plain_text
    assert alert.buttons() == [[f"Карточка {failed_id}"]]

    master.reconciler.policy = Backoff(first=0.01, alert_after=1)
    (pid,) = processes_of(tid)
    os.killpg(pid, signal.SIGKILL)
    await desk.harness.wait_for(lambda: _not_running(desk, tid))
    await master.reconciler.run_once()
    await desk.op.wait(f"падает снова и снова: {tid}")

    desk.harness.clock.advance(days=34)
    report = await master.monitor.run_once()
    assert tid in report.suspended
    expired = await desk.op.wait(f"Подписка истекла, бот приостановлен: {tid}")
    card = await desk.op.press(expired, f"Карточка {tid}", "Подписка до")
    assert "⛔ приостановлен" in card.plain_text


async def _not_running(desk: Desk, tid: str) -> bool:
    return (await desk.harness.backend.status(tid)).state is not RuntimeState.RUNNING


# ---------------------------------------------------------------------- wiring
async def test_the_master_runs_the_bot_only_with_a_token(
    make_harness: Callable[..., Awaitable[Harness]], caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness()
    base: dict[str, Any] = {
        "encryption_keys": Fernet.generate_key().decode(),
        "master_api_token": "x" * 32,
        "telegram_api_url": harness.emulator.base_url,
        "_env_file": None,
    }
    with caplog.at_level(logging.INFO, logger="master_bot.app"):
        assert operator_bot(MasterSettings(master_bot_token="", **base), harness.master) is None
    assert "operator bot off: MASTER_BOT_TOKEN is empty" in caplog.text
    with pytest.raises(ValidationError, match="master_bot_token"):
        MasterSettings(master_bot_token="not-a-token", **base)

    settings = MasterSettings(**{**base, "master_bot_token": make_token(), "operator_ids": "1, 2"})
    bot = operator_bot(settings, harness.master)
    assert bot is not None
    try:
        assert bot.operators == {1, 2}
        assert bot.alerter in harness.master.deps.alerts.alerters
    finally:
        await bot.close()
