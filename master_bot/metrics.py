"""Prometheus metrics of the master, rendered in the text exposition format by hand.

`FAMILIES` is the registry: every metric the master exposes, with its type and help. The alert
rules in docs/prometheus/alerts.yml may only use these names (a test checks it). Counters live
in `Metrics` (they reset when the master restarts, as Prometheus expects); gauges are read at
scrape time (`Snapshot`) from the database, the deploy backend and the backups folder.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FAMILIES: dict[str, tuple[str, str]] = {
    "botfleet_tenants": ("gauge", "Tenants by status."),
    "botfleet_tenants_should_run": ("gauge", "Active tenants, whose bot should be running."),
    "botfleet_tenants_running": ("gauge", "Active tenants whose bot the backend reports running."),
    "botfleet_tenants_down": (
        "gauge",
        "Active tenants whose bot is not running (not counting ones an operation holds now).",
    ),
    "botfleet_deploy_backend_up": (
        "gauge",
        "1 when the deploy backend answered the last scrape, else 0.",
    ),
    "botfleet_deploys_total": ("counter", "Runtime operations done by the deploy backend."),
    "botfleet_failures_total": ("counter", "Failures by kind (provision, deploy, reminder, ...)."),
    "botfleet_alerts_total": (
        "counter",
        "Operator alerts raised, by kind (crash_loop, provision_failed, ...).",
    ),
    "botfleet_provisioned_total": ("counter", "Tenants provisioned to active."),
    "botfleet_reconcile_duration_seconds": ("summary", "Duration of reconciler passes."),
    "botfleet_reconcile_last_duration_seconds": ("gauge", "Duration of the last reconciler pass."),
    "botfleet_orders": ("gauge", "Sales orders by payment status (pending, paid, canceled, ...)."),
    "botfleet_orders_paid_undelivered": (
        "gauge",
        "Orders paid more than 15 minutes ago whose tenant is not provisioned/extended yet.",
    ),
    "botfleet_backup_last_success_timestamp_seconds": (
        "gauge",
        "Unix time of the newest whole-database backup in BACKUPS_DIR (0 = none).",
    ),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


def _number(value: float) -> str:
    """Integers without a fraction, other values exactly (`:g` would round timestamps)."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True, slots=True)
class FleetState:
    """Active tenants vs what the deploy backend runs (shared by /health and /metrics)."""

    should_run: int
    running: int
    down: Sequence[str]


@dataclass(slots=True)
class Snapshot:
    """What is read at scrape time; a part that could not be read is None (not rendered)."""

    tenants_by_status: Mapping[str, int]
    fleet: FleetState | None = None
    backend_up: bool | None = None
    orders_by_status: Mapping[str, int] | None = None
    orders_paid_undelivered: int | None = None
    backup_last_success: float | None = None


class Metrics:
    """Counters the master bumps. Also an alerter (`alert`), so alerts are counted by kind."""

    def __init__(self) -> None:
        self.deploys: dict[str, int] = defaultdict(int)  # by backend operation
        self.failures: dict[str, int] = defaultdict(int)  # by kind
        self.alerts: dict[str, int] = defaultdict(int)  # by alert kind
        self.provisioned = 0
        self.reconcile_passes = 0
        self.reconcile_seconds_sum = 0.0
        self.reconcile_last_seconds = 0.0

    def deployed(self, operation: str) -> None:
        self.deploys[operation] += 1

    def failed(self, kind: str) -> None:
        self.failures[kind] += 1

    def reconciled(self, seconds: float) -> None:
        self.reconcile_passes += 1
        self.reconcile_seconds_sum += seconds
        self.reconcile_last_seconds = seconds

    async def alert(self, kind: object, tenant_id: str | None, text: str) -> None:
        """The Alerter protocol (master_bot.alert): count the alert, nothing else."""
        self.alerts[str(getattr(kind, "value", kind))] += 1

    def render(self, snapshot: Snapshot | Mapping[str, int]) -> str:
        if not isinstance(snapshot, Snapshot):
            snapshot = Snapshot(tenants_by_status=snapshot)
        out: list[str] = []

        def family(name: str, samples: list[tuple[dict[str, str], float]]) -> None:
            kind, help_ = FAMILIES[name]
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{_labels(labels)} {_number(value)}")

        def by(label: str, values: Mapping[str, float]) -> list[tuple[dict[str, str], float]]:
            return [({label: k}, float(v)) for k, v in sorted(values.items())]

        family("botfleet_tenants", by("status", snapshot.tenants_by_status))
        if snapshot.fleet is not None:
            family("botfleet_tenants_should_run", [({}, float(snapshot.fleet.should_run))])
            family("botfleet_tenants_running", [({}, float(snapshot.fleet.running))])
            family("botfleet_tenants_down", [({}, float(len(snapshot.fleet.down)))])
        if snapshot.backend_up is not None:
            family("botfleet_deploy_backend_up", [({}, 1.0 if snapshot.backend_up else 0.0)])
        family("botfleet_deploys_total", by("operation", self.deploys))
        family("botfleet_failures_total", by("kind", self.failures))
        family("botfleet_alerts_total", by("kind", self.alerts))
        family("botfleet_provisioned_total", [({}, float(self.provisioned))])
        name = "botfleet_reconcile_duration_seconds"
        out.append(f"# HELP {name} {FAMILIES[name][1]}")
        out.append(f"# TYPE {name} {FAMILIES[name][0]}")
        out.append(f"{name}_sum {_number(self.reconcile_seconds_sum)}")
        out.append(f"{name}_count {self.reconcile_passes}")
        family("botfleet_reconcile_last_duration_seconds", [({}, self.reconcile_last_seconds)])
        if snapshot.orders_by_status is not None:
            family("botfleet_orders", by("status", snapshot.orders_by_status))
        if snapshot.orders_paid_undelivered is not None:
            family(
                "botfleet_orders_paid_undelivered",
                [({}, float(snapshot.orders_paid_undelivered))],
            )
        if snapshot.backup_last_success is not None:
            family(
                "botfleet_backup_last_success_timestamp_seconds",
                [({}, snapshot.backup_last_success)],
            )
        return "\n".join(out) + "\n"
