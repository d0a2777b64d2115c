"""Rolling a changed client spec over running bots in batches, each gated on health.

After an upgrade (`git pull` + `make up`), every running bot was made from another spec than
the master would make now (a new client image, other limits or settings): the reconciler sees
them all drift at once. Re-creating them all at once would take the whole fleet down with a
broken image. A `Rollout` re-deploys them batch by batch instead: first one bot (the canary),
then `batch_size`, doubling after every healthy batch up to `max_batch`; the next batch starts
only when every bot of the last one has been running for `settle` seconds without a restart.
A batch with more than `max_unhealthy` bots that did not settle within `timeout` (or whose
deploy failed) halts the rollout: the bots not reached yet keep running their current
container, and the rollout stays halted (offers are ignored) until the master restarts — which
`make rollback` (the previous images) and `make up` with a fixed image both do.

It is a state machine without I/O, driven by whoever observes the runtimes and runs the
deploys: the reconciler on one host (every pass: `offer` the drifted tenants, `step` with the
statuses it observed, deploy what `step` returns, report each with `deployed`), and the same
object can drive a multi-host rollout (Swarm services, other engines) with their statuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from master_bot.deploy.base import RuntimeState, RuntimeStatus


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    first_batch: int = 1  # the canary
    batch_size: int = 8  # the batch after a healthy canary; doubles after each healthy batch
    max_batch: int = 64
    settle: float = 20.0  # seconds a re-deployed bot must be seen running without a restart
    timeout: float = 180.0  # seconds a batch may take to settle
    max_unhealthy: int = 0  # bots of one batch that may fail before the rollout halts

    def __post_init__(self) -> None:
        if min(self.first_batch, self.batch_size, self.max_batch) < 1:
            raise ValueError("rollout batch sizes must be at least 1")
        if self.settle < 0 or self.timeout <= self.settle:
            raise ValueError("rollout timeout must exceed settle (both in seconds)")


@dataclass(slots=True)
class _InFlight:
    started: float
    error: str | None = None  # the deploy itself failed
    deployed: bool = False
    first_running: float | None = None  # since when it is seen running without a restart
    restarts: int | None = None  # the count when first seen after the deploy
    last: str = "not deployed yet"


@dataclass(slots=True)
class RolloutStep:
    """What one `step` decided."""

    deploy: list[str] = field(default_factory=list)  # re-deploy these now, then `deployed()`
    healthy: list[str] = field(default_factory=list)  # settled in this step
    unhealthy: dict[str, str] = field(default_factory=dict)  # tenant -> why, in this step
    halted: str | None = None  # why the rollout halted in this step (alert once)
    finished: bool = False  # the last batch settled in this step


class Rollout:
    def __init__(self, policy: RolloutPolicy | None = None) -> None:
        self.policy = policy or RolloutPolicy()
        self.queue: list[str] = []
        self.batch: dict[str, _InFlight] = {}
        self.batches = 0  # started so far in this rollout
        self.next_size = self.policy.first_batch
        self.halted: str | None = None
        self.done: list[str] = []  # settled in this rollout
        self.failed: dict[str, str] = {}
        self._batch_failed: dict[str, str] = {}
        self.left: list[str] = []  # not reached when it halted (what `resume` goes on with)
        self.paused = False  # the batch in flight is judged, no new batch starts
        self.held_by: str | None = None  # another driver owns the runtimes (an upgrade)

    def hold(self, by: str) -> None:
        """Another driver (an operator's upgrade, master_bot/upgrades.py) re-creates the
        runtimes now: offers are ignored and nothing is handed out until `release`."""
        self.held_by = by

    def release(self) -> None:
        self.held_by = None

    def resume(self) -> list[str]:
        """Go on after a halt (the failed bots of the last batch first, then those not reached)
        or after a pause. Returns the tenants queued again."""
        self.paused = False
        if self.halted is None:
            return []
        retry = [t for t in self._batch_failed if t not in self.left]
        for tid in retry:
            self.failed.pop(tid, None)
        self.queue, self.left, self.halted, self._batch_failed = retry + self.left, [], None, {}
        return list(self.queue)

    @property
    def active(self) -> bool:
        return bool(self.queue or self.batch)

    def offer(self, tenant_ids: Iterable[str]) -> list[str]:
        """Queue tenants whose runtime must be re-created; those already queued or in flight
        are not queued twice. Ignored while halted. Returns the newly queued."""
        if self.halted is not None or self.held_by is not None:
            return []
        if not self.active:  # a new rollout
            self.batches, self.next_size = 0, self.policy.first_batch
            self.done, self.failed = [], {}
        known = set(self.queue) | set(self.batch)
        added = [t for t in dict.fromkeys(tenant_ids) if t not in known]
        self.queue.extend(added)
        return added

    def postpone(self, tenant_id: str) -> None:
        """A tenant `step` handed out that cannot be deployed now (another operation holds it):
        back to the head of the queue, not counted against the batch."""
        if self.batch.pop(tenant_id, None) is not None:
            self.queue.insert(0, tenant_id)

    def deployed(self, tenant_id: str, now: float, error: str | None = None) -> None:
        """The deploy `step` asked for finished (error: why it failed)."""
        flight = self.batch.get(tenant_id)
        if flight is not None:
            flight.deployed, flight.error = True, error
            flight.last = f"deploy failed: {error}" if error else "deployed"

    def step(
        self,
        statuses: Mapping[str, RuntimeStatus],
        now: float,
        eligible: Iterable[str] | None = None,
    ) -> RolloutStep:
        """Judge the batch in flight with the statuses observed at `now`; when it settled, hand
        out the next one. `eligible`: tenants that should still run (others leave the rollout
        silently: deleted, stopped, suspended meanwhile)."""
        out = RolloutStep()
        if self.held_by is not None:
            return out
        if eligible is not None:
            keep = set(eligible)
            self.queue = [t for t in self.queue if t in keep]
            for tid in [t for t in self.batch if t not in keep]:
                del self.batch[tid]
        settled_now = False
        for tid, flight in list(self.batch.items()):
            verdict = self._judge(flight, statuses.get(tid), now)
            if verdict is None:
                continue
            settled_now = True
            del self.batch[tid]
            if isinstance(verdict, str):
                out.unhealthy[tid] = self.failed[tid] = self._batch_failed[tid] = verdict
            else:
                out.healthy.append(tid)
                self.done.append(tid)
        if self.batch:
            return out  # still settling
        if len(self._batch_failed) > self.policy.max_unhealthy:
            self.halted = (
                f"batch {self.batches}: {len(self._batch_failed)} bot(s) did not come up healthy "
                f"on the new spec ({_summary(self._batch_failed)}); {len(self.queue)} bot(s) "
                "left on their current version"
            )
            self.queue, self.left = [], self.queue
            out.halted = self.halted
            return out
        if settled_now:  # the batch in flight is complete: the next one is bigger
            self.next_size = (
                self.policy.batch_size
                if self.batches <= 1
                else min(self.policy.max_batch, self.next_size * 2)
            )
        if not self.queue:
            out.finished = settled_now
            return out
        if self.paused:
            return out
        out.deploy, self.queue = self.queue[: self.next_size], self.queue[self.next_size :]
        self.batches += 1
        self._batch_failed = {}
        for tid in out.deploy:
            self.batch[tid] = _InFlight(started=now)
        return out

    def _judge(
        self, flight: _InFlight, status: RuntimeStatus | None, now: float
    ) -> bool | str | None:
        """True: settled; a reason: unhealthy; None: not yet."""
        if flight.error is not None:
            return f"deploy failed: {flight.error}"
        if not flight.deployed:
            return None  # its deploy is still running (or was not reported)
        if status is not None and status.state is RuntimeState.RUNNING:
            if flight.restarts is None or status.restarts != flight.restarts:
                # First seen running, or restarted since (a crash): settling starts (again).
                flight.first_running, flight.restarts = now, status.restarts
            elif (
                flight.first_running is not None
                and now - flight.first_running >= self.policy.settle
            ):
                return True
            flight.last = f"running, restarts {status.restarts}"
        else:
            flight.first_running = None
            flight.last = (
                f"{status.state.value}: {status.detail}".rstrip(": ") if status else "missing"
            )
        if now - flight.started >= self.policy.timeout:
            return f"not settled within {self.policy.timeout:.0f} s ({flight.last})"
        return None

    def next_check(self, now: float) -> float | None:
        """When a step could next make progress (for the caller's wait), None when idle."""
        if self.halted is not None or self.held_by is not None or not self.active:
            return None
        if not self.batch:
            return None if self.paused else now
        times = []
        for flight in self.batch.values():
            times.append(flight.started + self.policy.timeout)
            if flight.first_running is not None:
                times.append(flight.first_running + self.policy.settle)
        return max(now, min(times))


def _summary(reasons: Mapping[str, str], limit: int = 3) -> str:
    shown = [f"{t}: {why}" for t, why in list(reasons.items())[:limit]]
    more = len(reasons) - limit
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
