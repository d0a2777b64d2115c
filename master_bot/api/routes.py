"""The route table: one list drives both the aiohttp router and the OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from master_bot.api import handlers as h
from master_bot.api.errors import Handler
from master_bot.api.models import (
    DbMoveIn,
    DbMoveOut,
    DbServerIn,
    DbServerList,
    DbServerOut,
    DbServerPatch,
    DeletedOut,
    DeleteQuery,
    ExtendIn,
    HealthOut,
    HealthQuery,
    ListQuery,
    LogsQuery,
    PlacementIn,
    PlacementOut,
    PlanIn,
    ProvisionIn,
    TenantOut,
    TenantPage,
    UpgradeIn,
    UpgradeOut,
)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    ok: int = 200
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    idempotency_key: bool = False
    public: bool = False
    content_type: str = "application/json"
    errors: tuple[int, ...] = field(default=(401, 404))


TENANT = "/api/v1/tenants/{tenant_id}"

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/v1/tenants",
        h.create_tenant,
        "Provision a tenant (or return the one already provisioned for this Idempotency-Key)",
        ok=201,
        response=TenantOut,
        body=ProvisionIn,
        idempotency_key=True,
        errors=(400, 401, 409, 415, 422, 503),
    ),
    Route(
        "GET",
        "/api/v1/tenants",
        h.list_tenants,
        "List tenants (filter by status and plan, paged)",
        response=TenantPage,
        query=ListQuery,
        errors=(401, 422),
    ),
    Route("GET", TENANT, h.get_tenant, "A tenant with its runtime state", response=TenantOut),
    Route(
        "POST",
        TENANT + "/extend",
        h.extend_tenant,
        "Extend the subscription (resumes a suspended tenant)",
        response=TenantOut,
        body=ExtendIn,
        idempotency_key=True,
        errors=(400, 401, 404, 409, 415, 422, 503),
    ),
    Route(
        "POST",
        TENANT + "/plan",
        h.change_tenant_plan,
        "Change the plan (once per Idempotency-Key); the bot is re-deployed with the new plan's"
        " features",
        response=TenantOut,
        body=PlanIn,
        idempotency_key=True,
        errors=(400, 401, 404, 409, 415, 422, 503),
    ),
    *(
        Route(
            "POST",
            f"{TENANT}/{action}",
            handler,
            summary,
            response=TenantOut,
            errors=(401, 404, 409, 503),
        )
        for action, handler, summary in (
            ("start", h.start_tenant, "Start the bot (status active)"),
            ("stop", h.stop_tenant, "Stop the bot (status stopped)"),
            ("restart", h.restart_tenant, "Restart the bot of an active tenant"),
            ("suspend", h.suspend_tenant, "Suspend: bot stopped, logins disabled, data kept"),
            ("resume", h.resume_tenant, "Resume a suspended tenant"),
        )
    ),
    Route(
        "POST",
        TENANT + "/placement",
        h.move_tenant,
        "Move the bot between placements (dedicated runtime / shared hub): the old runtime is"
        " stopped and confirmed stopped before the new one starts; data and dialogs are kept",
        response=PlacementOut,
        body=PlacementIn,
        errors=(400, 401, 404, 409, 415, 422, 503),
    ),
    Route(
        "POST",
        TENANT + "/db-server",
        h.move_tenant_db,
        "Move the tenant's schema, roles and data to another registered PostgreSQL server: the"
        " bot stops briefly, the copy is verified by per-table checksums before the switch, the"
        " old copy is dropped only after (503 db_server_unavailable: nothing was changed)",
        response=DbMoveOut,
        body=DbMoveIn,
        errors=(400, 401, 404, 409, 415, 422, 503),
    ),
    Route(
        "GET",
        "/api/v1/db-servers",
        h.list_db_servers,
        "The PostgreSQL servers tenants are placed on, with their load (live tenants)",
        response=DbServerList,
        errors=(401,),
    ),
    Route(
        "POST",
        "/api/v1/db-servers",
        h.register_db_server,
        "Register a PostgreSQL server for tenants (admin DSN stored encrypted); new tenants go to"
        " the least loaded server",
        ok=201,
        response=DbServerOut,
        body=DbServerIn,
        errors=(400, 401, 409, 415, 422, 503),
    ),
    Route(
        "PATCH",
        "/api/v1/db-servers/{db_server}",
        h.patch_db_server,
        "Open or close a PostgreSQL server to new tenants (accepting); its tenants stay",
        response=DbServerOut,
        body=DbServerPatch,
        errors=(400, 401, 404, 415, 422),
    ),
    Route(
        "DELETE",
        TENANT,
        h.delete_tenant,
        "Delete the tenant and its data, after a final backup unless backup=false",
        response=DeletedOut,
        query=DeleteQuery,
        errors=(401, 404, 422, 503),
    ),
    Route(
        "GET",
        TENANT + "/logs",
        h.tenant_logs,
        "The last lines of the bot's log (redacted)",
        query=LogsQuery,
        content_type="text/plain",
        errors=(401, 404, 422, 503),
    ),
    Route(
        "POST",
        "/api/v1/upgrades",
        h.start_upgrade,
        "Start rolling a client image over every dedicated bot and hub, in batches gated on"
        " health, after pending tenant migrations (409 while one is current; 422 for an image"
        " the engine does not have, refused before anything is touched)",
        ok=202,
        response=UpgradeOut,
        body=UpgradeIn,
        errors=(400, 401, 409, 415, 422),
    ),
    Route(
        "GET",
        "/api/v1/upgrades/current",
        h.current_upgrade,
        "The current (or last) upgrade's progress: total, done, in flight, failed, state",
        response=UpgradeOut,
        errors=(401, 404),
    ),
    *(
        Route(
            "POST",
            f"/api/v1/upgrades/current/{action}",
            handler,
            summary,
            response=UpgradeOut,
            errors=(401, 404, 409),
        )
        for action, handler, summary in (
            ("pause", h.pause_upgrade, "Pause: the batch in flight settles, no new batch starts"),
            (
                "resume",
                h.resume_upgrade,
                "Resume a paused or halted upgrade (a halted batch's failed units are retried)",
            ),
            (
                "rollback",
                h.rollback_upgrade,
                "Re-deploy the units already upgraded on the previous image, in batches",
            ),
        )
    ),
    Route(
        "GET",
        "/health",
        h.health,
        "Checks PostgreSQL, Redis, the deploy backend and that every active tenant's bot runs"
        " (503 and status degraded otherwise; fleet=false: the dependencies only)",
        response=HealthOut,
        query=HealthQuery,
        public=True,
        errors=(503,),
    ),
    Route(
        "GET",
        "/metrics",
        h.metrics,
        "Prometheus metrics (text format); bearer MASTER_API_TOKEN or METRICS_TOKEN",
        content_type="text/plain",
        errors=(401,),
    ),
    Route(
        "GET",
        "/openapi.json",
        h.openapi,
        "This document",
        public=True,
        errors=(),
    ),
)
