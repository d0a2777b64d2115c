"""Lifecycle endpoints: stop, start, restart, suspend, resume, delete — as an operator sees them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.master.conftest import Harness
from tests.master.procs import processes_of


async def _provision(harness: Harness) -> tuple[str, str]:
    token = await harness.new_bot()
    reply = await harness.api.provision(token)
    assert reply.status == 201, reply.body
    return reply.body["tenant_id"], token


async def _can_login(harness: Harness, tenant_id: str) -> bool:
    (row,) = await harness.fetch("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", tenant_id)
    return bool(row["rolcanlogin"])


async def _redis_enabled(harness: Harness, tenant_id: str) -> bool:
    user: Any = await harness.redis.acl_getuser(tenant_id)
    return user is not None and "on" in user["flags"]


async def test_stop_start_restart(harness: Harness) -> None:
    tid, _ = await _provision(harness)
    base = f"/api/v1/tenants/{tid}"
    (pid,) = processes_of(tid)

    stopped = await harness.api.call("POST", base + "/stop")
    assert stopped.status == 200
    assert stopped.body["status"] == "stopped"
    assert stopped.body["runtime"]["state"] == "stopped"
    assert processes_of(tid) == []
    # stopping twice is harmless; restarting a stopped tenant is refused
    assert (await harness.api.call("POST", base + "/stop")).status == 200
    refused = await harness.api.call("POST", base + "/restart")
    assert refused.status == 409 and refused.error_code == "invalid_state"

    started = await harness.api.call("POST", base + "/start")
    assert started.status == 200
    assert started.body["status"] == "active"
    assert started.body["runtime"]["state"] == "running"
    (new_pid,) = processes_of(tid)
    assert new_pid != pid

    restarted = await harness.api.call("POST", base + "/restart")
    assert restarted.status == 200
    (third_pid,) = processes_of(tid)
    assert third_pid != new_pid
    assert restarted.body["runtime"]["restarts"] >= 1

    async def logged() -> bool:
        logs = await harness.api.call("GET", base + "/logs", params={"lines": "50"})
        assert logs.status == 200
        return f"fake bot {tid} started" in logs.body

    await harness.wait_for(logged)

    actions = [a["action"] for a in await harness.master.deps.store.audit_entries(tid)]
    assert actions[-3:] == ["tenant.stop", "tenant.start", "tenant.restart"]


async def test_suspend_keeps_data_and_resume_brings_it_back(harness: Harness) -> None:
    tid, _ = await _provision(harness)
    base = f"/api/v1/tenants/{tid}"
    await harness.fetch(f'CREATE TABLE "{tid}".precious (v text)')
    await harness.fetch(f"INSERT INTO \"{tid}\".precious VALUES ('keep me')")
    await harness.redis.set(f"{{{tid}}}:note", "kept")

    suspended = await harness.api.call("POST", base + "/suspend")
    assert suspended.status == 200
    assert suspended.body["status"] == "suspended"
    assert processes_of(tid) == []
    assert not await _can_login(harness, tid)
    assert not await _redis_enabled(harness, tid)
    assert (await harness.fetch(f'SELECT v FROM "{tid}".precious'))[0]["v"] == "keep me"
    assert await harness.redis.get(f"{{{tid}}}:note") == b"kept"
    # a suspended tenant is not started by a plain /start
    assert (await harness.api.call("POST", base + "/start")).status == 409

    resumed = await harness.api.call("POST", base + "/resume")
    assert resumed.status == 200
    assert resumed.body["status"] == "active"
    assert resumed.body["runtime"]["state"] == "running"
    assert len(processes_of(tid)) == 1
    assert await _can_login(harness, tid)
    assert await _redis_enabled(harness, tid)
    assert (await harness.api.call("POST", base + "/resume")).status == 409


async def test_delete_with_backup_removes_everything(harness: Harness) -> None:
    tid, token = await _provision(harness)
    await harness.fetch(f'CREATE TABLE "{tid}".orders (id int)')
    await harness.fetch(f'INSERT INTO "{tid}".orders VALUES (1), (2)')
    await harness.redis.set(f"{{{tid}}}:x", "1")

    deleted = await harness.api.call("DELETE", f"/api/v1/tenants/{tid}")
    assert deleted.status == 200, deleted.body
    assert deleted.body["status"] == "deleted"
    backup = Path(harness.master.deps.config.backups_dir) / deleted.body["backup_file"]
    assert backup.stat().st_size > 0
    assert b"orders" in backup.read_bytes()
    assert backup.stat().st_mode & 0o777 == 0o600  # the tenant's rows: the platform user's only
    assert backup.parent.stat().st_mode & 0o777 == 0o700

    assert processes_of(tid) == []
    assert await harness.fetch("SELECT 1 FROM pg_namespace WHERE nspname = $1", tid) == []
    assert await harness.fetch("SELECT 1 FROM pg_roles WHERE rolname = $1", tid) == []
    assert await harness.redis.acl_getuser(tid) is None
    assert await harness.redis.exists(f"{{{tid}}}:x") == 0
    assert not (harness.clients_dir / tid).exists()
    (row,) = await harness.fetch(
        "SELECT bot_token_enc, db_password_enc FROM control.tenants WHERE tenant_id = $1", tid
    )
    assert row["bot_token_enc"] is None and row["db_password_enc"] is None

    detail = await harness.api.call("GET", f"/api/v1/tenants/{tid}")
    assert detail.body["status"] == "deleted"
    assert (await harness.api.call("DELETE", f"/api/v1/tenants/{tid}")).status == 200
    assert (await harness.api.call("POST", f"/api/v1/tenants/{tid}/start")).status == 409
    # the token is free again for a new tenant
    again = await harness.api.provision(token)
    assert again.status == 201 and again.body["tenant_id"] != tid


async def test_delete_without_backup_and_missing_pg_dump(harness: Harness) -> None:
    tid, _ = await _provision(harness)
    config = harness.master.deps.config
    object.__setattr__(config, "pg_dump", "pg_dump-not-installed")
    refused = await harness.api.call("DELETE", f"/api/v1/tenants/{tid}")
    assert refused.status == 503
    assert refused.error_code == "backup_failed"
    assert "backup=false" in refused.body["error"]["message"]
    assert len(processes_of(tid)) == 1  # nothing was deleted

    deleted = await harness.api.call("DELETE", f"/api/v1/tenants/{tid}", params={"backup": "false"})
    assert deleted.status == 200
    assert deleted.body["backup_file"] is None
    folder = Path(config.backups_dir)
    backups = await asyncio.to_thread(lambda: list(folder.glob(f"{tid}-*")))
    assert backups == []
