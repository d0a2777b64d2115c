"""SwarmBackend: each tenant's bot as a Docker Swarm service (issue 16, past one server).

Same contract as DockerBackend (master_bot/deploy/base.py) and the same names, labels and
hardening, through the Engine's `services` API on a Swarm manager: a replicated service with one
replica per tenant (`botfleet-<tenant_id>`, another fleet's `botfleet-<fleet>-<tenant_id>`),
labels `botfleet.tenant` / `botfleet.managed` / `botfleet.fleet` / `botfleet.spec-hash` on the
service (how `list()` adopts services after a master restart) and on its containers.

Secrets never go into the service's environment (which `docker service inspect` shows to anyone
with access to the manager): BOT_TOKEN, DATABASE_URL, REDIS_URL, OPENAI_API_KEY and
WEBHOOK_SECRET become **Swarm secrets**, mounted read-only for the bot's user at
`/run/secrets/<name>` (`bot_token`, `database_url`, …); the bot reads them through pydantic-settings' secrets directory
(`SECRETS_DIR=/run/secrets`, core/settings.load_settings). A secret's name carries a digest of
its value (`<service>-bot_token-<digest>`), so a new token is a new secret and a re-deploy; a
removed service's secrets are removed with it.

Hardening as far as Swarm's container spec goes: read-only root with a tmpfs on /tmp, every
capability dropped (API 1.41), memory/CPU/pids limits, a non-root user, an init process, no
volumes and never the Docker socket; the restart policy `on-failure` with a few attempts, then
the master's reconciler (with its backoff and alerts) takes over, as with containers.
`no-new-privileges` is not part of Swarm's container spec before Engine 25 (API 1.44):
with cap-drop ALL and a non-root user nothing can gain privileges through setuid binaries of
the image anyway, and the client image has none.

Placement: `constraints` (e.g. `node.labels.pool==business`) and `preferences` (spread over
`node.labels.zone`) come from the master's settings; on one node they are simply met.
Networks: `network` as for DockerBackend: an attachable overlay network, created when missing
with the subnet given (`subnet`, SWARM_SUBNET: a /20 by default, where Swarm's default /24
holds about 250 addresses, too few for a fleet), or one the operator made, or `host` on a
single node.

Swarm acts in the background: a service scaled to 0 or removed still has its task running for a
while, on whichever node it is. `stop`, `remove` and a replacing `deploy` wait until no task of
the service may still run, so the tenant never runs twice (never two runtimes polling one
token); `deploy` and `start` return once the task has started (or failed), as `docker run`.

`SwarmHubs` (below) runs hubs, the shared placement, as services the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import NotFound
from docker.models.services import Service
from docker.types import (
    IPAMConfig,
    IPAMPool,
    Mount,
    Resources,
    RestartPolicy,
    SecretReference,
    ServiceMode,
)

from master_bot.deploy.base import ClientSpec, DeployError, RuntimeState, RuntimeStatus
from master_bot.deploy.docker import (
    LABEL_FLEET,
    LABEL_MANAGED,
    LABEL_NETWORK,
    LABEL_SPEC,
    LABEL_TENANT,
    DockerBackend,
    DockerHubs,
    _secrets_of,
)

log = logging.getLogger(__name__)

# What goes into Swarm secrets rather than the service's environment (file name = lower case).
SECRET_ENV = ("BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "WEBHOOK_SECRET")
SECRETS_DIR = "/run/secrets"
_SECRET_NAME_MAX = 64  # Swarm's limit on a secret's name
DEFAULT_SUBNET = "10.20.0.0/20"  # the overlay network the backend creates: ~4,000 addresses
# A task in one of these states may still run (or is about to): not yet down.
_LIVE_TASK = frozenset(
    {"new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"}
)
_MEMORY_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


def _bytes(size: str) -> int:
    size = size.strip().lower()
    if size and size[-1] in _MEMORY_UNITS:
        return int(float(size[:-1]) * _MEMORY_UNITS[size[-1]])
    return int(size)


class SwarmBackend(DockerBackend):
    """Client bots as Swarm services (one replica each) on a Swarm manager."""

    name = "swarm"

    def __init__(
        self,
        image: str,
        *,
        constraints: list[str] | None = None,
        preferences: list[str] | None = None,
        uid: int = 10001,
        subnet: str | None = DEFAULT_SUBNET,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        self.constraints = list(constraints or [])
        self.preferences = list(preferences or [])
        self.secret_uid = uid  # who may read the secret files (the image's user)
        self.subnet = subnet

    # ------------------------------------------------------------------ lookups
    async def _service(self, tenant_id: str) -> Service | None:
        client = await self._docker()
        name = self._name(self._valid(tenant_id))

        def get() -> Service | None:
            try:
                return client.services.get(name)
            except NotFound:
                return None

        service = await self._call(f"inspect service {name}", get)
        if service is not None:
            labels = service.attrs.get("Spec", {}).get("Labels") or {}
            self._check_ours("service", name, tenant_id, labels, fleet_label_required=True)
        return service

    async def _need(self, tenant_id: str, action: str) -> Service:
        service = await self._service(tenant_id)
        if service is None:
            raise DeployError(
                f"cannot {action} {tenant_id}: it has no service ({self._name(tenant_id)}); "
                "deploy it first"
            )
        return service

    # ------------------------------------------------------------------ the service
    def _split(self, env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """(plain environment, secrets by file name): secrets never in the environment."""
        plain = {k: v for k, v in env.items() if k not in SECRET_ENV}
        secret = {k.lower(): v for k, v in env.items() if k in SECRET_ENV and v}
        plain["SECRETS_DIR"] = SECRETS_DIR
        return plain, secret

    def _secret_name(self, tenant_id: str, file: str, value: str) -> str:
        digest = hashlib.sha256(f"{tenant_id}\0{file}\0{value}".encode()).hexdigest()[:16]
        name = f"{self._name(tenant_id)}-{file}-{digest}"
        if len(name) <= _SECRET_NAME_MAX:
            return name
        # Another fleet's long names: Swarm refuses a secret name over 64 characters. The
        # labels still name the tenant and the fleet (how its secrets are found and removed).
        long = f"{self.fleet}\0{tenant_id}\0{file}\0{value}".encode()
        return f"botfleet-{hashlib.sha256(long).hexdigest()[:32]}-{file}"

    def _shape(self, name: str = "") -> dict[str, Any]:
        shape = {
            "memory": self.memory,
            "nano_cpus": self.nano_cpus,
            "pids": self.pids_limit,
            "restart": [self.restart_policy, self.restart_retries],
            "tmpfs": self.tmpfs_size,
            "network": self.network,
            "constraints": self.constraints,
            "preferences": self.preferences,
            "stop": self.stop_timeout,
        }
        # Only when set (SwarmHubs): the hashes of client services stay what they were.
        if self.command:
            shape["command"] = self.command
        if mounts := self._mounts(name):
            shape["mounts"] = mounts
        return shape

    def _service_hash(
        self,
        image_id: str,
        user: str,
        env: Mapping[str, str],
        labels: Mapping[str, str],
        name: str = "",
    ) -> str:
        shape = {
            "image": image_id,
            "user": user,
            "env": sorted(env.items()),
            "labels": sorted(labels.items()),
            "service": self._shape(name),
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]

    async def _ensure_secrets(
        self, client: docker.DockerClient, tenant_id: str, secrets: Mapping[str, str]
    ) -> list[SecretReference]:
        refs: list[SecretReference] = []
        labels = {LABEL_TENANT: tenant_id, LABEL_MANAGED: "true", LABEL_FLEET: self.fleet}
        for file, value in sorted(secrets.items()):
            name = self._secret_name(tenant_id, file, value)

            def ensure(name: str = name, value: str = value) -> str:
                found = client.secrets.list(filters={"name": name})
                exact = [s for s in found if s.name == name]
                if exact:
                    return str(exact[0].id)
                return str(client.secrets.create(name=name, data=value.encode(), labels=labels).id)

            secret_id = await self._call(
                f"create secret {name}", ensure, secrets=_secrets_of({"v": value})
            )
            refs.append(
                SecretReference(
                    secret_id,
                    name,
                    filename=file,
                    uid=str(self.secret_uid),
                    gid=str(self.secret_uid),
                    mode=0o400,
                )
            )
        return refs

    async def _drop_secrets(
        self, client: docker.DockerClient, tenant_id: str, keep: frozenset[str] = frozenset()
    ) -> None:
        """Remove this tenant's secrets not in `keep` (by name); ones still in use stay."""

        def drop() -> None:
            found = client.secrets.list(
                filters={"label": [f"{LABEL_TENANT}={tenant_id}", f"{LABEL_FLEET}={self.fleet}"]}
            )
            for secret in found:
                if secret.name in keep:
                    continue
                try:
                    secret.remove()
                except docker.errors.APIError as exc:  # still referenced by a task going away
                    log.debug("secret %s not removed yet: %s", secret.name, exc)

        await self._call(f"remove old secrets of {tenant_id}", drop)

    def _resources(self) -> Resources:
        resources = Resources(cpu_limit=self.nano_cpus, mem_limit=_bytes(self.memory))
        resources["Limits"]["Pids"] = self.pids_limit  # API 1.41; not in the SDK's helper yet
        return resources

    def _restart(self) -> RestartPolicy:
        condition = {"on-failure": "on-failure", "no": "none"}.get(self.restart_policy, "any")
        return RestartPolicy(
            condition=condition, delay=5 * 10**9, max_attempts=self.restart_retries
        )

    async def _ensure_network(self, client: docker.DockerClient) -> str | None:
        """The id of the configured network; created when missing as an attachable overlay
        network sized explicitly (`subnet`, a /20 by default: Swarm's default /24 holds about
        250 tasks and virtual IPs). None for the engine's own `host`/`none`/`bridge`."""
        if self.network in {"host", "none", "bridge"}:
            return None
        name = self.network

        def ensure() -> str:
            try:
                return str(client.networks.get(name).id)
            except NotFound:
                pass
            ipam = None
            if self.subnet:
                ipam = IPAMConfig(driver="default", pool_configs=[IPAMPool(subnet=self.subnet)])
            try:
                created = client.networks.create(
                    name,
                    driver="overlay",
                    attachable=True,
                    check_duplicate=True,
                    ipam=ipam,
                    labels={LABEL_NETWORK: "clients", LABEL_FLEET: self.fleet},
                )
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # another master created it just now
                    raise
                return str(client.networks.get(name).id)
            log.info("created the overlay network %s (%s)", name, self.subnet or "default")
            return str(created.id)

        return await self._call(f"ensure the overlay network {name}", ensure)

    async def _wait_down(self, service: Service) -> None:
        """Wait until no task of the service may still run (scaled to 0 or being removed): the
        stop is confirmed before anything else runs the tenant, so two runtimes never poll one
        token, on whichever node the task ran."""
        deadline = time.monotonic() + self.stop_timeout + self.call_timeout
        while True:
            tasks = await self._call(
                f"tasks of service {service.name}", lambda: service.tasks(filters={})
            )
            live = [
                t for t in tasks if str((t.get("Status") or {}).get("State") or "") in _LIVE_TASK
            ]
            if not live:
                return
            if time.monotonic() > deadline:
                raise DeployError(
                    f"service {service.name}: {len(live)} task(s) still running "
                    f"{self.stop_timeout + self.call_timeout:g} s after it was stopped"
                )
            await asyncio.sleep(0.2)

    async def _wait_up(self, tenant_id: str) -> RuntimeStatus:
        """The status once Swarm has started the task (or given up on it), as `docker run`
        returns once the container started: at most `call_timeout` (an image pull on a new
        node may take longer; then the status says where the task is)."""
        deadline = time.monotonic() + self.call_timeout
        while True:
            status = await self._status(tenant_id)
            starting = status.state is RuntimeState.STOPPED and (
                status.detail in _LIVE_TASK or status.detail == "no task yet"
            )
            if not starting or time.monotonic() > deadline:
                return status
            await asyncio.sleep(0.2)

    async def _take_down(self, service: Service, *, remove: bool) -> None:
        """Scale to 0 and wait for its tasks to end; then remove the service (`remove`)."""
        await self._scale(service, 0)
        await self._wait_down(service)
        if remove:
            await self._call(f"remove service {service.name}", service.remove)

    # ------------------------------------------------------------------ DeployBackend
    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        tenant_id = self._valid(spec.tenant_id)
        name = self._name(tenant_id)
        async with self._lock(tenant_id):
            client = await self._docker()
            image_id, image_user = await self._image(client)
            user = self._user_for(tenant_id, image_user)
            await self._ensure_network(client)
            plain, secret = self._split(spec.env)
            labels = self._labels(spec)
            secret_names = {
                file: self._secret_name(tenant_id, file, value) for file, value in secret.items()
            }
            labels[LABEL_SPEC] = self._service_hash(
                image_id, user, {**plain, **secret_names}, labels, tenant_id
            )
            existing = await self._service(tenant_id)
            if existing is not None:
                if (existing.attrs["Spec"].get("Labels") or {}).get(LABEL_SPEC) == labels[
                    LABEL_SPEC
                ]:
                    await self._scale(existing, 1)
                    return await self._wait_up(tenant_id)
                log.info("replacing service %s: its spec changed", name)
                await self._take_down(existing, remove=True)
            refs = await self._ensure_secrets(client, tenant_id, secret)
            tmp = Mount("/tmp", None, type="tmpfs", tmpfs_size=_bytes(self.tmpfs_size))  # noqa: S108
            mounts: list[Any] = [tmp, *self._mounts(tenant_id)]

            def create() -> Service:
                service: Service = client.services.create(
                    self.image,
                    args=self.command,  # the image's CMD (SwarmHubs: the hub's), as containers
                    name=name,
                    labels=labels,
                    container_labels=labels,
                    mode=ServiceMode("replicated", replicas=1),
                    networks=[self.network] if self.network != "none" else None,
                    resources=self._resources(),
                    restart_policy=self._restart(),
                    constraints=self.constraints or None,
                    preferences=[("spread", label) for label in self.preferences] or None,
                    env=[f"{k}={v}" for k, v in sorted(plain.items())],
                    user=user,
                    read_only=True,
                    init=True,
                    cap_drop=["ALL"],
                    secrets=refs or None,
                    stop_signal="SIGTERM",
                    stop_grace_period=self.stop_timeout * 10**9,
                    mounts=mounts,
                )
                return service

            await self._call(f"create service {name}", create, secrets=_secrets_of(spec.env))
            await self._drop_secrets(client, tenant_id, keep=frozenset(secret_names.values()))
            log.info("created service %s (%s)", name, self.image)
        return await self._wait_up(tenant_id)

    async def _scale(self, service: Service, replicas: int) -> None:
        current = (service.attrs["Spec"].get("Mode") or {}).get("Replicated", {}).get("Replicas")
        if current != replicas:
            await self._call(
                f"scale service {service.name} to {replicas}", lambda: service.scale(replicas)
            )
            await self._call(f"inspect service {service.name}", service.reload)

    async def start(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(self._valid(tenant_id)):
            await self._scale(await self._need(tenant_id, "start"), 1)
        return await self._wait_up(tenant_id)

    async def stop(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(self._valid(tenant_id)):
            service = await self._service(tenant_id)
            if service is not None:
                await self._take_down(service, remove=False)
        return await self._status(tenant_id)

    async def restart(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(self._valid(tenant_id)):
            service = await self._need(tenant_id, "restart")
            await self._scale(service, 1)
            await self._call(f"restart service {service.name}", service.force_update)
        return await self._status(tenant_id)

    async def remove(self, tenant_id: str) -> None:
        async with self._lock(self._valid(tenant_id)):
            service = await self._service(tenant_id)
            if service is not None:
                await self._take_down(service, remove=True)
            client = await self._docker()
            await self._drop_secrets(client, tenant_id)

    async def _status(self, tenant_id: str, *, memory: bool = False) -> RuntimeStatus:
        service = await self._service(tenant_id)
        if service is None:
            return RuntimeStatus(tenant_id, RuntimeState.MISSING, detail="no service")
        tasks = await self._call(f"tasks of service {service.name}", service.tasks)
        return _service_status(tenant_id, service.attrs, tasks)

    async def list(self) -> dict[str, RuntimeStatus]:
        client = await self._docker()

        def services() -> list[tuple[Service, list[dict[str, Any]]]]:
            # Only this backend's kind (botfleet.tenant, SwarmHubs: botfleet.hub).
            labels = [f"{LABEL_MANAGED}=true", f"{LABEL_FLEET}={self.fleet}", self._ident]
            found = client.services.list(filters={"label": labels})
            return [(s, s.tasks()) for s in found]

        found = await self._call(f"list the services of fleet {self.fleet}", services)
        result: dict[str, RuntimeStatus] = {}
        for service, tasks in found:
            labels = service.attrs.get("Spec", {}).get("Labels") or {}
            tenant_id = labels.get(self._ident, "")
            if labels.get(LABEL_FLEET) != self.fleet:
                continue
            if not self._named(tenant_id) or service.name != self._name(tenant_id):
                log.warning("ignoring service %s: labels do not name its tenant", service.name)
                continue
            result[tenant_id] = _service_status(tenant_id, service.attrs, tasks)
        return result

    async def drifted(self, specs: Mapping[str, ClientSpec]) -> set[str]:
        if not specs:
            return set()
        client = await self._docker()
        image_id, image_user = await self._image(client)
        drifted = set()
        for tenant_id, spec in specs.items():
            service = await self._service(tenant_id)
            if service is None:
                continue
            plain, secret = self._split(spec.env)
            names = {f: self._secret_name(tenant_id, f, v) for f, v in secret.items()}
            user = self._user_for(tenant_id, image_user)
            want = self._service_hash(
                image_id, user, {**plain, **names}, self._labels(spec), tenant_id
            )
            if (service.attrs["Spec"].get("Labels") or {}).get(LABEL_SPEC) != want:
                drifted.add(tenant_id)
        return drifted

    async def logs(self, tenant_id: str, lines: int = 100) -> str:
        service = await self._need(self._valid(tenant_id), "read the logs of")
        tail = max(1, min(int(lines), 10_000))

        def read() -> bytes:
            return b"".join(service.logs(stdout=True, stderr=True, tail=tail))

        data = await self._call(f"logs of service {service.name}", read)
        return data.decode("utf-8", errors="replace")

    async def ping(self) -> None:
        client = await self._docker()
        info = await self._call("ask the Docker Engine about its swarm", client.info)
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise DeployError(
                "the Docker Engine is not a Swarm manager (swarm state "
                f"{swarm.get('LocalNodeState')!r}): run `docker swarm init` on it, or point "
                "DOCKER_HOST at a manager"
            )


def _service_status(
    tenant_id: str, attrs: Mapping[str, Any], tasks: list[dict[str, Any]]
) -> RuntimeStatus:
    """Swarm's view of a one-replica service, as a RuntimeStatus."""
    replicas = ((attrs.get("Spec") or {}).get("Mode") or {}).get("Replicated", {}).get("Replicas")
    tasks = sorted(tasks, key=lambda t: str(t.get("CreatedAt") or ""))
    restarts = max(0, len(tasks) - 1)
    if not tasks:
        state = RuntimeState.STOPPED if replicas == 0 else RuntimeState.MISSING
        detail = "scaled to 0" if replicas == 0 else "no task yet"
        return RuntimeStatus(
            tenant_id, state if replicas == 0 else RuntimeState.STOPPED, detail=detail
        )
    last = tasks[-1]
    status = last.get("Status") or {}
    current = str(status.get("State") or "unknown")
    desired = str(last.get("DesiredState") or "")
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    exit_code = int(code) if isinstance(code, int) else None
    if replicas == 0:
        return RuntimeStatus(
            tenant_id, RuntimeState.STOPPED, exit_code, restarts, detail="scaled to 0"
        )
    if current == "running":
        return RuntimeStatus(tenant_id, RuntimeState.RUNNING, None, restarts, detail="running")
    if current in {"new", "pending", "assigned", "accepted", "preparing", "ready", "starting"}:
        return RuntimeStatus(tenant_id, RuntimeState.STOPPED, None, restarts, detail=current)
    if current == "complete" and desired == "shutdown":
        return RuntimeStatus(
            tenant_id, RuntimeState.STOPPED, exit_code, restarts, detail="complete"
        )
    error = str(status.get("Err") or status.get("Message") or "")
    detail = (
        f"{current}"
        + (f": {error}" if error else "")
        + (f", exit code {exit_code}" if exit_code is not None else "")
    )
    return RuntimeStatus(tenant_id, RuntimeState.CRASHED, exit_code, restarts, detail=detail)


class SwarmHubs(SwarmBackend, DockerHubs):
    """Hubs (`python -m client_bot.hub`, the shared placement) as Swarm services, for
    HubBackend (master_bot/deploy/hub.py): DockerHubs' hub (names `hub-<n>`, the label
    `botfleet.hub`, its own uid, its folder bind-mounted at /hub as its one mount, the hub's
    command and limits, its webhook server on 8080) run by SwarmBackend's services API (one
    replica, Swarm's restart policy, resources, adoption by label, a stop confirmed by its
    tasks).

    Tenants are assigned as for hub containers: HubBackend writes each tenant's contract to
    `tenants/<tenant_id>.env` in the hub's folder on the master's host and the hub picks it up
    (a running service cannot be given a new Swarm secret without a restart of every tenant in
    it). So a hub's environment holds no secret at all (no Swarm secrets either), and a hub
    runs where its folder is: pinned to the node of the engine the master talks to
    (`node.id==<that node>`), unless `constraints` are given, for CLIENTS_DIR/hubs on a
    filesystem every node mounts at the same path (docs/scaling.md).
    """

    name = "swarm-hubs"

    def __init__(self, image: str, **kwargs: Any) -> None:
        super().__init__(image, **kwargs)
        self._pinned = bool(self.constraints)

    @classmethod
    def like(cls, clients: DockerBackend, root: Path | str, **kwargs: Any) -> SwarmHubs:
        """Hubs on the swarm, image, network, fleet and spread of the client services."""
        if isinstance(clients, SwarmBackend):
            kwargs.setdefault("preferences", clients.preferences)
            kwargs.setdefault("subnet", clients.subnet)
        hubs = super().like(clients, root, **kwargs)
        assert isinstance(hubs, SwarmHubs)
        return hubs

    def _split(self, env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        return dict(env), {}  # a hub's environment names its folder and limits: no secret

    async def _pin(self) -> None:
        """Once: constrain hubs to the node whose engine the master talks to (its folder)."""
        if self._pinned:
            return
        client = await self._docker()
        info = await self._call("ask the Docker Engine about its swarm", client.info)
        node = str((info.get("Swarm") or {}).get("NodeID") or "")
        if not node:
            raise DeployError("the Docker Engine is not part of a swarm: run `docker swarm init`")
        self.constraints = [f"node.id=={node}"]
        self._pinned = True

    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        await self._find_host_root()
        await self._pin()
        return await SwarmBackend.deploy(self, spec)

    async def drifted(self, specs: Mapping[str, ClientSpec]) -> set[str]:
        if not specs:
            return set()
        await self._find_host_root()
        await self._pin()
        return await SwarmBackend.drifted(self, specs)
