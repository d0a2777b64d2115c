"""Prometheus metrics of the master, with the ecosystem's library (`prometheus_client`).

`FAMILIES` names every metric the master exposes, with its type and help. The alert rules in
docs/prometheus/alerts.yml may only use these names (a test checks it). Counters, the reconcile
summary and its last-pass gauge are `prometheus_client` metrics in a registry of their own per
`Metrics` (several masters may share a test process; they reset when the master restarts, as
Prometheus expects); gauges read at scrape time (`Snapshot`: the database, the deploy backend,
the backups folder) come from a custom collector. `render` is the text exposition format
(`generate_latest`), without the `_created` series.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Summary,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `<counter>_created` series: not ours, and not in FAMILIES

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


def _family(name: str, samples: Mapping[str, float] | float, label: str = "") -> Metric:
    """A gauge family of `FAMILIES`: one sample, or one per label value (sorted)."""
    family = GaugeMetricFamily(name, FAMILIES[name][1], labels=[label] if label else None)
    if isinstance(samples, Mapping):
        for value, number in sorted(samples.items()):
            family.add_metric([value], float(number))
    else:
        family.add_metric([], float(samples))
    return family


class _Scrape(Collector):
    """The master's own metrics, then the gauges of one scrape's `Snapshot`."""

    def __init__(self, own: CollectorRegistry, snapshot: Snapshot) -> None:
        self.own = own
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield _family("botfleet_tenants", snap.tenants_by_status, "status")
        if snap.fleet is not None:
            yield _family("botfleet_tenants_should_run", snap.fleet.should_run)
            yield _family("botfleet_tenants_running", snap.fleet.running)
            yield _family("botfleet_tenants_down", len(snap.fleet.down))
        if snap.backend_up is not None:
            yield _family("botfleet_deploy_backend_up", 1.0 if snap.backend_up else 0.0)
        yield from self.own.collect()
        if snap.orders_by_status is not None:
            yield _family("botfleet_orders", snap.orders_by_status, "status")
        if snap.orders_paid_undelivered is not None:
            yield _family("botfleet_orders_paid_undelivered", snap.orders_paid_undelivered)
        if snap.backup_last_success is not None:
            yield _family(
                "botfleet_backup_last_success_timestamp_seconds", snap.backup_last_success
            )


def _base(name: str) -> str:
    """prometheus_client adds `_total` to a counter's name itself."""
    return name.removesuffix("_total")


class Metrics:
    """Counters the master bumps. Also an alerter (`alert`), so alerts are counted by kind."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry

        def counter(name: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(_base(name), FAMILIES[name][1], labels, registry=reg)

        self._deploys = counter("botfleet_deploys_total", ["operation"])
        self._failures = counter("botfleet_failures_total", ["kind"])
        self._alerts = counter("botfleet_alerts_total", ["kind"])
        self._provisioned = counter("botfleet_provisioned_total")
        self._provisioned_count = 0
        name = "botfleet_reconcile_duration_seconds"
        self._reconcile = Summary(name, FAMILIES[name][1], registry=reg)
        name = "botfleet_reconcile_last_duration_seconds"
        self._reconcile_last = Gauge(name, FAMILIES[name][1], registry=reg)
        # The same counts by label, for code and tests that read them.
        self.deploys: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.alerts: dict[str, int] = {}

    @property
    def provisioned(self) -> int:
        return self._provisioned_count

    @provisioned.setter
    def provisioned(self, value: int) -> None:
        """`metrics.provisioned += 1` (a counter only grows: a smaller value raises)."""
        self._provisioned.inc(value - self._provisioned_count)
        self._provisioned_count = value

    def deployed(self, operation: str) -> None:
        self._deploys.labels(operation=operation).inc()
        self.deploys[operation] = self.deploys.get(operation, 0) + 1

    def failed(self, kind: str) -> None:
        self._failures.labels(kind=kind).inc()
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def reconciled(self, seconds: float) -> None:
        self._reconcile.observe(seconds)
        self._reconcile_last.set(seconds)

    async def alert(self, kind: object, tenant_id: str | None, text: str) -> None:
        """The Alerter protocol (master_bot.alert): count the alert, nothing else."""
        label = str(getattr(kind, "value", kind))
        self._alerts.labels(kind=label).inc()
        self.alerts[label] = self.alerts.get(label, 0) + 1

    def render(self, snapshot: Snapshot | Mapping[str, int]) -> str:
        """The Prometheus text exposition of the master's metrics and one scrape's gauges."""
        if not isinstance(snapshot, Snapshot):
            snapshot = Snapshot(tenants_by_status=snapshot)
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Scrape(self.registry, snapshot))
        return generate_latest(scrape).decode()
