"""master_bot/rollout.py: a changed spec reaches running bots in batches, each gated on the last
one's health (a fake runtime and clock; no services). The reconciler's use of it is covered by
tests/master/test_reconciler.py and test_docker_master.py (one drifted bot: the canary batch)."""

from __future__ import annotations

import itertools

import pytest

from master_bot.deploy.base import RuntimeState, RuntimeStatus
from master_bot.rollout import Rollout, RolloutPolicy, RolloutStep

POLICY = RolloutPolicy(first_batch=1, batch_size=4, max_batch=8, settle=20, timeout=120)
TICK = 5.0  # seconds between reconciler passes in these runs


class Runtime:
    """Bots that come up healthy on the new spec, except the broken ones (they crash and
    Docker restarts them), the flaky ones (one crash shortly after start, then stable) and
    those whose deploy fails outright."""

    def __init__(
        self,
        tenants: list[str],
        *,
        broken: set[str] | None = None,
        flaky: set[str] | None = None,
        failing: set[str] | None = None,
    ) -> None:
        self.statuses = {t: RuntimeStatus(t, RuntimeState.RUNNING, restarts=3) for t in tenants}
        self.broken, self.flaky, self.failing = broken or set(), flaky or set(), failing or set()
        self.deployed_at: dict[str, float] = {}

    def deploy(self, tid: str, now: float) -> str | None:
        if tid in self.failing:
            return "image not found"
        self.deployed_at[tid] = now
        self.statuses[tid] = RuntimeStatus(tid, RuntimeState.RUNNING, restarts=0)
        return None

    def tick(self, now: float) -> None:
        for tid, since in self.deployed_at.items():
            age = now - since
            if tid in self.broken:
                restarts = int(age // 10)
                state = RuntimeState.CRASHED if age % 10 >= 5 else RuntimeState.RUNNING
                self.statuses[tid] = RuntimeStatus(tid, state, restarts=restarts, detail="exit 1")
            elif tid in self.flaky and age >= 5:
                self.statuses[tid] = RuntimeStatus(tid, RuntimeState.RUNNING, restarts=1)


def drive(
    rollout: Rollout, runtime: Runtime, *, limit: float = 3600
) -> tuple[list[list[str]], RolloutStep, float]:
    """Reconciler passes every TICK seconds until the rollout finishes or halts."""
    now, batches = 0.0, []
    while now <= limit:
        runtime.tick(now)
        step = rollout.step(runtime.statuses, now)
        if step.deploy:
            batches.append(list(step.deploy))
        for tid in step.deploy:
            rollout.deployed(tid, now, runtime.deploy(tid, now))
        if step.finished or step.halted:
            return batches, step, now
        now += TICK
    raise AssertionError(f"the rollout neither finished nor halted in {limit} s")


def tenants(n: int) -> list[str]:
    return [f"client_{i:03d}" for i in range(1, n + 1)]


def test_a_healthy_rollout_goes_canary_first_then_in_growing_batches() -> None:
    fleet = tenants(30)
    rollout = Rollout(POLICY)
    assert rollout.offer(fleet) == fleet
    runtime = Runtime(fleet)
    batches, last, _ = drive(rollout, runtime)
    assert [len(b) for b in batches] == [1, 4, 8, 8, 8, 1]
    assert [t for b in batches for t in b] == fleet  # in order, each once
    assert last.finished and rollout.done == fleet and rollout.failed == {}
    assert not rollout.active and rollout.next_check(10_000) is None
    # Every batch started only once the one before had run `settle` seconds.
    starts = [runtime.deployed_at[b[0]] for b in batches]
    assert all(b - a >= POLICY.settle for a, b in itertools.pairwise(starts))


def test_a_broken_image_stops_after_the_canary_and_the_rest_keep_their_version() -> None:
    fleet = tenants(30)
    rollout = Rollout(POLICY)
    rollout.offer(fleet)
    batches, last, when = drive(rollout, Runtime(fleet, broken=set(fleet)))
    assert batches == [["client_001"]]
    assert last.halted is not None and rollout.halted == last.halted
    assert "client_001" in last.halted and "29 bot(s) left on their current version" in last.halted
    assert when >= POLICY.timeout  # it had the whole timeout to settle
    assert "not settled within 120 s" in last.unhealthy["client_001"]
    # Halted: later offers (the next drift check) start nothing until the master restarts.
    assert rollout.offer(fleet) == [] and not rollout.active
    assert rollout.step(Runtime(fleet).statuses, when + 600).deploy == []


def test_unhealthy_bots_within_the_allowance_do_not_halt() -> None:
    fleet = tenants(10)
    rollout = Rollout(RolloutPolicy(batch_size=4, max_batch=4, settle=20, max_unhealthy=1))
    rollout.offer(fleet)
    batches, last, _ = drive(rollout, Runtime(fleet, broken={"client_003"}))
    assert last.finished and len(rollout.done) == 9
    assert list(rollout.failed) == ["client_003"]
    assert [len(b) for b in batches] == [1, 4, 4, 1]


def test_a_failed_deploy_counts_at_once() -> None:
    fleet = tenants(5)
    rollout = Rollout(POLICY)
    rollout.offer(fleet)
    batches, last, when = drive(rollout, Runtime(fleet, failing={"client_001"}))
    assert batches == [["client_001"]] and when == TICK  # judged on the next pass
    assert last.unhealthy == {"client_001": "deploy failed: image not found"}
    assert last.halted


def test_a_restart_after_the_deploy_restarts_the_settling_time() -> None:
    fleet = tenants(2)
    rollout = Rollout(POLICY)
    rollout.offer(fleet)
    runtime = Runtime(fleet, flaky={"client_001"})
    _, last, _ = drive(rollout, runtime)
    assert last.finished and rollout.done == fleet
    # The canary crashed once at 5 s: it counted as settled only 20 s after that was seen.
    assert runtime.deployed_at["client_002"] >= 5 + POLICY.settle


def test_tenants_that_should_no_longer_run_leave_the_rollout() -> None:
    fleet = tenants(6)
    rollout = Rollout(POLICY)
    rollout.offer(fleet)
    runtime = Runtime(fleet)
    first = rollout.step(runtime.statuses, 0.0, eligible=fleet)
    assert first.deploy == ["client_001"]
    rollout.deployed("client_001", 0.0, runtime.deploy("client_001", 0.0))
    # client_001 (in flight) and client_004 (queued) are suspended meanwhile.
    remaining = [t for t in fleet if t not in {"client_001", "client_004"}]
    step = rollout.step(runtime.statuses, 5.0, eligible=remaining)
    assert step.unhealthy == {} and step.halted is None
    assert step.deploy == ["client_002", "client_003", "client_005", "client_006"][:1]
    assert "client_004" not in rollout.queue


def test_postponed_tenants_go_back_to_the_head_of_the_queue() -> None:
    rollout = Rollout(POLICY)
    rollout.offer(tenants(3))
    step = rollout.step({}, 0.0)
    assert step.deploy == ["client_001"]
    rollout.postpone("client_001")  # an operator's restart holds it
    assert rollout.queue[0] == "client_001" and not rollout.batch
    assert rollout.step({}, 1.0).deploy == ["client_001"]


def test_offers_join_the_running_rollout_once() -> None:
    rollout = Rollout(POLICY)
    assert rollout.offer(["client_001", "client_002"]) == ["client_001", "client_002"]
    rollout.step({}, 0.0)
    assert rollout.offer(["client_001", "client_002", "client_003"]) == ["client_003"]
    assert rollout.queue == ["client_002", "client_003"]


def test_next_check_follows_the_batch() -> None:
    rollout = Rollout(POLICY)
    assert rollout.next_check(0.0) is None
    rollout.offer(["client_001"])
    assert rollout.next_check(3.0) == 3.0  # a batch can start now
    rollout.step({}, 3.0)
    rollout.deployed("client_001", 3.0)
    running = {"client_001": RuntimeStatus("client_001", RuntimeState.RUNNING)}
    rollout.step(running, 4.0)  # first seen running
    assert rollout.next_check(4.0) == 4.0 + POLICY.settle


@pytest.mark.parametrize(
    "kwargs",
    [{"first_batch": 0}, {"batch_size": 0}, {"settle": 30, "timeout": 30}, {"settle": -1}],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RolloutPolicy(**kwargs)  # type: ignore[arg-type]
