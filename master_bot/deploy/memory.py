"""An in-memory DeployBackend: for the reconciler benchmark and fast unit tests."""

from __future__ import annotations

from master_bot.deploy.base import (
    ClientSpec,
    DeployBackend,
    DeployError,
    RuntimeState,
    RuntimeStatus,
)


class MemoryBackend(DeployBackend):
    name = "memory"

    def __init__(self) -> None:
        self.specs: dict[str, ClientSpec] = {}
        self.states: dict[str, RuntimeState] = {}
        self.restarts: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_deploys: set[str] = set()

    def _status(self, tenant_id: str) -> RuntimeStatus:
        state = self.states.get(tenant_id, RuntimeState.MISSING)
        return RuntimeStatus(tenant_id, state, restarts=self.restarts.get(tenant_id, 0))

    def crash(self, tenant_id: str) -> None:
        self.states[tenant_id] = RuntimeState.CRASHED

    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        self.calls.append(("deploy", spec.tenant_id))
        if spec.tenant_id in self.fail_deploys:
            raise DeployError(f"deploy of {spec.tenant_id} failed (injected)")
        if self.states.get(spec.tenant_id) in {RuntimeState.CRASHED, RuntimeState.STOPPED}:
            self.restarts[spec.tenant_id] = self.restarts.get(spec.tenant_id, 0) + 1
        self.specs[spec.tenant_id] = spec
        self.states[spec.tenant_id] = RuntimeState.RUNNING
        return self._status(spec.tenant_id)

    async def start(self, tenant_id: str) -> RuntimeStatus:
        self.calls.append(("start", tenant_id))
        if tenant_id not in self.specs:
            raise DeployError(f"{tenant_id} was never deployed")
        self.states[tenant_id] = RuntimeState.RUNNING
        return self._status(tenant_id)

    async def stop(self, tenant_id: str) -> RuntimeStatus:
        self.calls.append(("stop", tenant_id))
        if tenant_id in self.states:
            self.states[tenant_id] = RuntimeState.STOPPED
        return self._status(tenant_id)

    async def restart(self, tenant_id: str) -> RuntimeStatus:
        self.calls.append(("restart", tenant_id))
        if tenant_id not in self.specs:
            raise DeployError(f"{tenant_id} was never deployed")
        self.restarts[tenant_id] = self.restarts.get(tenant_id, 0) + 1
        self.states[tenant_id] = RuntimeState.RUNNING
        return self._status(tenant_id)

    async def remove(self, tenant_id: str) -> None:
        self.calls.append(("remove", tenant_id))
        self.specs.pop(tenant_id, None)
        self.states.pop(tenant_id, None)

    async def status(self, tenant_id: str) -> RuntimeStatus:
        return self._status(tenant_id)

    async def list(self) -> dict[str, RuntimeStatus]:
        return {tid: self._status(tid) for tid in self.states}

    async def logs(self, tenant_id: str, lines: int = 100) -> str:
        return ""

    async def ping(self) -> None:
        return None
