"""Prometheus metrics of the master, rendered in the text exposition format by hand."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return "{" + body + "}"


class Metrics:
    """Counters the master bumps; tenants-by-status is read from the database at scrape time."""

    def __init__(self) -> None:
        self.deploys: dict[str, int] = defaultdict(int)  # by backend operation
        self.failures: dict[str, int] = defaultdict(int)  # by kind
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

    def render(self, tenants_by_status: Mapping[str, int]) -> str:
        out: list[str] = []

        def family(
            name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]
        ) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{_labels(labels)} {value:g}")

        family(
            "botfleet_tenants",
            "gauge",
            "Tenants by status.",
            [({"status": s}, float(n)) for s, n in sorted(tenants_by_status.items())],
        )
        family(
            "botfleet_deploys_total",
            "counter",
            "Runtime operations done by the deploy backend.",
            [({"operation": k}, float(v)) for k, v in sorted(self.deploys.items())],
        )
        family(
            "botfleet_failures_total",
            "counter",
            "Failures by kind (provision, deploy, reminder, ...).",
            [({"kind": k}, float(v)) for k, v in sorted(self.failures.items())],
        )
        family(
            "botfleet_provisioned_total",
            "counter",
            "Tenants provisioned to active.",
            [({}, float(self.provisioned))],
        )
        out.append("# HELP botfleet_reconcile_duration_seconds Duration of reconciler passes.")
        out.append("# TYPE botfleet_reconcile_duration_seconds summary")
        out.append(f"botfleet_reconcile_duration_seconds_sum {self.reconcile_seconds_sum:g}")
        out.append(f"botfleet_reconcile_duration_seconds_count {self.reconcile_passes}")
        family(
            "botfleet_reconcile_last_duration_seconds",
            "gauge",
            "Duration of the last reconciler pass.",
            [({}, self.reconcile_last_seconds)],
        )
        return "\n".join(out) + "\n"
