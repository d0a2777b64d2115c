"""Moving a tenant to another PostgreSQL server (docs/scaling.md), verified, crash-safe.

Under the tenant's lock (API calls, the reconciler and provisioning take turns on it):

1. the target must answer, and so must the source: a server that is down is a 503 before
   anything is touched, and the tenant keeps running where it is;
2. a row of `control.tenant_moves` says `copying` (source, target);
3. the bot is stopped (the deploy backend's stop, as the reconciler stops one), the tenant's
   login on the source disabled and its sessions closed (the owners' web writes as that role
   too), and its schema migrated to this code's version;
4. on the target: the login and owner roles and the schema made by the same primitive and
   migrations as provisioning (`create_tenant_database`, the same password), emptied of seed
   rows, then the data restored from `pg_dump --data-only` (database/pg_tools.py);
5. verified: per table, row count and md5 of the ordered row hashes, and every sequence's
   value, equal on both servers (`database.servers.schema_checksums`); the ledger by versions;
6. switched: `control.tenants.db_server` and the move's phase `switched`, in one transaction;
7. the bot started again (its DATABASE_URL now names the target, with its own role), and only
   then the old copy (schema and roles) dropped from the source; the move row deleted.

Redis (FSM state, throttling) is not touched: a dialog in flight continues after the move.

A move cut short is settled by the next move of that tenant, or when a master starts
(`settle_moves`): `copying` is rolled back (the
partial copy on the target is dropped — it never was the live one — the source login enabled
again) and `switched` is finished (the old copy dropped). Any failure before the switch rolls
back at once and the bot runs on the source again. The old copy is never dropped before the new
one is verified and switched to.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncpg

from core.logs import redact
from database import pg_tools
from database.identifiers import quote_ident
from database.migrator import migrate_tenant
from database.roles import fleet_mark, login_role
from database.servers import LEDGER, TableSum, prepare_server, schema_checksums
from database.tenants import (
    create_tenant_database,
    disable_tenant_login,
    drop_tenant_database,
    enable_tenant_login,
)
from master_bot.dbservers import (
    DEFAULT_SERVER,
    DbServer,
    Move,
    ServerStore,
    admin_dsn,
    admin_pool,
    server,
    tenant_admin,
)
from master_bot.deploy.base import DeployError, RuntimeState
from master_bot.deps import Deps
from master_bot.errors import ConflictError, MasterError, NotFoundError, UnavailableError
from master_bot.ingress import ensure_secret, publish
from master_bot.spec import build_spec, tenant_server_url
from master_bot.store import Step, TenantRecord, TenantStatus

log = logging.getLogger(__name__)

COPY_SECONDS = 1800.0  # pg_dump and pg_restore of one tenant, each


class ChecksumMismatchError(RuntimeError):
    """The copy on the target differs from the source."""


@dataclass(slots=True)
class MoveReport:
    tenant: TenantRecord
    source: str
    target: str
    moved: bool  # False: it was on the target already
    seconds: float = 0.0
    tables: dict[str, TableSum] = field(default_factory=dict)
    old_copy_dropped: bool = True

    @property
    def rows(self) -> int:
        return sum(s.rows for name, s in self.tables.items() if not name.startswith("sequence "))


async def move_to_server(deps: Deps, tenant_id: str, target: str, *, actor: str) -> MoveReport:
    """Move the tenant's schema, roles and data to server `target` (see the module's text)."""
    if await deps.store.get(tenant_id) is None:
        raise NotFoundError(f"no tenant {tenant_id}")
    dest = await server(deps, target)  # an unknown name: 404, before anything else
    store = ServerStore(deps.pool)
    async with deps.locks(tenant_id):
        await _settle(deps, store, tenant_id, actor=actor)
        tenant = await deps.store.get(tenant_id)
        assert tenant is not None
        if tenant.status in (TenantStatus.DELETED, TenantStatus.PROVISIONING) or not (
            tenant.step_done(Step.MIGRATIONS)
        ):
            raise ConflictError(
                "invalid_state",
                f"{tenant_id} is {tenant.status.value} (provisioned up to "
                f"{tenant.provision_step.value}); only a provisioned tenant moves between servers",
                details={"status": tenant.status.value},
            )
        source = tenant.db_server
        if source == target:
            return MoveReport(tenant, source, target, moved=False)
        # Both must answer before the bot is stopped (503 db_server_unavailable otherwise).
        source_pool = await admin_pool(deps, source)
        target_pool = await admin_pool(deps, target)
        started = time.perf_counter()
        await store.begin_move(tenant_id, source, target, actor=actor)
        runs = tenant.status is TenantStatus.ACTIVE
        try:
            if runs:
                await deps.backend.stop(tenant_id)
                deps.metrics.deployed("stop")
            sums = await _copy(deps, tenant, dest, source_pool, target_pool)
        except Exception as exc:
            reason = _describe(exc)
            log.warning("moving %s to %s failed, rolled back: %s", tenant_id, target, reason)
            await _roll_back(deps, store, tenant, target, actor=actor, reason=reason, start=runs)
            if isinstance(exc, ChecksumMismatchError):
                raise ConflictError(
                    "db_move_unverified",
                    f"{tenant_id}: the copy on {target!r} did not match ({reason}); it was "
                    f"dropped and the tenant runs on {source!r} as before",
                ) from None
            raise UnavailableError(
                "db_move_failed",
                f"{tenant_id}: the copy to {target!r} failed ({reason}); it was rolled back and "
                f"the tenant runs on {source!r} as before; retry when the cause is fixed",
            ) from None
        await store.switch(tenant_id, source, target, actor=actor)
        deps.on_change()
        switched = await deps.store.get(tenant_id)
        assert switched is not None
        if runs:
            await _start(deps, switched)
        dropped = await _drop_old_copy(deps, store, switched, source, actor=actor)
        seconds = time.perf_counter() - started
        log.info("moved %s from %s to %s in %.2f s", tenant_id, source, target, seconds)
        return MoveReport(switched, source, target, True, seconds, sums, dropped)


async def _copy(
    deps: Deps,
    tenant: TenantRecord,
    dest: DbServer,
    source_pool: asyncpg.Pool,
    target_pool: asyncpg.Pool,
) -> dict[str, TableSum]:
    tid, fleet = tenant.tenant_id, deps.config.fleet_name
    assert tenant.db_password_enc is not None
    password = deps.box.decrypt(tid, tenant.db_password_enc)
    async with source_pool.acquire() as conn:
        await disable_tenant_login(conn, tid, fleet)  # nothing writes during the copy
        await migrate_tenant(conn, tid, fleet=fleet)
        fleet_id = str(await conn.fetchval("SELECT id::text FROM control.fleet"))
    # The row as it will read once switched: the target's DSN for the bots.
    target_tenant = replace(
        tenant, db_server=dest.name, db_server_dsn_enc=dest.tenant_dsn_enc or dest.admin_dsn_enc
    )
    async with target_pool.acquire() as conn:
        if dest.name != DEFAULT_SERVER:  # the platform's own has the whole control schema
            await prepare_server(conn, fleet_id)
        await _drop_leftover(conn, tid, fleet, fleet_mark(fleet, fleet_id))
        await create_tenant_database(
            conn,
            tid,
            server_dsn=tenant_server_url(deps.config, deps.box, target_tenant),
            password=password,
            fleet=fleet,
        )
        await disable_tenant_login(conn, tid, fleet)  # until the switch
        await _empty(conn, tid)
        superuser = bool(
            await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        )
    source_dsn = admin_dsn(deps, await server(deps, tenant.db_server))
    target_dsn = admin_dsn(deps, dest)
    with tempfile.TemporaryDirectory(prefix="botfleet-move-") as folder:
        dump = Path(folder) / f"{tid}.dump"
        await pg_tools.run_pg_tool(
            pg_tools.PgServer(source_dsn),
            [
                pg_tools.pg_tool("pg_dump"),
                "--format=custom",
                "--data-only",
                f"--schema={tid}",
                f"--exclude-table={tid}.{LEDGER}",
                f"--file={dump}",
                f"--dbname={pg_tools.PgServer(source_dsn).url()}",
            ],
            what=f"pg_dump of {tid}",
            limit=COPY_SECONDS,
        )
        restore = [pg_tools.pg_tool("pg_restore"), "--data-only", "--single-transaction"]
        restore += ["--exit-on-error", "--no-owner"]
        if superuser:  # else the dump's order (foreign keys first) is relied on
            restore.append("--disable-triggers")
        restore += [f"--dbname={pg_tools.PgServer(target_dsn).url()}", str(dump)]
        await pg_tools.run_pg_tool(
            pg_tools.PgServer(target_dsn), restore, what=f"pg_restore of {tid}", limit=COPY_SECONDS
        )
    async with source_pool.acquire() as conn:
        before = await schema_checksums(conn, tid)
    async with target_pool.acquire() as conn:
        after = await schema_checksums(conn, tid)
        if before != after:
            differ = sorted(
                n for n in before.keys() | after.keys() if before.get(n) != after.get(n)
            )
            raise ChecksumMismatchError(f"differing: {', '.join(differ[:10])}")
        if tenant.status is not TenantStatus.SUSPENDED:
            await enable_tenant_login(conn, tid, fleet)
    return after


async def _drop_leftover(conn: asyncpg.Connection, tenant_id: str, fleet: str, mark: str) -> None:
    """What an interrupted copy left on the target (never the live copy: the tenant is not on
    this server). A role of that name carrying another fleet's mark is not ours: refused."""
    found = await conn.fetchval(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
        login_role(tenant_id, fleet),
    )
    exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", tenant_id)
    if found is not None and found != mark:
        raise ConflictError(
            "db_server_name_taken",
            f"role {login_role(tenant_id, fleet)} on the target belongs to another fleet",
        )
    if found is not None or exists:
        await drop_tenant_database(conn, tenant_id, drop_data=True, fleet=fleet)


async def _empty(conn: asyncpg.Connection, tenant_id: str) -> None:
    """Rows the migrations seeded on the new schema go: the restore brings the tenant's own."""
    tables = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace"
        " AND relkind IN ('r', 'p') AND relname <> $2",
        tenant_id,
        LEDGER,
    )
    if tables:
        q = quote_ident(tenant_id)
        names = ", ".join(f"{q}.{quote_ident(r['relname'])}" for r in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


async def _start(deps: Deps, tenant: TenantRecord) -> None:
    """Start the bot as the reconciler and placement moves do; a failure is the reconciler's
    to retry (the data is where the row says)."""
    try:
        tenant = await ensure_secret(deps, tenant)
        await deps.backend.deploy(build_spec(deps.config, deps.box, tenant))
        deps.metrics.deployed("deploy")
        await publish(deps, tenant)
    except DeployError as exc:
        deps.metrics.failed("deploy")
        await deps.store.record_error(
            tenant.tenant_id, str(exc), actor="master", action="runtime.failed"
        )
        deps.on_change()


async def _roll_back(
    deps: Deps,
    store: ServerStore,
    tenant: TenantRecord,
    target: str,
    *,
    actor: str,
    reason: str,
    start: bool,
) -> None:
    """Before the switch: the partial copy goes, the source is as it was, the bot runs."""
    tid, fleet = tenant.tenant_id, deps.config.fleet_name
    try:
        pool = await admin_pool(deps, target)
        async with pool.acquire() as conn:
            await drop_tenant_database(conn, tid, drop_data=True, fleet=fleet)
    except (MasterError, OSError, asyncpg.PostgresError) as exc:
        # Not the live copy; the next copy to that server drops it first.
        log.warning("%s: the partial copy on %s stays for now: %s", tid, target, exc)
    current = await deps.store.get(tid)
    assert current is not None
    if current.status is not TenantStatus.SUSPENDED:
        async with tenant_admin(deps, current) as conn:
            await enable_tenant_login(conn, tid, fleet)
    await store.end_move(
        tid,
        actor=actor,
        action="db_server.move_rolled_back",
        details={"from": current.db_server, "to": target, "reason": reason[:500]},
    )
    if start and current.status is TenantStatus.ACTIVE:
        await _start(deps, current)


async def _drop_old_copy(
    deps: Deps, store: ServerStore, tenant: TenantRecord, source: str, *, actor: str
) -> bool:
    """After the switch: the old schema and roles leave `source`; False when it cannot be
    reached now (the move row stays `switched`; the next move of the tenant finishes it)."""
    try:
        pool = await admin_pool(deps, source)
        async with pool.acquire() as conn:
            await drop_tenant_database(
                conn, tenant.tenant_id, drop_data=True, fleet=deps.config.fleet_name
            )
    except (MasterError, OSError, asyncpg.PostgresError) as exc:
        log.warning("%s: its old copy on %s is not dropped yet: %s", tenant.tenant_id, source, exc)
        return False
    await store.end_move(
        tenant.tenant_id,
        actor=actor,
        action="db_server.moved",
        details={"from": source, "to": tenant.db_server},
    )
    return True


async def settle_moves(deps: Deps) -> int:
    """At master start: every move a previous master left behind is finished or rolled back
    (each under its tenant's lock, as the next move of that tenant would); returns how many.
    One that cannot be settled now (a server down) is logged and left for the next try."""
    store = ServerStore(deps.pool)
    settled = 0
    for tenant_id in await store.pending_moves():
        try:
            async with deps.locks(tenant_id):
                await _settle(deps, store, tenant_id, actor="master")
            settled += 1
        except (MasterError, OSError, asyncpg.PostgresError) as exc:
            log.warning("%s: a move cut short is not settled yet: %s", tenant_id, exc)
    return settled


async def _settle(deps: Deps, store: ServerStore, tenant_id: str, *, actor: str) -> None:
    """Finish or roll back a move of this tenant that was cut short."""
    move: Move | None = await store.move_of(tenant_id)
    if move is None:
        return
    tenant = await deps.store.get(tenant_id)
    assert tenant is not None
    log.info("%s: settling a move %s -> %s cut short (%s)", *_fields(move))
    if move.phase == "switched":
        if not await _drop_old_copy(deps, store, tenant, move.source, actor=actor):
            raise UnavailableError(
                "db_server_unavailable",
                f"{tenant_id} runs on {move.target!r}; its old copy on {move.source!r} could not "
                "be dropped yet (that server does not answer): retry when it does",
                details={"db_server": move.source},
            )
        return
    # The bot was stopped for the copy; the reconciler may have started it again since.
    try:
        running = (await deps.backend.status(tenant_id)).state is RuntimeState.RUNNING
    except DeployError:
        running = False
    await _roll_back(
        deps, store, tenant, move.target, actor=actor, reason="cut short", start=not running
    )


def _fields(move: Move) -> tuple[str, str, str, str]:
    return move.tenant_id, move.source, move.target, move.phase


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MasterError):
        return exc.message
    return redact(str(exc) or type(exc).__name__)[:800]
