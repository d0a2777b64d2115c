"""The reconciler: the database is the desired state, the runtime is made to match it.

`plan()` is the pure decision (tenant rows + what the backend, Redis and PostgreSQL report ->
actions); `Reconciler` does the I/O: it gathers the observations in a handful of calls, runs the
actions with bounded concurrency, and loops on an interval or when woken (`wake()`).

Rules:
- active and not running -> deploy (missing) or restart (crashed/stopped), with exponential
  backoff per tenant; after `alert_after` restarts without a stable run, an operator alert;
- stopped / suspended / failed and running -> stop;
- a runtime with no live tenant row -> removed (orphan); runtimes that exist are adopted;
- active, running, but made from another spec than `build_spec` gives now (a new client image,
  other limits, a re-created network: `backend.drifted`, checked on the first pass and then every
  `drift_interval`) -> deploy, which re-creates it, in batches gated on health
  (master_bot/rollout.py: one bot first, then growing batches, each once the last has run
  `settle` seconds without a restart; a batch that does not come up halts the rollout and alerts
  the operators); a stopped one is re-created by the restart itself (`deploy` replaces a
  container it cannot start: its network is gone);
- provisioning (not in progress here) -> provisioning resumes from its last step;
- with webhooks, the proxy's routes are rendered from the rows and the runtimes on every pass
  and loaded into Caddy when they changed (always on the first pass): a master that died
  after moving, starting or restarting a runtime but before publish() left a stale route;
- with webhooks, on a master's first pass only, each bot's webhook at Telegram is compared with
  what publish()/withdraw() would have left and set again or deleted where it differs (a
  master that died between a stop's deleteWebhook and the next start's setWebhook, or during
  a move between a polling and a webhook runtime); a failure waits for the next master start;
- Redis ACL users missing (Redis restarted) -> re-created from the encrypted password, disabled
  for suspended tenants; PostgreSQL logins follow the status the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from core.tenant_id import TENANT_ID_RE
from database.redis_tenants import create_tenant_redis_user, disable_tenant_redis_user
from database.roles import fleet_prefix
from database.tenants import disable_tenant_login, enable_tenant_login
from master_bot.alert import AlertKind
from master_bot.dbservers import tenant_admin
from master_bot.deploy.base import DeployError, RuntimeState, RuntimeStatus
from master_bot.deps import Deps
from master_bot.ingress import sync_routes, sync_webhooks
from master_bot.provision import Provisioner
from master_bot.rollout import Rollout, RolloutPolicy, RolloutStep
from master_bot.spec import build_spec
from master_bot.store import Step, TenantRecord, TenantStatus

log = logging.getLogger(__name__)

_NOT_RUNNING = (TenantStatus.STOPPED, TenantStatus.SUSPENDED, TenantStatus.FAILED)
SPEC_CHANGED = "spec changed"  # the detail of a drift re-deploy (these go through the rollout)


class Act(enum.StrEnum):
    DEPLOY = "deploy"
    RESTART = "restart"
    STOP = "stop"
    REMOVE = "remove"
    PROVISION = "provision"
    REDIS_USER = "redis_user"  # (re)create, enabled
    REDIS_USER_DISABLED = "redis_user_disabled"  # (re)create or switch off, for suspended
    PG_LOGIN = "pg_login"
    PG_NOLOGIN = "pg_nologin"
    ALERT = "alert"


@dataclass(frozen=True, slots=True)
class Action:
    act: Act
    tenant_id: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Backoff:
    first: float = 1.0
    factor: float = 2.0
    maximum: float = 300.0
    stable_after: float = 60.0  # a run this long forgets earlier crashes
    alert_after: int = 5  # restarts without a stable run = a crash loop

    def delay(self, failures: int) -> float:
        return min(self.maximum, self.first * self.factor ** max(0, failures - 1))


@dataclass(slots=True)
class Memory:
    """What the reconciler remembers about one tenant between passes."""

    failures: int = 0
    next_attempt: float = 0.0
    running_since: float | None = None
    seen_restarts: int = 0
    alerted: bool = False
    status: str = ""  # the tenant status these counts belong to
    drift_attempts: int = 0  # re-deploys for a changed spec that did not settle it yet
    next_drift: float = 0.0


@dataclass(frozen=True, slots=True)
class Observed:
    runtimes: Mapping[str, RuntimeStatus]
    redis_users: Mapping[str, bool]  # ACL user -> enabled
    pg_logins: Mapping[str, bool]  # tenant role -> can log in
    busy: frozenset[str] = frozenset()  # tenants an operation holds right now
    drifted: frozenset[str] = frozenset()  # running from another spec than build_spec's


@dataclass(slots=True)
class Plan:
    actions: list[Action] = field(default_factory=list)

    def add(self, act: Act, tenant_id: str, detail: str = "") -> None:
        self.actions.append(Action(act, tenant_id, detail))


def _crash_restart(
    plan: Plan, tid: str, memory: Memory, now: float, policy: Backoff, act: Act, why: str
) -> None:
    if now < memory.next_attempt:
        return
    memory.failures += 1
    memory.running_since = None
    memory.next_attempt = now + policy.delay(memory.failures)
    plan.add(act, tid, why)
    if memory.failures >= policy.alert_after and not memory.alerted:
        memory.alerted = True
        plan.add(Act.ALERT, tid, f"restarted {memory.failures} times without a stable run")


def plan(
    tenants: Sequence[TenantRecord],
    observed: Observed,
    memory: dict[str, Memory],
    now: float,
    policy: Backoff = Backoff(),
) -> list[Action]:
    """Decide what to do. Pure except for `memory` (backoff state), which it updates."""
    out = Plan()
    live: set[str] = set()
    for tenant in tenants:
        tid = tenant.tenant_id
        live.add(tid)
        if tid in observed.busy:
            continue
        status = tenant.status
        mem = memory.get(tid)
        if mem is None or mem.status != status.value:
            mem = memory[tid] = Memory(status=status.value)
        runtime = observed.runtimes.get(tid)
        state = runtime.state if runtime else RuntimeState.MISSING

        if status is TenantStatus.PROVISIONING:
            if now >= mem.next_attempt:
                mem.failures += 1
                mem.next_attempt = now + policy.delay(mem.failures)
                out.add(Act.PROVISION, tid, f"resume after step {tenant.provision_step.value}")
            continue

        if status is TenantStatus.ACTIVE:
            if state is RuntimeState.RUNNING:
                restarts = runtime.restarts if runtime else 0
                if restarts > mem.seen_restarts and mem.running_since is not None:
                    # The backend restarted it by itself (Docker restart policy): a crash.
                    mem.failures += restarts - mem.seen_restarts
                    mem.running_since = now
                    if mem.failures >= policy.alert_after and not mem.alerted:
                        mem.alerted = True
                        out.add(Act.ALERT, tid, f"restarted {mem.failures} times by the backend")
                mem.seen_restarts = restarts
                if mem.running_since is None:
                    mem.running_since = now
                elif now - mem.running_since >= policy.stable_after:
                    mem.failures, mem.alerted, mem.next_attempt = 0, False, 0.0
                if tid not in observed.drifted:
                    mem.drift_attempts, mem.next_drift = 0, 0.0
                elif now >= mem.next_drift:
                    mem.drift_attempts += 1
                    mem.next_drift = now + policy.delay(mem.drift_attempts)
                    out.add(Act.DEPLOY, tid, SPEC_CHANGED)
            elif state is RuntimeState.MISSING:
                _crash_restart(out, tid, mem, now, policy, Act.DEPLOY, "not running")
            else:
                detail = runtime.detail if runtime else ""
                _crash_restart(out, tid, mem, now, policy, Act.RESTART, f"{state}: {detail}")
        elif status in _NOT_RUNNING and state in (RuntimeState.RUNNING, RuntimeState.CRASHED):
            # CRASHED covers a runtime the backend keeps restarting (Docker's "restarting").
            out.add(Act.STOP, tid, f"{status.value} but {state.value}")

        if tenant.step_done(Step.REDIS) and tenant.redis_password_enc:
            enabled = observed.redis_users.get(tid)
            if status is TenantStatus.SUSPENDED:
                if enabled is None or enabled:
                    out.add(Act.REDIS_USER_DISABLED, tid)
            elif not enabled:
                out.add(Act.REDIS_USER, tid, "missing" if enabled is None else "disabled")
        if tenant.step_done(Step.DATABASE) and tid in observed.pg_logins:
            can_login = observed.pg_logins[tid]
            if status is TenantStatus.SUSPENDED and can_login:
                out.add(Act.PG_NOLOGIN, tid)
            elif status is not TenantStatus.SUSPENDED and not can_login:
                out.add(Act.PG_LOGIN, tid)

    for tid in observed.runtimes:
        if tid not in live and tid not in observed.busy:
            out.add(Act.REMOVE, tid, "no live tenant")
    for tid in list(memory):
        if tid not in live:
            del memory[tid]
    return out.actions


def parse_acl_list(lines: Iterable[str | bytes], prefix: str = "") -> dict[str, bool]:
    """`ACL LIST` lines -> {tenant id: enabled} for the users of one fleet (names
    `<prefix><tenant id>`, database/roles.py)."""
    users: dict[str, bool] = {}
    for raw in lines:
        line = raw.decode() if isinstance(raw, bytes) else raw
        parts = line.split()
        if len(parts) < 3 or parts[0] != "user" or not parts[1].startswith(prefix):
            continue
        tenant_id = parts[1].removeprefix(prefix)
        if TENANT_ID_RE.match(tenant_id):
            users[tenant_id] = "on" in parts[2:]
    return users


class Reconciler:
    def __init__(
        self,
        deps: Deps,
        provisioner: Provisioner,
        *,
        interval: float = 15.0,
        drift_interval: float = 300.0,
        policy: Backoff | None = None,
        concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
        rollout: RolloutPolicy | None = None,
    ) -> None:
        self.deps = deps
        self.provisioner = provisioner
        self.interval = interval
        self.drift_interval = drift_interval
        self._next_drift_check = 0.0
        self.policy = policy or Backoff()
        self.concurrency = concurrency
        self.clock = clock
        self.memory: dict[str, Memory] = {}
        self._wake = asyncio.Event()
        self._routes_known = False  # this reconciler loaded the proxy's routes once
        self._webhooks_known = False  # this reconciler compared the bots' webhooks once
        self.last_actions: list[Action] = []
        self.rollout = Rollout(rollout)

    def wake(self) -> None:
        self._wake.set()

    async def observe(self) -> Observed:
        deps = self.deps
        runtimes = await deps.backend.list()
        prefix = fleet_prefix(deps.config.fleet_name)
        acl = parse_acl_list(await deps.redis.acl_list(), prefix)
        async with deps.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname ~ ('^' || $1 || 'client_[0-9]+$')",
                prefix,
            )
        logins = {r["rolname"].removeprefix(prefix): bool(r["rolcanlogin"]) for r in rows}
        busy = frozenset(t for t in runtimes if deps.locks.busy(t))
        return Observed(runtimes, acl, logins, busy)

    async def run_once(self) -> list[Action]:
        """One pass: observe, decide, act. Returns the actions taken."""
        started = time.perf_counter()
        tenants = await self.deps.store.live()
        observed = await self.observe()
        busy = observed.busy | {t.tenant_id for t in tenants if self.deps.locks.busy(t.tenant_id)}
        drifted = await self._drifted(tenants, observed.runtimes, busy)
        observed = Observed(
            observed.runtimes, observed.redis_users, observed.pg_logins, busy, drifted
        )
        now = self.clock()
        planned = plan(tenants, observed, self.memory, now, self.policy)
        # Drift re-deploys go through the rollout: batches, each gated on the last one's health.
        self.rollout.offer(
            a.tenant_id for a in planned if a.act is Act.DEPLOY and a.detail == SPEC_CHANGED
        )
        actions = [a for a in planned if not (a.act is Act.DEPLOY and a.detail == SPEC_CHANGED)]
        active = (t.tenant_id for t in tenants if t.status is TenantStatus.ACTIVE)
        step = self.rollout.step(observed.runtimes, now, eligible=active)
        await self._rollout_news(step)
        rolled = {tid for tid in step.deploy if tid not in busy}
        actions += [Action(Act.DEPLOY, tid, SPEC_CHANGED) for tid in step.deploy if tid in rolled]
        for tid in set(step.deploy) - rolled:  # an operation holds it: a later pass retries
            self.rollout.postpone(tid)
        by_id = {t.tenant_id: t for t in tenants}
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(action: Action) -> None:
            async with semaphore:
                error = None
                try:
                    await self._act(action, by_id.get(action.tenant_id))
                except Exception as exc:
                    error = str(exc) or type(exc).__name__
                    self.deps.metrics.failed(f"reconcile_{action.act.value}")
                    log.warning(
                        "reconciler: %s %s failed: %s", action.act.value, action.tenant_id, exc
                    )
                if action.tenant_id in rolled and action.detail == SPEC_CHANGED:
                    self.rollout.deployed(action.tenant_id, self.clock(), error)

        await asyncio.gather(*(one(a) for a in actions))
        # The proxy's routes follow the runtimes on every pass, not only after this pass's
        # deploys: a master that died between a runtime's move (start, restart) and publish()
        # left a route to where the tenant was, and a live one's publish() may have failed.
        # Loaded only when they changed; on the first pass always (what the proxy holds then
        # is what an earlier master left).
        if not self._routes_known:
            self._routes_known = await sync_routes(self.deps, force=True)
        else:
            await sync_routes(self.deps)
        # The bots' webhooks at Telegram, once per master (a call per tenant): what an earlier
        # master's publish()/withdraw() would have left.
        if not self._webhooks_known:
            await sync_webhooks(self.deps, concurrency=self.concurrency)
            self._webhooks_known = True
        self.deps.metrics.reconciled(time.perf_counter() - started)
        self.last_actions = actions
        return actions

    async def _rollout_news(self, step: RolloutStep) -> None:
        """Log the rollout's progress; a halt is an operator alert."""
        for tid, why in step.unhealthy.items():
            log.warning("rollout: %s did not come up on the new spec: %s", tid, why)
        if step.deploy:
            log.info(
                "rollout: batch %d, %d bot(s) (%d waiting)",
                self.rollout.batches + (0 if self.rollout.batch else 1),
                len(step.deploy),
                len(self.rollout.queue),
            )
        if step.finished:
            log.info(
                "rollout finished: %d bot(s) on the new spec, %d unhealthy",
                len(self.rollout.done),
                len(self.rollout.failed),
            )
        if step.halted:
            text = (
                f"rollout halted: {step.halted}. Roll back (`make rollback`) or fix and "
                "`make up`; a master restart resumes it."
            )
            log.error("%s", text)
            await self.deps.alerts.alert(AlertKind.ROLLOUT_HALTED, None, text)
            await self.deps.store.audit("reconciler", None, "rollout.halted", {"why": step.halted})

    async def _drifted(
        self,
        tenants: Sequence[TenantRecord],
        runtimes: Mapping[str, RuntimeStatus],
        busy: frozenset[str],
    ) -> frozenset[str]:
        """Active running tenants whose runtime is not what build_spec gives now (checked on
        the first pass, then every drift_interval: it decrypts every tenant's secrets)."""
        now = self.clock()
        if now < self._next_drift_check:
            return frozenset()
        self._next_drift_check = now + self.drift_interval
        specs = {}
        for tenant in tenants:
            tid = tenant.tenant_id
            runtime = runtimes.get(tid)
            if (
                tenant.status is TenantStatus.ACTIVE
                and runtime is not None
                and runtime.state is RuntimeState.RUNNING
                and tid not in busy
            ):
                try:
                    specs[tid] = build_spec(self.deps.config, self.deps.box, tenant)
                except Exception as exc:  # a row that cannot make a spec is not drift
                    log.debug("reconciler: no spec for %s: %s", tid, type(exc).__name__)
        try:
            return frozenset(await self.deps.backend.drifted(specs))
        except DeployError as exc:
            log.warning("reconciler: cannot compare the runtimes with their specs: %s", exc)
            return frozenset()

    async def _act(self, action: Action, tenant: TenantRecord | None) -> None:
        deps = self.deps
        tid = action.tenant_id
        act = action.act
        if act is Act.PROVISION:
            await self.provisioner.complete(tid, actor="reconciler")
            return
        if act is Act.REMOVE:
            await deps.backend.remove(tid)
            deps.metrics.deployed("remove")
            await deps.store.audit("reconciler", None, "runtime.orphan_removed", {"tenant": tid})
            return
        if act is Act.ALERT:
            await deps.alerts.alert(
                AlertKind.CRASH_LOOP, tid, f"{tid} keeps crashing: {action.detail}"
            )
            await deps.store.audit(
                "reconciler", tid, "runtime.crash_loop", {"detail": action.detail}
            )
            return
        assert tenant is not None
        async with deps.locks(tid):
            # The row as it is now: an operation that held the lock meanwhile may have changed
            # it (a move to another PostgreSQL server changes the bot's DATABASE_URL).
            tenant = await deps.store.get(tid) or tenant
            if act in (Act.DEPLOY, Act.RESTART):
                log.info("reconciler: %s %s (%s)", act.value, tid, action.detail)
                try:
                    await deps.backend.deploy(build_spec(deps.config, deps.box, tenant))
                except DeployError:
                    deps.metrics.failed("deploy")
                    raise
                deps.metrics.deployed(act.value)
                await deps.store.audit(
                    "reconciler", tid, f"runtime.{act.value}", {"reason": action.detail}
                )
            elif act is Act.STOP:
                await deps.backend.stop(tid)
                deps.metrics.deployed("stop")
                await deps.store.audit("reconciler", tid, "runtime.stop", {"reason": action.detail})
            elif act in (Act.REDIS_USER, Act.REDIS_USER_DISABLED):
                assert tenant.redis_password_enc is not None
                await create_tenant_redis_user(
                    deps.redis,
                    tid,
                    server_url=deps.config.tenant_redis_url,
                    password=deps.box.decrypt(tid, tenant.redis_password_enc),
                    fleet=deps.config.fleet_name,
                    mark=deps.config.fleet_mark,
                )
                if act is Act.REDIS_USER_DISABLED:
                    await disable_tenant_redis_user(deps.redis, tid, deps.config.fleet_name)
            elif act in (Act.PG_LOGIN, Act.PG_NOLOGIN):
                async with tenant_admin(deps, tenant) as conn:
                    if act is Act.PG_LOGIN:
                        await enable_tenant_login(conn, tid, deps.config.fleet_name)
                    else:
                        await disable_tenant_login(conn, tid, deps.config.fleet_name)

    async def run(self) -> None:
        """Loop until cancelled: a pass per interval, or sooner when woken."""
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError, DeployError) as exc:
                log.warning("reconciler pass failed: %s", exc)
            except Exception:
                log.exception("reconciler pass failed")
            wait = self.interval
            due = self.rollout.next_check(self.clock())
            if due is not None:  # a batch settles sooner than the next pass
                wait = min(wait, max(1.0, due - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
