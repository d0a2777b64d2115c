"""Subscription monitor with a fake clock: reminders exactly once, suspension, resume on extend."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from master_bot.alert import AlertKind
from master_bot.subscription import due_threshold
from tests.master.conftest import Harness
from tests.master.procs import processes_of

OWNER = 7001


def test_due_threshold_picks_the_nearest_reached_one() -> None:
    expires = datetime(2030, 1, 10)
    assert due_threshold(expires, datetime(2030, 1, 1), (7, 3, 1)) is None
    assert due_threshold(expires, datetime(2030, 1, 3), (7, 3, 1)) == 7
    assert due_threshold(expires, datetime(2030, 1, 8), (7, 3, 1)) == 3
    assert due_threshold(expires, datetime(2030, 1, 9, 12), (7, 3, 1)) == 1
    assert due_threshold(expires, datetime(2030, 1, 10, 1), (7, 3, 1)) is None


async def test_reminders_once_then_suspension_then_resume_on_extend(harness: Harness) -> None:
    token = await harness.new_bot()
    reply = await harness.api.provision(token, period_days=10, owner_telegram_id=OWNER)
    tid = reply.body["tenant_id"]
    expires = datetime.fromisoformat(reply.body["expires_at"])
    await harness.tg.send_message(token, OWNER, "/start")  # the owner has opened the bot
    monitor = harness.master.monitor
    clock = harness.clock

    async def reminders() -> list[str]:
        return [m.plain_text for m in await harness.tg.messages(token, OWNER)]

    clock.now = expires - timedelta(days=8)  # 8 days left: nothing yet
    await monitor.run_once()
    assert await reminders() == []

    for days_left, threshold in ((6.5, 7), (2.5, 3), (0.5, 1)):
        clock.now = expires - timedelta(days=days_left)
        # two passes at once, then one more: still a single reminder per threshold
        await asyncio.gather(monitor.run_once(), monitor.run_once())
        await monitor.run_once()
        texts = await reminders()
        assert len(texts) == [7, 3, 1].index(threshold) + 1, texts
        assert f"осталось дней: {threshold}" in texts[-1]
        assert "Ромашка" in texts[-1]

    # expired, but within the grace period: still active
    clock.now = expires + timedelta(days=1)
    report = await monitor.run_once()
    assert report.suspended == []
    assert len(processes_of(tid)) == 1

    # past the grace period: suspended, data kept, operators alerted
    clock.now = expires + timedelta(days=3, hours=1)
    report = await monitor.run_once()
    assert report.suspended == [tid]
    detail = await harness.api.call("GET", f"/api/v1/tenants/{tid}")
    assert detail.body["status"] == "suspended"
    assert processes_of(tid) == []
    assert await harness.fetch("SELECT 1 FROM pg_namespace WHERE nspname = $1", tid)
    assert AlertKind.SUBSCRIPTION_EXPIRED in harness.alerts.kinds(tid)
    assert (await monitor.run_once()).suspended == []
    audit = await harness.master.deps.store.audit_entries(tid)
    suspension = next(a for a in audit if a["action"] == "tenant.suspend")
    assert suspension["actor"] == "subscription"

    refused = await harness.api.call("POST", f"/api/v1/tenants/{tid}/resume")
    assert refused.status == 409 and refused.error_code == "subscription_expired"

    # the owner pays again: extend resumes the bot
    key = {"Idempotency-Key": "order-renew-1"}
    extended = await harness.api.call(
        "POST", f"/api/v1/tenants/{tid}/extend", json={"days": 30}, headers=key
    )
    assert extended.status == 200, extended.body
    assert extended.body["status"] == "active"
    assert extended.body["runtime"]["state"] == "running"
    new_expiry = datetime.fromisoformat(extended.body["expires_at"])
    assert (new_expiry - clock.now).days == 29 or (new_expiry - clock.now).days == 30
    again = await harness.api.call(
        "POST", f"/api/v1/tenants/{tid}/extend", json={"days": 30}, headers=key
    )
    assert again.status == 200
    assert again.body["expires_at"] == extended.body["expires_at"]  # not extended twice
    other = await harness.api.call(
        "POST", f"/api/v1/tenants/{tid}/extend", json={"days": 5}, headers=key
    )
    assert other.status == 409
    missing_key = await harness.api.call("POST", f"/api/v1/tenants/{tid}/extend", json={"days": 5})
    assert missing_key.status == 400 and missing_key.error_code == "idempotency_key_required"
    assert len(processes_of(tid)) == 1


async def test_reminder_to_an_owner_who_never_opened_the_bot_is_not_retried(
    harness: Harness,
) -> None:
    token = await harness.new_bot()
    reply = await harness.api.provision(token, period_days=2, owner_telegram_id=OWNER + 1)
    tid = reply.body["tenant_id"]
    report = await harness.master.monitor.run_once()
    assert report.failed and report.failed[0][0] == tid
    assert "chat not found" in report.failed[0][1]
    assert token.split(":")[1] not in report.failed[0][1]
    assert (await harness.master.monitor.run_once()).failed == []
    rows = await harness.master.deps.store.reminders(tid)
    assert len(rows) == 1 and rows[0]["sent_at"] is None and rows[0]["error"]
