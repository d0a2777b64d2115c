"""The reconciler: pure decisions over a fake runtime, and real processes brought back."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from dataclasses import replace
from datetime import UTC, datetime

from master_bot.deploy.base import ClientSpec, RuntimeState, RuntimeStatus
from master_bot.reconciler import Act, Backoff, Memory, Observed, parse_acl_list, plan
from master_bot.spec import build_spec
from master_bot.store import Step, TenantRecord, TenantStatus
from tests.master.conftest import Harness
from tests.master.procs import processes_of

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def record(tid: str, status: TenantStatus = TenantStatus.ACTIVE) -> TenantRecord:
    return TenantRecord(
        tenant_id=tid,
        number=int(tid.split("_")[1]),
        status=status,
        plan="basic",
        business_name="x",
        owner_telegram_id=1,
        locale="ru",
        timezone="Europe/Moscow",
        bot_id=1,
        bot_username="b",
        bot_token_enc="t",
        bot_token_sha256="h",
        db_password_enc="d",
        redis_password_enc="r",
        provision_step=Step.DONE,
        expires_at=NOW,
        last_error=None,
        created_at=NOW,
        updated_at=NOW,
        suspended_at=None,
        deleted_at=None,
    )


def observed(runtimes: dict[str, RuntimeState], **kw) -> Observed:
    statuses = {t: RuntimeStatus(t, s) for t, s in runtimes.items()}
    users = kw.pop("users", {t: True for t in runtimes})
    logins = kw.pop("logins", {t: True for t in runtimes})
    return Observed(statuses, users, logins, **kw)


def acts(actions) -> list[tuple[str, str]]:
    return sorted((a.act.value, a.tenant_id) for a in actions)


def test_plan_matches_desired_state() -> None:
    tenants = [
        record("client_001"),  # active, running: nothing
        record("client_002"),  # active, missing: deploy
        record("client_003", TenantStatus.STOPPED),  # stopped but running: stop
        record("client_004", TenantStatus.SUSPENDED),  # suspended, user on: disable
        replace(record("client_005"), status=TenantStatus.PROVISIONING, provision_step=Step.REDIS),
    ]
    seen = observed(
        {
            "client_001": RuntimeState.RUNNING,
            "client_003": RuntimeState.RUNNING,
            "client_004": RuntimeState.STOPPED,
            "client_099": RuntimeState.RUNNING,  # no tenant: orphan
        },
        users={"client_001": True, "client_003": True, "client_004": True},
        logins={"client_001": True, "client_003": True, "client_004": True, "client_002": False},
    )
    actions = plan(tenants, seen, {}, now=100.0)
    assert acts(actions) == sorted(
        [
            ("deploy", "client_002"),
            ("redis_user", "client_002"),  # Redis lost the user: re-create
            ("pg_login", "client_002"),
            ("stop", "client_003"),
            ("redis_user_disabled", "client_004"),
            ("pg_nologin", "client_004"),
            ("provision", "client_005"),
            ("remove", "client_099"),
        ]
    )


def test_busy_tenants_are_left_alone() -> None:
    actions = plan([record("client_002")], observed({}, busy=frozenset({"client_002"})), {}, 0.0)
    assert actions == []


def test_crash_restarts_back_off_exponentially_and_alert_once() -> None:
    policy = Backoff(first=1.0, factor=2.0, maximum=60.0, stable_after=30.0, alert_after=3)
    memory: dict[str, Memory] = {}
    tenants = [record("client_001")]
    crashed = observed({"client_001": RuntimeState.CRASHED})
    restarts_at = []
    alerts = []
    for tick in range(0, 400):
        now = tick * 0.5
        for action in plan(tenants, crashed, memory, now, policy):
            if action.act is Act.RESTART:
                restarts_at.append(now)
            if action.act is Act.ALERT:
                alerts.append(now)
    gaps = [b - a for a, b in itertools.pairwise(restarts_at)]
    assert restarts_at[0] == 0.0
    assert gaps[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert max(gaps) == 60.0
    assert alerts == [restarts_at[2]]

    # a stable run forgets the crashes
    running = observed({"client_001": RuntimeState.RUNNING})
    plan(tenants, running, memory, 1000.0, policy)
    plan(tenants, running, memory, 1031.0, policy)
    assert memory["client_001"].failures == 0
    actions = plan(tenants, crashed, memory, 1032.0, policy)
    assert [a.act for a in actions] == [Act.RESTART]


def test_backend_restarts_count_as_crashes() -> None:
    policy = Backoff(alert_after=2)
    memory: dict[str, Memory] = {}
    tenants = [record("client_001")]

    def seen(restarts: int) -> Observed:
        status = RuntimeStatus("client_001", RuntimeState.RUNNING, restarts=restarts)
        return Observed({"client_001": status}, {"client_001": True}, {"client_001": True})

    assert plan(tenants, seen(0), memory, 0.0, policy) == []
    assert plan(tenants, seen(1), memory, 1.0, policy) == []
    alert = plan(tenants, seen(2), memory, 2.0, policy)
    assert [a.act for a in alert] == [Act.ALERT]


def test_a_running_bot_with_another_spec_is_redeployed_with_backoff() -> None:
    policy = Backoff(first=1.0, factor=2.0, maximum=60.0)
    memory: dict[str, Memory] = {}
    tenants = [record("client_001"), record("client_002")]
    runtimes = {"client_001": RuntimeState.RUNNING, "client_002": RuntimeState.RUNNING}
    drifted = observed(runtimes, drifted=frozenset({"client_001"}))
    actions = plan(tenants, drifted, memory, 0.0, policy)
    assert [(a.act, a.tenant_id, a.detail) for a in actions] == [
        (Act.DEPLOY, "client_001", "spec changed")
    ]
    # Still drifted (the deploy failed): again only after the backoff, not at every pass.
    assert plan(tenants, drifted, memory, 0.5, policy) == []
    assert acts(plan(tenants, drifted, memory, 1.0, policy)) == [("deploy", "client_001")]
    assert plan(tenants, drifted, memory, 2.5, policy) == []
    assert acts(plan(tenants, drifted, memory, 3.0, policy)) == [("deploy", "client_001")]
    # Settled: nothing, and the backoff starts afresh next time.
    assert plan(tenants, observed(runtimes), memory, 4.0, policy) == []
    assert memory["client_001"].drift_attempts == 0
    assert acts(plan(tenants, drifted, memory, 4.0, policy)) == [("deploy", "client_001")]
    # Drift of a tenant that is not active and running is not the reconciler's to fix here.
    stopped = [record("client_003", TenantStatus.STOPPED)]
    idle = observed({"client_003": RuntimeState.STOPPED}, drifted=frozenset({"client_003"}))
    assert plan(stopped, idle, {}, 0.0, policy) == []


async def test_a_new_master_redeploys_bots_whose_spec_changed(make_harness) -> None:
    first = await make_harness()
    token = await first.new_bot()
    tid = (await first.api.provision(token)).body["tenant_id"]
    (pid,) = processes_of(tid)

    # The master restarts with another setting that reaches the bots (OPENAI_MODEL).
    second = await make_harness()
    second.master.deps.config = replace(second.master.deps.config, openai_model="another-model")
    actions = await second.master.reconciler.run_once()
    assert [(a.act, a.tenant_id, a.detail) for a in actions] == [(Act.DEPLOY, tid, "spec changed")]
    (new_pid,) = processes_of(tid)
    assert new_pid != pid
    tenant = await second.master.deps.store.get(tid)
    assert tenant is not None
    spec = build_spec(second.master.deps.config, second.master.deps.box, tenant)
    assert spec.env["OPENAI_MODEL"] == "another-model"
    assert await second.backend.drifted({tid: spec}) == set()  # running from the new spec
    assert await second.master.reconciler.run_once() == []  # settled


def test_parse_acl_list() -> None:
    lines: list[str | bytes] = [
        "user default on nopass ~* &* +@all",
        b"user client_001 on #abc ~client_001:* resetchannels -@all +get",
        "user client_002 off #abc ~client_002:* -@all",
        "user someone on #x ~* +@all",
    ]
    assert parse_acl_list(lines) == {"client_001": True, "client_002": False}


async def test_reconciler_restarts_a_killed_bot(harness: Harness) -> None:
    token = await harness.new_bot()
    tid = (await harness.api.provision(token)).body["tenant_id"]
    (pid,) = processes_of(tid)
    task = asyncio.create_task(harness.master.reconciler.run())
    try:
        os.killpg(pid, signal.SIGKILL)

        async def back() -> bool:
            pids = processes_of(tid)
            audit = await harness.master.deps.store.audit_entries(tid)
            restarted = any(a["action"] == "runtime.restart" for a in audit)
            return restarted and len(pids) == 1 and pids[0] != pid

        await harness.wait_for(back, timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    detail = await harness.api.call("GET", f"/api/v1/tenants/{tid}")
    assert detail.body["runtime"]["state"] == "running"


async def test_new_master_adopts_running_bots(make_harness) -> None:
    first = await make_harness()
    token = await first.new_bot()
    tid = (await first.api.provision(token)).body["tenant_id"]
    (pid,) = processes_of(tid)

    second = await make_harness()  # the master restarted: a new backend, same folder
    assert (await second.backend.status(tid)).state is RuntimeState.RUNNING
    assert await second.master.reconciler.run_once() == []
    assert processes_of(tid) == [pid]
    # the new master controls the adopted bot
    stopped = await second.api.call("POST", f"/api/v1/tenants/{tid}/stop")
    assert stopped.status == 200
    assert processes_of(tid) == []


async def test_orphan_runtime_is_removed(harness: Harness) -> None:
    orphan = "client_123456789"
    await harness.backend.deploy(ClientSpec(orphan, env={"TENANT_ID": orphan}))
    assert len(processes_of(orphan)) == 1
    actions = await harness.master.reconciler.run_once()
    assert [(a.act, a.tenant_id) for a in actions] == [(Act.REMOVE, orphan)]
    assert processes_of(orphan) == []


async def test_redis_users_are_recreated_after_a_redis_restart(harness: Harness) -> None:
    token = await harness.new_bot()
    tid = (await harness.api.provision(token)).body["tenant_id"]
    await harness.redis.acl_deluser(tid)  # what a Redis restart without an aclfile does

    actions = await harness.master.reconciler.run_once()
    assert (Act.REDIS_USER, tid) in [(a.act, a.tenant_id) for a in actions]
    # the bot's own credentials work again, limited to its prefix
    from redis.asyncio import Redis

    from master_bot.spec import build_spec

    tenant = await harness.master.deps.store.get(tid)
    assert tenant is not None
    spec = build_spec(harness.master.deps.config, harness.master.deps.box, tenant)
    client = Redis.from_url(spec.env["REDIS_URL"])
    try:
        await client.set(f"{spec.env['REDIS_KEY_PREFIX']}ping", "1")
        assert await client.get(f"{{{tid}}}:ping") == b"1"
    finally:
        await client.aclose()
