"""The master's services as one value: what the REST API (`master_bot/api/`) and the operators'
bot (`master_bot/operator/`) call. Built by the composition root, `master_bot/app.py`, which
nothing imports (checked by `make lint`, docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass

from master_bot.deps import Deps
from master_bot.fleet import Fleet
from master_bot.provision import Provisioner
from master_bot.reconciler import Reconciler
from master_bot.subscription import SubscriptionMonitor
from master_bot.upgrades import Upgrades


@dataclass(slots=True)
class Master:
    deps: Deps
    provisioner: Provisioner
    fleet: Fleet
    reconciler: Reconciler
    monitor: SubscriptionMonitor
    upgrades: Upgrades  # operator-driven fleet upgrades (master_bot/upgrades.py)
