"""A crash at any provisioning step, then a retry or the reconciler: exactly one of everything."""

from __future__ import annotations

import pytest

from master_bot.store import STEPS, Step
from tests.master.conftest import Harness
from tests.master.procs import processes_of

CRASH_STEPS = [s for s in STEPS if s is not Step.ALLOCATED]


class SimulatedCrashError(RuntimeError):
    pass


def crash_once(at: Step):
    fired: list[Step] = []

    async def fault(tenant_id: str, step: Step) -> None:
        if step is at and not fired:
            fired.append(step)
            raise SimulatedCrashError(f"master died after {step.value}")

    return fault, fired


async def assert_exactly_one(harness: Harness, tenant_id: str) -> None:
    assert len(await harness.fetch("SELECT 1 FROM control.tenants")) == 1
    schemas = await harness.fetch("SELECT nspname FROM pg_namespace WHERE nspname = $1", tenant_id)
    assert len(schemas) == 1
    migrations = await harness.fetch(f'SELECT version FROM "{tenant_id}".schema_migrations')
    assert len(migrations) == len({m["version"] for m in migrations}) >= 1
    users = [u.decode() if isinstance(u, bytes) else u for u in await harness.redis.acl_users()]
    assert users.count(tenant_id) == 1
    assert len(processes_of(tenant_id)) == 1
    assert set(await harness.backend.list()) == {tenant_id}


@pytest.mark.parametrize("step", CRASH_STEPS, ids=[s.value for s in CRASH_STEPS])
async def test_crash_then_retry_completes_once(harness: Harness, step: Step) -> None:
    fault, fired = crash_once(step)
    harness.master.provisioner.fault = fault
    token = await harness.new_bot()

    failed = await harness.api.provision(token, key="order-crash")
    assert fired == [step]
    assert failed.status == 503
    assert failed.error_code == "provisioning_incomplete"
    tenant_id = failed.body["error"]["details"]["tenant_id"]
    detail = await harness.api.call("GET", f"/api/v1/tenants/{tenant_id}")
    assert detail.body["status"] == "provisioning"
    assert "master died" in detail.body["last_error"]

    retried = await harness.api.provision(token, key="order-crash")
    assert retried.status == 200, retried.body
    assert retried.body["tenant_id"] == tenant_id
    assert retried.body["status"] == "active"
    assert retried.body["last_error"] is None
    await assert_exactly_one(harness, tenant_id)


@pytest.mark.parametrize("step", CRASH_STEPS, ids=[s.value for s in CRASH_STEPS])
async def test_crash_then_reconciler_completes_once(harness: Harness, step: Step) -> None:
    fault, _ = crash_once(step)
    harness.master.provisioner.fault = fault
    token = await harness.new_bot()
    failed = await harness.api.provision(token, key="order-crash-r")
    assert failed.status == 503
    tenant_id = failed.body["error"]["details"]["tenant_id"]

    actions = await harness.master.reconciler.run_once()
    assert [a.act.value for a in actions if a.tenant_id == tenant_id] == ["provision"]
    detail = await harness.api.call("GET", f"/api/v1/tenants/{tenant_id}")
    assert detail.body["status"] == "active"
    assert detail.body["runtime"]["state"] == "running"
    await assert_exactly_one(harness, tenant_id)
    # a second pass finds nothing to do
    assert await harness.master.reconciler.run_once() == []


async def test_crash_then_master_restart_completes_once(make_harness) -> None:
    first = await make_harness()
    fault, _ = crash_once(Step.REDIS)
    first.master.provisioner.fault = fault
    token = await first.new_bot()
    failed = await first.api.provision(token, key="order-restart")
    tenant_id = failed.body["error"]["details"]["tenant_id"]

    second = await make_harness()  # a new master process on the same database and folder
    await second.master.reconciler.run_once()
    await assert_exactly_one(second, tenant_id)
