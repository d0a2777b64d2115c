"""Updates by webhook (docs/scaling.md): Telegram -> Caddy -> the tenant's bot.

With WEBHOOK_BASE_URL set, the master owns each bot's webhook:

- a random `secret_token` per tenant, generated once and stored encrypted
  (`control.tenants.webhook_secret_enc`, core/secrets.py), given to the bot as WEBHOOK_SECRET;
- the URL `<WEBHOOK_BASE_URL>/tg/<tenant_id>` (never the token), set with `setWebhook` once the
  bot's runtime is up, removed with `deleteWebhook` when it stops, is suspended or removed (the
  updates Telegram keeps meanwhile are delivered when the webhook is set again);
- Caddy's routes: one `handle /tg/<tenant_id>` per tenant served by webhook, to its runtime's
  address (a dedicated bot's own, or the webhook server of the hub container it is in, as the
  backend says), rendered as a whole Caddyfile, written to `<CLIENTS_DIR>/caddy/Caddyfile` and loaded
  through Caddy's admin API (`POST /load`, the same as `caddy reload`). Any other path is 404
  at the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from master_bot.deploy.docker import container_name
from master_bot.deps import Deps, MasterConfig
from master_bot.errors import UnavailableError
from master_bot.spec import placement, serves_webhook, webhook_listen, webhook_url
from master_bot.store import TenantRecord, TenantStatus
from master_bot.telegram import TelegramUnavailableError, TokenRejectedError

log = logging.getLogger(__name__)

CADDYFILE = Path("caddy") / "Caddyfile"  # under CLIENTS_DIR
_loaded: dict[Path, str] = {}  # the routes this master loaded last, by Caddyfile path
# One render-and-load at a time (per event loop): two tenants provisioned at once each rendered
# the routes without the other and the last load dropped the first one's route.
_reloading: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def upstream(
    config: MasterConfig, tenant: TenantRecord, decided: Mapping[str, str] | None = None
) -> str | None:
    """Where the proxy reaches the tenant's bot: a process on its own local port, a container
    by its name on the client network; a hub's tenant at its hub's webhook server (`decided`,
    from the backend's `webhook_upstreams`), None while it is in no hub."""
    if placement(config, tenant) == "shared":
        return (decided or {}).get(tenant.tenant_id)
    if config.webhook_port_base:
        return webhook_listen(config, tenant)
    return f"{container_name(tenant.tenant_id, config.fleet_name)}:8080"


def render_caddyfile(config: MasterConfig, routes: Mapping[str, str]) -> str:
    """The whole proxy configuration: a route per tenant (exact path), 404 for anything else.
    The site address is WEBHOOK_PROXY_LISTEN: a domain gets Caddy's automatic HTTPS, `:port`
    plain HTTP (a TLS terminator in front, or tests)."""
    admin = urlsplit(config.caddy_admin_url).netloc
    lines = ["{", f"\tadmin {admin}", "}", "", f"{config.webhook_proxy_listen} {{"]
    lines += ["\trequest_body {", "\t\tmax_size 1MB", "\t}"]
    for tenant_id, address in sorted(routes.items()):
        lines += [f"\thandle /tg/{tenant_id} {{", f"\t\treverse_proxy {address}", "\t}"]
    lines += ["\thandle {", "\t\trespond 404", "\t}", "}", ""]
    return "\n".join(lines)


async def ensure_secret(deps: Deps, tenant: TenantRecord) -> TenantRecord:
    """The tenant's webhook secret, generated and stored (encrypted) the first time."""
    if not deps.config.webhook_base_url or tenant.webhook_secret_enc is not None:
        return tenant
    sealed = deps.box.encrypt(tenant.tenant_id, secrets.token_urlsafe(32))
    return await deps.store.set_secret(tenant.tenant_id, "webhook_secret_enc", sealed)


async def reload_routes(
    deps: Deps,
    *,
    add: TenantRecord | None = None,
    drop: str | None = None,
    only_changed: bool = False,
) -> str:
    """Render the routes of every active tenant served by webhook, and of those still
    provisioning once their runtime has its address (`add`: one whose address must be there;
    without `drop`, one stopping), and load them into Caddy (`only_changed`: not when they are
    what was loaded last). One at a time: each load has every route its rendering saw."""
    lock = _reloading.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        return await _reload_routes(deps, add=add, drop=drop, only_changed=only_changed)


async def _reload_routes(
    deps: Deps, *, add: TenantRecord | None, drop: str | None, only_changed: bool
) -> str:
    config = deps.config
    backend = getattr(deps, "backend", None)
    decided = await asyncio.to_thread(backend.webhook_upstreams) if backend is not None else {}
    serving = (TenantStatus.ACTIVE, TenantStatus.PROVISIONING)
    rows = [t for t in await deps.store.live() if t.status in serving]
    if add is not None:
        rows = [t for t in rows if t.tenant_id != add.tenant_id] + [add]
    routes: dict[str, str] = {}
    for tenant in rows:
        if serves_webhook(config, tenant):
            address = upstream(config, tenant, decided)
            if address is not None:
                routes[tenant.tenant_id] = address
            elif tenant is add:
                raise UnavailableError(
                    "proxy_failed",
                    f"{tenant.tenant_id}: no webhook route (in no hub, or its hub serves none)",
                )
    if drop is not None:
        routes.pop(drop, None)
    text = render_caddyfile(config, routes)
    path = config.clients_dir / CADDYFILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if only_changed and _loaded.get(path) == text:
        return text
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
            http.post(
                f"{config.caddy_admin_url}/load",
                data=text.encode(),
                headers={"Content-Type": "text/caddyfile"},
            ) as response,
        ):
            if response.status != 200:
                detail = (await response.text())[:300]
                raise UnavailableError(
                    "proxy_failed", f"Caddy refused the routes ({response.status}): {detail}"
                )
    except aiohttp.ClientError as exc:
        raise UnavailableError("proxy_unavailable", f"Caddy's admin API: {exc}") from None
    _loaded[path] = text
    return text


async def publish(deps: Deps, tenant: TenantRecord) -> None:
    """After the tenant's runtime was (re)started or moved: its route and its webhook, or, when
    it polls (a hub process), no webhook (Telegram refuses getUpdates while one is set)."""
    config = deps.config
    if not config.webhook_base_url or not tenant.bot_token_enc:
        return
    token = deps.box.decrypt(tenant.tenant_id, tenant.bot_token_enc)
    try:
        if serves_webhook(config, tenant):
            await reload_routes(deps, add=tenant)
        await _point_webhook(deps, tenant, token)
    except (TelegramUnavailableError, TokenRejectedError) as exc:
        raise UnavailableError("webhook_failed", f"{tenant.tenant_id}: {exc}") from None


async def _point_webhook(deps: Deps, tenant: TenantRecord, token: str) -> None:
    """Publish's call to Telegram: setWebhook to the tenant's URL with its own secret, or, when
    it polls, deleteWebhook."""
    config = deps.config
    if serves_webhook(config, tenant):
        assert tenant.webhook_secret_enc is not None
        await deps.telegram.set_webhook(
            token,
            webhook_url(config, tenant.tenant_id),
            deps.box.decrypt(tenant.tenant_id, tenant.webhook_secret_enc),
        )
    else:
        await deps.telegram.delete_webhook(token)


async def withdraw(deps: Deps, tenant: TenantRecord) -> None:
    """The tenant's bot stops (stop, suspension, removal): no webhook, no route."""
    if not deps.config.webhook_base_url or not tenant.bot_token_enc:
        return
    token = deps.box.decrypt(tenant.tenant_id, tenant.bot_token_enc)
    try:
        await deps.telegram.delete_webhook(token)
    except TokenRejectedError:
        pass  # a revoked token has no webhook to remove
    except TelegramUnavailableError as exc:
        raise UnavailableError("webhook_failed", f"{tenant.tenant_id}: {exc}") from None
    try:
        await reload_routes(deps, drop=tenant.tenant_id)
    except UnavailableError as exc:  # a stale route only reaches a stopped bot
        log.warning("routes not reloaded after %s stopped: %s", tenant.tenant_id, exc)


async def sync_routes(deps: Deps, *, force: bool = False) -> bool:
    """Each reconciler pass: a hub's tenant may be in another hub now (a move finished, a
    tenant re-assigned), or a master died before publish() routed a moved, started or
    restarted runtime, so the routes are rendered again and loaded when they changed (`force`:
    loaded anyway, as on a master's first pass, when Caddy holds what another master left).
    A failure is logged and returns False: the next pass tries again."""
    if not deps.config.webhook_base_url:
        return True
    try:
        await reload_routes(deps, only_changed=not force)
    except UnavailableError as exc:
        log.warning("routes not reloaded by the reconciler: %s", exc)
        return False
    return True


@dataclass(slots=True)
class WebhookSync:
    """What one `sync_webhooks` did, by tenant count."""

    checked: int = 0
    set_again: int = 0
    deleted: int = 0
    failed: int = 0  # Telegram unavailable for it, or its token rejected
    skipped: int = 0  # an operation held it, it has no route yet, or Telegram was given up on


def wanted_webhook(config: MasterConfig, tenant: TenantRecord) -> str | None:
    """The webhook URL publish()/withdraw() leave the tenant's bot with: its URL while active
    and served by webhook, "" (none) while active and polling, stopped or suspended; None when
    neither applies (provisioning, failed, no token)."""
    if not config.webhook_base_url or not tenant.bot_token_enc:
        return None
    if tenant.status is TenantStatus.ACTIVE:
        return webhook_url(config, tenant.tenant_id) if serves_webhook(config, tenant) else ""
    if tenant.status in (TenantStatus.STOPPED, TenantStatus.SUSPENDED):
        return ""
    return None


async def sync_webhooks(deps: Deps, *, concurrency: int = 8) -> WebhookSync:
    """A master's first reconciler pass: Telegram's webhook of every tenant made what
    publish()/withdraw() would have left (the last master may have died between a stop's
    deleteWebhook and the next start's setWebhook, or in a move between a polling runtime and a
    webhook one). getWebhookInfo per tenant (`concurrency` at a time); a URL that differs is
    set again through publish()'s own call (the secret cannot be read back: a matching URL is
    trusted), a webhook left on a stopped or suspended bot deleted as withdraw() does, both
    under the tenant's lock on its row read again. Tenants an operation holds are left to it; a
    tenant whose route is not there yet (in no hub) keeps what it has. A revoked token or a Telegram failure is logged and skipped; after
    `concurrency` failures in a row Telegram is given up on until the next master start."""
    result = WebhookSync()
    config = deps.config
    if not config.webhook_base_url:
        return result
    backend = getattr(deps, "backend", None)
    try:
        decided = await asyncio.to_thread(backend.webhook_upstreams) if backend else {}
    except Exception as exc:  # the hubs cannot say: every hub tenant is skipped
        log.warning("webhooks: the hubs' routes are unknown: %s", exc)
        decided = {}
    semaphore = asyncio.Semaphore(concurrency)
    failures_in_a_row = 0

    async def one(tenant: TenantRecord) -> None:
        nonlocal failures_in_a_row
        tid = tenant.tenant_id
        wanted = wanted_webhook(config, tenant)
        if wanted is None or tenant.bot_token_enc is None:
            return
        async with semaphore:
            if failures_in_a_row >= concurrency or deps.locks.busy(tid):
                result.skipped += 1
                return
            try:
                token = deps.box.decrypt(tid, tenant.bot_token_enc)
                current = await deps.telegram.webhook_url(token)
                result.checked += 1
                if current == wanted:
                    failures_in_a_row = 0
                    return
                async with deps.locks(tid):
                    # The row as it is now: an operation may have published or withdrawn it.
                    now = await deps.store.get(tid)
                    wanted = None if now is None else wanted_webhook(config, now)
                    if now is None or wanted is None or now.bot_token_enc != tenant.bot_token_enc:
                        result.skipped += 1
                        return
                    if wanted and upstream(config, now, decided) is None:
                        result.skipped += 1  # in no hub yet: no route for its webhook
                        return
                    if wanted:
                        await _point_webhook(deps, now, token)
                        result.set_again += 1
                    else:
                        await deps.telegram.delete_webhook(token)
                        result.deleted += 1
                had = "no webhook" if not current else "a webhook" if not wanted else "another URL"
                log.info(
                    "webhooks: %s (%s) had %s: %s",
                    tid,
                    now.status.value,
                    had,
                    "set again" if wanted else "deleted",
                )
                failures_in_a_row = 0
            except TokenRejectedError as exc:
                result.failed += 1
                log.warning("webhooks: %s not synced: %s", tid, exc)
            except TelegramUnavailableError as exc:
                result.failed += 1
                failures_in_a_row += 1
                log.warning("webhooks: %s not synced: %s", tid, exc)
            except Exception as exc:  # one tenant's row (its secrets) fails it alone
                result.failed += 1
                log.warning("webhooks: %s not synced: %s", tid, type(exc).__name__)

    await asyncio.gather(*(one(tenant) for tenant in await deps.store.live()))
    if result.set_again or result.deleted or result.failed or result.skipped:
        log.log(
            logging.WARNING if result.failed or result.skipped else logging.INFO,
            "webhooks synced: %d checked, %d set, %d deleted, %d failed, %d skipped",
            result.checked,
            result.set_again,
            result.deleted,
            result.failed,
            result.skipped,
        )
    return result
