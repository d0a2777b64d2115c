"""One interface for every way of running client bots (docs/architecture.md: Docker now, Swarm later).

A backend knows nothing about the database: the master hands it a `ClientSpec` (who, what
environment) and asks it to make the runtime match. All methods are idempotent.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class RuntimeState(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # exists, not running (stopped on purpose or exited)
    CRASHED = "crashed"  # exited with a non-zero code / restarting
    MISSING = "missing"  # no container/process known for the tenant


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """What to run for one tenant. `env` holds secrets: never log or repr it."""

    tenant_id: str
    env: Mapping[str, str] = field(repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuntimeStatus:
    tenant_id: str
    state: RuntimeState
    exit_code: int | None = None
    restarts: int = 0
    memory_bytes: int | None = None
    detail: str = ""


class DeployError(RuntimeError):
    """The backend could not do what was asked; the message says what and why (no secrets)."""


class DeployBackend(abc.ABC):
    """deploy, start, stop, restart, remove, status, logs — per tenant."""

    name: str

    @abc.abstractmethod
    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        """Create (or replace, when the spec changed) and start the tenant's bot."""

    @abc.abstractmethod
    async def start(self, tenant_id: str) -> RuntimeStatus: ...

    @abc.abstractmethod
    async def stop(self, tenant_id: str) -> RuntimeStatus: ...

    @abc.abstractmethod
    async def restart(self, tenant_id: str) -> RuntimeStatus: ...

    @abc.abstractmethod
    async def remove(self, tenant_id: str) -> None:
        """Stop and forget the tenant's runtime; data is not touched."""

    @abc.abstractmethod
    async def status(self, tenant_id: str) -> RuntimeStatus: ...

    @abc.abstractmethod
    async def list(self) -> dict[str, RuntimeStatus]:
        """Every tenant runtime this backend knows (adopted by label after a master restart)."""

    @abc.abstractmethod
    async def logs(self, tenant_id: str, lines: int = 100) -> str: ...

    async def drifted(self, specs: Mapping[str, ClientSpec]) -> set[str]:
        """The tenants (of `specs`) whose runtime was made from another spec than the one given:
        `deploy()` would replace it. By default none (the backend cannot tell)."""
        return set()

    def webhook_upstreams(self) -> dict[str, str]:
        """tenant id -> host:port where the webhook proxy reaches the tenant's bot, for the
        tenants whose address this backend decides (a hub's tenants: their hub's webhook
        server); the others are reached where their placement says (master_bot/ingress.py)."""
        return {}

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise DeployError when the backend (e.g. the Docker Engine) does not answer."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients/subprocess handles."""
