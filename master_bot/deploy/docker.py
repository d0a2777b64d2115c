"""DockerBackend: one hardened container per tenant on a Docker Engine (docs/architecture.md).

Each tenant runs in a container named `botfleet-<tenant_id>` from the client image, with exactly
the `ClientSpec` environment and these limits: read-only root with a tmpfs on /tmp, every
capability dropped, no-new-privileges, memory/CPU/pids caps, a non-root user, no volumes (and
never the Docker socket), and the configured network.

Network: by default a user-defined bridge network, `botfleet-clients`, which the backend creates
(labelled) when it is missing; a tenant container has its own network namespace, so the host's
loopback services (a PostgreSQL that trusts 127.0.0.1, say) are out of its reach, and it reaches
PostgreSQL/Redis/Telegram through the addresses of TENANT_DATABASE_URL & co., which must be
reachable from that network (a service name on compose's network, the gateway address of the
bridge). `host` shares the host's network stack, loopback included: used only when set
explicitly, with a warning.

Fleet: the `fleet` name (FLEET_NAME) is a label on every container (`botfleet.fleet=<name>`), and
`list()` sees only the containers of its own fleet, so two masters on one engine never adopt or
remove each other's bots (and `make down` stops only its own fleet's). The default fleet's
containers are named `botfleet-<tenant_id>`, another fleet's `botfleet-<fleet>-<tenant_id>`.

The container carries labels: `botfleet.tenant=<id>`, `botfleet.managed=true`,
`botfleet.fleet=<fleet>` (how `list()` adopts containers after a master restart) and
`botfleet.spec-hash`, a digest of everything that shapes the container (image id, environment,
labels, limits, network). `deploy()` with an unchanged spec leaves the container alone; with a
changed one (a new token, a rebuilt image, other limits) it replaces it, and also when the
container's network is gone or was re-created under the same name (`compose down` + `up`): a
stopped container points at the old network id and could never start again.

Restart policy: `on-failure` with a few retries by default. Docker absorbs a quick crash at once
(the restart count shows it, and the reconciler counts it); a bot that keeps failing ends
`exited` with a non-zero code, i.e. CRASHED, and from then on only the master's reconciler
restarts it, with its backoff and operator alerts. `unless-stopped` would restart forever and
race the reconciler; it can still be chosen.

Every Docker SDK call is blocking: it runs in a worker thread under `asyncio.wait_for`, at most
`max_concurrency` at a time. Errors become `DeployError` with what failed and what to do; the
environment (bot token, passwords) is never part of a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from core.logs import redact
from core.tenant_id import TENANT_ID_RE, validate_tenant_id
from master_bot.deploy.base import (
    ClientSpec,
    DeployBackend,
    DeployError,
    RuntimeState,
    RuntimeStatus,
)

log = logging.getLogger(__name__)

CONTAINER_PREFIX = "botfleet-"
LABEL_TENANT = "botfleet.tenant"
LABEL_MANAGED = "botfleet.managed"
LABEL_SPEC = "botfleet.spec-hash"
LABEL_IMAGE = "botfleet.image"
LABEL_FLEET = "botfleet.fleet"
LABEL_NETWORK = "botfleet.network"  # on the networks this backend creates
LABEL_HUB = "botfleet.hub"  # on hub containers (DockerHubs) instead of botfleet.tenant
_OURS = (LABEL_TENANT, LABEL_MANAGED, LABEL_SPEC, LABEL_IMAGE, LABEL_FLEET, LABEL_HUB)
DEFAULT_FLEET = "botfleet"
DEFAULT_NETWORK = "botfleet-clients"
FLEET_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}\Z")
_UNMANAGED_NETWORKS = {"host", "none", "bridge"}  # the engine's own; never created here
_SIGTERM_EXIT = 128 + 15  # terminated on request (docker stop), not a crash
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_ROOT_USERS = {"", "0", "root", "0:0", "root:root"}

HUB_NAME_RE = re.compile(r"hub-[0-9]{1,6}\Z")  # as master_bot.deploy.hub.HUB_RE
HUB_MOUNT = "/hub"  # where a hub container sees its folder (HUB_DIR)
HUB_WEBHOOK_PORT = 8080  # a hub container's webhook server, in its own network namespace
HUB_UID_BASE = 1_890_000_000  # hub-<n> runs as uid HUB_UID_BASE + n (below the process bots')

RestartPolicy = Literal["on-failure", "unless-stopped", "always", "no"]
ClientFactory = Callable[[], docker.DockerClient]
T = TypeVar("T")


def container_name(tenant_id: str, fleet: str = DEFAULT_FLEET) -> str:
    """`botfleet-<tenant_id>` (the default fleet), `botfleet-<fleet>-<tenant_id>` (another)."""
    tenant_id = validate_tenant_id(tenant_id)
    if fleet == DEFAULT_FLEET:
        return f"{CONTAINER_PREFIX}{tenant_id}"
    return f"{CONTAINER_PREFIX}{fleet}-{tenant_id}"


def validate_fleet(fleet: str) -> str:
    if not FLEET_RE.match(fleet):
        raise ValueError(
            f"fleet name {fleet!r}: 1-20 characters, a lowercase letter first, then lowercase "
            "letters, digits or _"
        )
    return fleet


def _stale_network(exc: BaseException) -> bool:
    """Docker's answer to starting a container whose network no longer exists."""
    text = str(getattr(exc, "explanation", None) or exc).lower()
    return "network" in text and "not found" in text


def recreate_reason(exc: BaseException) -> str | None:
    """Why a container that failed to start should be re-created rather than started again, or
    None when the failure is not the container's (then it is reported as it is)."""
    if _stale_network(exc):
        return "its network no longer exists"
    if isinstance(exc, APIError) and exc.is_server_error():
        return f"the engine could not start it ({_explain(exc, ())})"
    return None


def docker_client_factory(base_url: str | None = None, *, timeout: float = 30.0) -> ClientFactory:
    """A factory for `DockerBackend`: `base_url`, else DOCKER_HOST & co. (`docker.from_env`)."""

    def make() -> docker.DockerClient:
        url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
            # Checked here: the SDK would leak a socket on the failed connect.
            raise DockerException(f"no Docker socket at {url.removeprefix('unix://')}")
        if base_url:
            return docker.DockerClient(base_url=base_url, timeout=int(timeout) or 1)
        return docker.from_env(timeout=int(timeout) or 1)

    return make


def _listing(client: docker.DockerClient, fleet: str, kind: str) -> Callable[[], list[Container]]:
    """Lists a fleet's containers of one kind (`kind`: the label that names the runtime,
    botfleet.tenant or botfleet.hub; the engine filters on its presence)."""

    def containers() -> list[Container]:
        labels = [f"{LABEL_MANAGED}=true", f"{LABEL_FLEET}={fleet}", kind]
        found: list[Container] = client.containers.list(
            all=True, filters={"label": labels}, ignore_removed=True
        )
        return found

    return containers


def _secrets_of(env: Mapping[str, str]) -> list[str]:
    """Values that must never appear in a message: every env value, and DSN passwords."""
    found = [value for value in env.values() if len(value) >= 6]
    for value in env.values():
        if "://" in value:
            with contextlib.suppress(ValueError):
                password = urlsplit(value).password
                if password:
                    found.append(password)
    return found


class DockerBackend(DeployBackend):
    """Client bots as containers of one Docker Engine (local now, a Swarm manager later)."""

    name = "docker"

    def __init__(
        self,
        image: str,
        *,
        network: str = DEFAULT_NETWORK,
        fleet: str = DEFAULT_FLEET,
        memory: str = "384m",  # the bot uses ~170-190 MiB (measured); room for peaks
        nano_cpus: int = 1_000_000_000,
        pids_limit: int = 128,
        restart_policy: RestartPolicy = "on-failure",
        restart_retries: int = 3,
        tmpfs_size: str = "64m",
        user: str | None = None,
        stop_timeout: int = 10,
        call_timeout: float = 30.0,
        max_concurrency: int = 8,
        log_max_size: str = "10m",
        log_max_files: int = 3,
        client_factory: ClientFactory | None = None,
    ) -> None:
        if not image:
            raise ValueError("DockerBackend needs an image (CLIENT_IMAGE)")
        if pids_limit < 16 or nano_cpus <= 0 or call_timeout <= 0 or stop_timeout < 0:
            raise ValueError("pids_limit >= 16, nano_cpus > 0, call_timeout > 0, stop_timeout >= 0")
        if not network:
            raise ValueError("DockerBackend needs a network (CLIENT_NETWORK)")
        self.image = image
        self.network = network
        self.fleet = validate_fleet(fleet)
        if network == "host":
            log.warning(
                "client containers use the host's network (CLIENT_NETWORK=host): they share its "
                "loopback, so every service listening on 127.0.0.1 is within their reach"
            )
        self.memory = memory
        self.nano_cpus = nano_cpus
        self.pids_limit = pids_limit
        self.restart_policy = restart_policy
        self.restart_retries = restart_retries
        self.tmpfs_size = tmpfs_size
        self.user = user
        self.stop_timeout = stop_timeout
        self.call_timeout = call_timeout
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self.command: list[str] | None = None  # the image's CMD (DockerHubs: the hub's)
        self._factory = client_factory or docker_client_factory(timeout=call_timeout)
        self._client: docker.DockerClient | None = None
        self._client_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tenant_locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ plumbing
    async def _call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the outer limit of one SDK call
        secrets: Iterable[str] = (),
    ) -> T:
        """Run one blocking SDK call in a thread, with a timeout; errors become DeployError."""
        limit = timeout if timeout is not None else self.call_timeout
        async with self._slots:
            try:
                return await asyncio.wait_for(asyncio.to_thread(fn), limit)
            except TimeoutError:
                raise DeployError(
                    f"{what}: the Docker Engine did not answer within {limit:g} s; "
                    "check that dockerd is healthy (`docker info`)"
                ) from None
            except NotFound as exc:
                raise DeployError(f"{what}: not found ({_explain(exc, secrets)})") from None
            except APIError as exc:
                raise DeployError(
                    f"{what}: the Docker Engine refused ({_explain(exc, secrets)})"
                ) from None
            except (DockerException, OSError) as exc:  # requests' errors are OSErrors
                raise DeployError(
                    f"{what}: cannot reach the Docker Engine ({_explain(exc, secrets)}); "
                    "start it (scripts/docker_engine.sh) or set DOCKER_HOST"
                ) from None

    async def _docker(self) -> docker.DockerClient:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await self._call("connect to Docker", self._factory)
        return self._client

    def _lock(self, tenant_id: str) -> asyncio.Lock:
        lock = self._tenant_locks.get(tenant_id)
        if lock is None:
            lock = self._tenant_locks[tenant_id] = asyncio.Lock()
        return lock

    # What a runtime of this backend is called and labelled by: a tenant (DockerHubs: a hub).
    _ident = LABEL_TENANT

    def _valid(self, name: str) -> str:
        return validate_tenant_id(name)

    def _name(self, tenant_id: str) -> str:
        return container_name(tenant_id, self.fleet)

    def _user_for(self, name: str, user: str) -> str:
        """The user the runtime `name` runs as (the image's, or `user=`; DockerHubs: its own)."""
        return user

    def _mounts(self, name: str) -> list[dict[str, Any]]:
        """Mounts of the runtime `name`: none for a client bot (DockerHubs: the hub's folder)."""
        return []

    async def _find(self, tenant_id: str) -> Container | None:
        """The tenant's container (by name), checked to be ours; None when there is none."""
        client = await self._docker()
        name = self._name(tenant_id)

        def get() -> Container | None:
            try:
                return client.containers.get(name)
            except NotFound:
                return None

        container = await self._call(f"inspect container {name}", get)
        if container is not None:
            self._check_ours("container", name, tenant_id, container.labels)
        return container

    def _check_ours(
        self,
        kind: str,
        name: str,
        tenant_id: str,
        labels: Mapping[str, str],
        *,
        fleet_label_required: bool = False,
    ) -> None:
        """Refuse a runtime (container, service) named like the tenant's but not made by this
        fleet's botfleet for it; another fleet's is left alone. Containers from before the fleet
        label pass without one; `fleet_label_required` (Swarm services, always labelled) not."""
        if labels.get(self._ident) != tenant_id:
            raise DeployError(
                f"a {kind} named {name} exists but was not created by botfleet for "
                f"{tenant_id} (label {self._ident} is missing or differs); remove or rename it"
            )
        fleet = labels.get(LABEL_FLEET)
        if (fleet is not None or fleet_label_required) and fleet != self.fleet:
            raise DeployError(
                f"{kind} {name} belongs to the fleet {fleet!r}, not to {self.fleet!r} "
                f"(label {LABEL_FLEET}); this master leaves it alone"
            )

    async def _require(self, tenant_id: str, action: str) -> Container:
        container = await self._find(tenant_id)
        if container is None:
            raise DeployError(
                f"cannot {action} {tenant_id}: it has no container ({self._name(tenant_id)}); "
                "deploy it first"
            )
        return container

    # ------------------------------------------------------------------ the container
    async def _image(self, client: docker.DockerClient) -> tuple[str, str]:
        """(image id, user) of the configured image; refuses images that would run as root."""

        def get() -> tuple[str, str]:
            try:
                image = client.images.get(self.image)
            except ImageNotFound:
                raise DeployError(
                    f"image {self.image} is not on the Docker Engine: build it "
                    f"(`docker build -t {self.image} .`, or scripts/docker_engine.sh for tests) "
                    "or set CLIENT_IMAGE"
                ) from None
            return str(image.id), str(image.attrs.get("Config", {}).get("User") or "")

        image_id, image_user = await self._call(f"inspect image {self.image}", get)
        user = self.user if self.user is not None else image_user
        if user.strip() in _ROOT_USERS:
            raise DeployError(
                f"image {self.image} would run as root: give it a non-root USER (the project's "
                "Dockerfile does) or pass user= to DockerBackend"
            )
        return image_id, user

    def _labels(self, spec: ClientSpec) -> dict[str, str]:
        labels = {k: v for k, v in spec.labels.items() if k not in _OURS}
        labels[self._ident] = spec.tenant_id
        labels[LABEL_MANAGED] = "true"
        labels[LABEL_FLEET] = self.fleet
        labels[LABEL_IMAGE] = self.image
        return labels

    async def _ensure_network(self, client: docker.DockerClient) -> str | None:
        """The id of the configured network, created (a labelled bridge) when it is missing;
        None for the engine's own `host`/`none`/`bridge`, which need nothing."""
        if self.network in _UNMANAGED_NETWORKS:
            return None
        name = self.network

        def ensure() -> str:
            try:
                return str(client.networks.get(name).id)
            except NotFound:
                pass
            try:
                created = client.networks.create(
                    name,
                    driver="bridge",
                    check_duplicate=True,
                    labels={LABEL_NETWORK: "clients", LABEL_FLEET: self.fleet},
                    # Where the engine enforces it (iptables): tenants cannot reach each other.
                    options={"com.docker.network.bridge.enable_icc": "false"},
                )
            except APIError as exc:
                if exc.status_code != 409:  # 409: another master/thread created it just now
                    raise
            else:
                log.info("created the Docker network %s for client containers", name)
                return str(created.id)
            return str(client.networks.get(name).id)

        return await self._call(f"ensure the Docker network {name}", ensure)

    async def network_gateway(self) -> str | None:
        """The host's address on the client network (created when missing): where services on
        the host must listen for client containers to reach them. None for `host`/`none`."""
        client = await self._docker()
        if await self._ensure_network(client) is None:
            return None
        name = self.network

        def gateway() -> str | None:
            ipam = client.networks.get(name).attrs.get("IPAM") or {}
            for config in ipam.get("Config") or []:
                if config.get("Gateway"):
                    return str(config["Gateway"])
            return None

        return await self._call(f"inspect the Docker network {name}", gateway)

    def _on_network(self, container: Container, network_id: str | None) -> bool:
        """Whether the container is attached to the current network (not to a removed one)."""
        if network_id is None:
            return True
        attached = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        endpoint = attached.get(self.network)
        if endpoint is None:
            return False
        found = str(endpoint.get("NetworkID") or "")
        return not found or found == network_id

    async def _start_or_stale(self, container: Container) -> str | None:
        """Start the container; when it cannot be, why it should be re-created instead: its
        network no longer exists, or the engine failed to start it (a 5xx: e.g. a Docker
        Engine restarted while it was starting left "failed to start shim: ... file exists"
        behind, and starting it again fails the same way forever). A container holds no data
        (read-only root, tmpfs), so a new one loses nothing."""

        def start() -> str | None:
            try:
                container.start()
            except (NotFound, APIError) as exc:
                if (why := recreate_reason(exc)) is not None:
                    return why
                raise
            return None

        return await self._call(f"start container {container.name}", start)

    def _host_config(self, name: str = "") -> dict[str, Any]:
        """Arguments of the Docker SDK's `create_host_config` (the limits and the hardening) for
        the runtime `name`."""
        policy: dict[str, Any] = {"Name": self.restart_policy}
        if self.restart_policy == "on-failure":
            policy["MaximumRetryCount"] = self.restart_retries
        options: dict[str, Any] = {
            "restart_policy": policy,
            "mem_limit": self.memory,
            "memswap_limit": self.memory,  # no swap on top of the memory cap
            "nano_cpus": self.nano_cpus,
            "pids_limit": self.pids_limit,
            "read_only": True,
            # The container's own /tmp (a tmpfs mount), not the host's.
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={self.tmpfs_size}"},  # noqa: S108
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "init": True,  # tini as PID 1: signals reach the bot, zombies are reaped
            "log_config": {
                "Type": "json-file",
                "Config": {"max-size": self.log_max_size, "max-file": str(self.log_max_files)},
            },
            "network_mode": self.network,
        }
        mounts = self._mounts(name)
        if mounts:  # only then: the hashes of client containers stay what they were
            options["mounts"] = mounts
        return options

    def _spec_hash(
        self,
        image_id: str,
        user: str,
        env: Mapping[str, str],
        labels: Mapping[str, str],
        name: str = "",
    ) -> str:
        shape: dict[str, Any] = {
            "image": image_id,
            "user": user,
            "env": sorted(env.items()),
            "labels": sorted(labels.items()),
            "host": self._host_config(name),
            "stop_timeout": self.stop_timeout,
        }
        if self.command:  # only then: the hashes of client containers stay what they were
            shape["command"] = self.command
        digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()
        return digest[:32]

    # ------------------------------------------------------------------ DeployBackend
    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        tenant_id = self._valid(spec.tenant_id)
        name = self._name(tenant_id)
        secrets = _secrets_of(spec.env)
        async with self._lock(tenant_id):
            client = await self._docker()
            image_id, image_user = await self._image(client)
            user = self._user_for(tenant_id, image_user)
            network_id = await self._ensure_network(client)
            labels = self._labels(spec)
            labels[LABEL_SPEC] = self._spec_hash(image_id, user, spec.env, labels, tenant_id)
            existing = await self._find(tenant_id)
            if existing is not None and existing.labels.get(LABEL_SPEC) == labels[LABEL_SPEC]:
                stopped = existing.status in {"created", "exited"}
                if not self._on_network(existing, network_id):
                    log.info("replacing container %s: its network was removed or re-created", name)
                elif not stopped or (why := await self._start_or_stale(existing)) is None:
                    return await self._status(tenant_id)
                else:
                    log.info("replacing container %s: %s", name, why)
            elif existing is not None:
                log.info("replacing container %s: its spec changed", name)
            if existing is not None:
                await self._remove(existing)
            env = dict(spec.env)

            def create() -> Container:
                api = client.api
                networking = None
                if self.network != "host":
                    endpoint = api.create_endpoint_config()
                    networking = api.create_networking_config({self.network: endpoint})
                created = api.create_container(
                    self.image,
                    command=self.command,
                    name=name,
                    environment=env,
                    labels=labels,
                    user=user,
                    detach=True,
                    stop_signal="SIGTERM",
                    stop_timeout=self.stop_timeout,
                    host_config=api.create_host_config(**self._host_config(tenant_id)),
                    networking_config=networking,
                )
                container: Container = client.containers.get(created["Id"])
                return container

            container = await self._call(f"create container {name}", create, secrets=secrets)
            await self._call(f"start container {name}", container.start, secrets=secrets)
            log.info("started container %s (%s)", name, self.image)
        return await self._status(tenant_id)

    async def start(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(self._valid(tenant_id)):
            container = await self._require(tenant_id, "start")
            if (why := await self._start_or_stale(container)) is not None:
                raise DeployError(
                    f"cannot start {tenant_id} ({container.name}): {why}; deploy it again "
                    "(the reconciler re-creates it)"
                )
        return await self._status(tenant_id)

    async def stop(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(self._valid(tenant_id)):
            container = await self._find(tenant_id)
            if container is not None:
                await self._call(
                    f"stop container {container.name}",
                    lambda: container.stop(timeout=self.stop_timeout),
                    timeout=self.call_timeout + self.stop_timeout,
                )
        return await self._status(tenant_id)

    async def restart(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(self._valid(tenant_id)):
            container = await self._require(tenant_id, "restart")
            await self._call(
                f"restart container {container.name}",
                lambda: container.restart(timeout=self.stop_timeout),
                timeout=self.call_timeout + self.stop_timeout,
            )
        return await self._status(tenant_id)

    async def remove(self, tenant_id: str) -> None:
        async with self._lock(self._valid(tenant_id)):
            container = await self._find(tenant_id)
            if container is not None:
                await self._remove(container)

    async def _remove(self, container: Container) -> None:
        def stop_and_remove() -> None:
            with contextlib.suppress(NotFound):
                if container.status in {"running", "restarting", "paused"}:
                    container.stop(timeout=self.stop_timeout)
                container.remove(force=True)

        await self._call(
            f"remove container {container.name}",
            stop_and_remove,
            timeout=self.call_timeout + self.stop_timeout,
        )

    async def status(self, tenant_id: str) -> RuntimeStatus:
        return await self._status(self._valid(tenant_id), memory=True)

    async def _status(self, tenant_id: str, *, memory: bool = False) -> RuntimeStatus:
        container = await self._find(tenant_id)
        if container is None:
            return RuntimeStatus(tenant_id, RuntimeState.MISSING, detail="no container")
        status = _runtime_status(tenant_id, container.attrs)
        if memory and status.state is RuntimeState.RUNNING:
            usage = await self._memory(container)
            if usage is not None:
                status = RuntimeStatus(
                    tenant_id,
                    status.state,
                    exit_code=status.exit_code,
                    restarts=status.restarts,
                    memory_bytes=usage,
                    detail=status.detail,
                )
        return status

    async def _memory(self, container: Container) -> int | None:
        """Memory in use (without the page cache), or None when the engine does not say."""

        def stats() -> dict[str, Any]:
            result: dict[str, Any] = container.client.api.stats(
                container.id, stream=False, one_shot=True
            )
            return result

        try:
            data = await self._call(f"stats of container {container.name}", stats)
        except DeployError as exc:
            log.debug("no memory figure: %s", exc)
            return None
        mem = data.get("memory_stats") or {}
        usage = mem.get("usage")
        if not isinstance(usage, int):
            return None
        inner = mem.get("stats") or {}
        cache = inner.get("total_inactive_file", inner.get("inactive_file", inner.get("cache", 0)))
        return max(usage - int(cache or 0), 0)

    async def list(self) -> dict[str, RuntimeStatus]:
        client = await self._docker()

        found = await self._call(
            f"list the containers of fleet {self.fleet}", _listing(client, self.fleet, self._ident)
        )
        result: dict[str, RuntimeStatus] = {}
        for container in found:
            tenant_id = container.labels.get(self._ident, "")
            if container.labels.get(LABEL_FLEET) != self.fleet:
                continue  # the engine filtered already; never touch another fleet's
            if not self._named(tenant_id) or container.name != self._name(tenant_id):
                log.warning("ignoring container %s: labels do not name its tenant", container.name)
                continue
            result[tenant_id] = _runtime_status(tenant_id, container.attrs)
        return result

    async def drifted(self, specs: Mapping[str, ClientSpec]) -> set[str]:
        """Containers of this fleet whose spec hash is not the one `deploy(spec)` would give them
        (a new image behind the tag, another image, environment, limits) or whose network was
        removed or re-created. Three engine calls, whatever the number of tenants."""
        if not specs:
            return set()
        client = await self._docker()
        image_id, image_user = await self._image(client)
        network_id = await self._ensure_network(client)
        found = await self._call(
            f"list the containers of fleet {self.fleet}", _listing(client, self.fleet, self._ident)
        )
        drifted = set()
        for container in found:
            tenant_id = container.labels.get(self._ident, "")
            spec = specs.get(tenant_id)
            if spec is None or container.name != self._name(tenant_id):
                continue
            user = self._user_for(tenant_id, image_user)
            want = self._spec_hash(image_id, user, spec.env, self._labels(spec), tenant_id)
            if container.labels.get(LABEL_SPEC) != want or not self._on_network(
                container, network_id
            ):
                drifted.add(tenant_id)
        return drifted

    def _named(self, name: str) -> bool:
        return bool(TENANT_ID_RE.match(name))

    async def logs(self, tenant_id: str, lines: int = 100) -> str:
        container = await self._require(self._valid(tenant_id), "read the logs of")
        tail = max(1, min(int(lines), 10_000))

        def read() -> bytes:
            data: bytes = container.logs(stdout=True, stderr=True, tail=tail, timestamps=False)
            return data

        data = await self._call(f"logs of container {container.name}", read)
        return data.decode("utf-8", errors="replace")

    async def ping(self) -> None:
        client = await self._docker()
        await self._call("ping the Docker Engine", client.ping)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(DeployError):
                await self._call("close the Docker client", client.close)


def hub_container_name(hub: str, fleet: str = DEFAULT_FLEET) -> str:
    """`botfleet-hub-<n>` (the default fleet), `botfleet-<fleet>-hub-<n>` (another)."""
    if not HUB_NAME_RE.match(hub):
        raise ValueError(f"not a hub name: {hub[:40]!r}")
    return (
        f"{CONTAINER_PREFIX}{hub}" if fleet == DEFAULT_FLEET else f"{CONTAINER_PREFIX}{fleet}-{hub}"
    )


class DockerHubs(DockerBackend):
    """Hubs (`python -m client_bot.hub`, the shared placement) as containers, for HubBackend
    (master_bot/deploy/hub.py), which names them `hub-<n>` and owns their folders.

    A hub is a container like a client bot's, from the same image and with the same hardening
    (read-only root with a tmpfs /tmp, every capability dropped, no-new-privileges, memory/CPU/
    pids caps, an init, a non-root user, the fleet's network, never the Docker socket), only
    with the hub's command and its own limits (many tenants: more memory and pids). It is named
    `botfleet-hub-<n>` (another fleet: `botfleet-<fleet>-hub-<n>`) and labelled
    `botfleet.hub=hub-<n>`, `botfleet.managed`, `botfleet.fleet` and its spec hash, so a new master
    adopts it by label; the client containers' backend never lists it (no `botfleet.tenant`).

    Its one mount is its folder, `<clients>/hubs/hub-<n>`, bind-mounted read-write at /hub (its
    HUB_DIR, the only thing its environment names besides its limits): the master writes each
    tenant's contract there (tenants/<id>.env, 0600) and the hub reports in status.json. The
    folder and its files belong to the hub's own uid, HUB_UID_BASE + n when the master runs as
    root (else the master's own uid, never root), and the container runs as that uid: no client
    container (uid 10001) or other hub could read them even if they were in its reach.
    With `webhooks` (the default), the hub serves its webhook tenants on 0.0.0.0:8080 in its own
    network namespace, which the proxy reaches as `<container name>:8080` on the fleet's network
    (tenants without WEBHOOK_BASE_URL poll as ever); without, it listens on no port.

    `host_root`: where the master's `<clients>/hubs` is on the Docker host. By default it is
    found once: a master in a container (compose, CLIENTS_DIR on a volume or a bind mount)
    looks up its own container's mount that holds the folder and uses that mount's source on
    the host; a master on the host uses its own path.
    """

    name = "docker-hubs"
    _ident = LABEL_HUB

    def __init__(
        self,
        image: str,
        *,
        root: Path | str,
        host_root: Path | str | None = None,
        webhooks: bool = True,
        uid_base: int = HUB_UID_BASE,
        memory: str = "1g",  # 200 tenants at ~1 MiB each on top of ~180 MiB, with room for peaks
        nano_cpus: int = 2_000_000_000,
        pids_limit: int = 256,
        stop_timeout: int = 30,  # every tenant's in-flight update is finished first
        **kwargs: Any,
    ) -> None:
        super().__init__(
            image,
            memory=memory,
            nano_cpus=nano_cpus,
            pids_limit=pids_limit,
            stop_timeout=stop_timeout,
            **kwargs,
        )
        if not 1000 <= uid_base <= 2**31 - 2**20:
            raise ValueError("uid_base: between 1000 and 2**31 - 2**20")
        self.command = ["python", "-m", "client_bot.hub"]
        self.root = Path(root)
        self.host_root = Path(host_root) if host_root is not None else None
        self._host_root_found = host_root is not None
        self.webhooks = webhooks
        self.uid_base = uid_base

    @classmethod
    def like(cls, clients: DockerBackend, root: Path | str, **kwargs: Any) -> DockerHubs:
        """Hubs on the engine, image, network and fleet of the client containers' backend."""
        kwargs.setdefault("restart_policy", clients.restart_policy)
        kwargs.setdefault("restart_retries", clients.restart_retries)
        kwargs.setdefault("call_timeout", clients.call_timeout)
        kwargs.setdefault("client_factory", clients._factory)
        return cls(clients.image, root=root, network=clients.network, fleet=clients.fleet, **kwargs)

    def _valid(self, name: str) -> str:
        if not isinstance(name, str) or not HUB_NAME_RE.match(name):
            raise DeployError(f"invalid hub name {str(name)[:40]!r}")
        return name

    def _named(self, name: str) -> bool:
        return bool(HUB_NAME_RE.match(name))

    def _name(self, tenant_id: str) -> str:
        return hub_container_name(self._valid(tenant_id), self.fleet)

    def uid(self, hub: str) -> int | None:
        """The hub's own uid; None when the master is not root (it cannot give files away:
        the hub then runs as the master's uid)."""
        if os.geteuid() != 0:
            return None
        return self.uid_base + int(self._valid(hub).split("-")[1])

    async def uid_for(self, name: str) -> int | None:
        return self.uid(name)

    def _user_for(self, name: str, user: str) -> str:
        uid = self.uid(name)
        return f"{uid}:{uid}" if uid is not None else f"{os.getuid()}:{os.getgid()}"

    def folder(self, hub: str) -> Path:
        """The hub's folder as the Docker host sees it (the bind mount's source)."""
        base = self.host_root if self.host_root is not None else self.root.resolve()
        return base / self._valid(hub)

    def _mounts(self, name: str) -> list[dict[str, Any]]:
        mount = docker.types.Mount(HUB_MOUNT, str(self.folder(name)), type="bind")
        return [dict(mount)]

    async def _find_host_root(self) -> None:
        """Once: the hubs' folder as the Docker host sees it (see the class's `host_root`)."""
        if self._host_root_found:
            return
        self._host_root_found = True
        in_container, root = await asyncio.to_thread(
            lambda: (Path("/.dockerenv").exists(), self.root.resolve())
        )
        if not in_container:
            return  # a master on the host: its own path
        client = await self._docker()

        def mounts() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (
                client.api.inspect_container(socket.gethostname()).get("Mounts") or []
            )
            return found

        try:
            own = await self._call("inspect the master's own container", mounts)
        except DeployError as exc:
            log.warning("hub folders: cannot find the master's own container (%s)", exc)
            return
        for mount in sorted(own, key=lambda m: -len(str(m.get("Destination") or ""))):
            inside = Path(str(mount.get("Destination") or "/nonexistent"))
            if mount.get("Source") and (root == inside or inside in root.parents):
                self.host_root = Path(str(mount["Source"])) / root.relative_to(inside)
                log.info("hub folders: %s is %s on the Docker host", root, self.host_root)
                return
        log.warning(
            "hub folders: %s is on no mount of the master's container; hubs cannot see it "
            "(put CLIENTS_DIR on a volume)",
            root,
        )

    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        await self._find_host_root()
        return await super().deploy(spec)

    async def drifted(self, specs: Mapping[str, ClientSpec]) -> set[str]:
        await self._find_host_root()
        return await super().drifted(specs)

    def hub_env(self, hub: str) -> dict[str, str]:
        """What HubBackend puts in the hub's environment for where it runs: its folder, and the
        webhook server's address."""
        env = {"HUB_DIR": HUB_MOUNT}
        if self.webhooks:
            env["HUB_WEBHOOK_LISTEN"] = f"0.0.0.0:{HUB_WEBHOOK_PORT}"
        return env

    def webhook_address(self, hub: str) -> str | None:
        """Where the proxy (on the fleet's network) reaches the hub's webhook server."""
        return f"{self._name(hub)}:{HUB_WEBHOOK_PORT}" if self.webhooks else None

    async def status(self, tenant_id: str) -> RuntimeStatus:
        return await self._status(self._valid(tenant_id))  # no memory figure: HubBackend polls

    async def usage(self, hub: str) -> RuntimeStatus:
        """The hub's status with its memory in use."""
        return await self._status(self._valid(hub), memory=True)


def _runtime_status(tenant_id: str, attrs: Mapping[str, Any]) -> RuntimeStatus:
    """Docker's view of a container, as a RuntimeStatus."""
    state = attrs.get("State") or {}
    docker_status = str(state.get("Status") or "unknown")
    code = state.get("ExitCode")
    exit_code = int(code) if isinstance(code, int) else None
    restarts = int(attrs.get("RestartCount") or 0)
    error = str(state.get("Error") or "")
    if docker_status == "running":
        return RuntimeStatus(tenant_id, RuntimeState.RUNNING, None, restarts, detail="running")
    if docker_status == "restarting":
        # Docker's restart policy is at work: no exit code, as the runtime has not ended.
        detail = f"restarting after exit code {exit_code}"
        return RuntimeStatus(tenant_id, RuntimeState.CRASHED, None, restarts, detail=detail)
    if docker_status in {"created", "paused"}:
        return RuntimeStatus(tenant_id, RuntimeState.STOPPED, None, restarts, detail=docker_status)
    if docker_status == "removing":
        return RuntimeStatus(tenant_id, RuntimeState.MISSING, None, restarts, detail="removing")
    if state.get("OOMKilled"):
        detail = "killed: out of memory (raise the memory limit)"
        return RuntimeStatus(tenant_id, RuntimeState.CRASHED, exit_code, restarts, detail=detail)
    if docker_status == "exited" and exit_code in (0, _SIGTERM_EXIT):
        detail = "stopped" if exit_code == 0 else "stopped (terminated on request)"
        return RuntimeStatus(tenant_id, RuntimeState.STOPPED, exit_code, restarts, detail=detail)
    detail = f"{docker_status}, exit code {exit_code}" + (f": {error}" if error else "")
    return RuntimeStatus(tenant_id, RuntimeState.CRASHED, exit_code, restarts, detail=detail)


def _explain(exc: BaseException, secrets: Iterable[str]) -> str:
    """A short, secret-free reason from an SDK error."""
    if isinstance(exc, APIError):
        text = str(exc.explanation or exc)
        status = exc.status_code
        text = f"HTTP {status}: {text}" if status else text
    else:
        text = str(exc) or type(exc).__name__
    text = redact(text, secrets)
    return text if len(text) <= 300 else text[:297] + "..."
