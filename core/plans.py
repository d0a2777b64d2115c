"""The plan catalogue: what each plan costs and which features it includes.

One file for the whole platform: the sales bot sells from it (prices, periods) and the master
reads the same file (`SALES_PLANS_FILE`, default the built-in `sales_bot/plans.json`) to give each
tenant's bot only the features of its plan (docs/architecture.md, "Master → client bot": `PLAN_FEATURES`).

Prices are `Decimal` rubles with kopecks; the amount of a payment always comes from here, never
from what a user typed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

# The built-in catalogue ships beside the sales bot (core and sales_bot are sibling packages).
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "sales_bot" / "plans.json"
FEATURES = ("booking", "reminders", "admin_panel", "broadcasts", "ai_assistant")
# What a tenant whose plan is not in the catalogue gets: the bot itself, nothing that costs the
# platform money or reaches every customer at once (no AI assistant, no broadcasts).
SAFEST_FEATURES = ("booking", "reminders", "admin_panel")
# Where a plan's tenants run unless an operator moves them (docs/scaling.md): a container of
# their own, or one of many tenants in a hub process.
PLACEMENTS = ("dedicated", "shared")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class PlansError(ValueError):
    """The plans file is missing or malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    title: dict[str, str]  # locale -> name
    price: Decimal  # rubles, two decimals
    period_days: int
    features: tuple[str, ...]
    placement: str = "dedicated"

    def name(self, locale: str) -> str:
        return self.title.get(locale) or self.title.get("ru") or self.id

    @property
    def ai_assistant(self) -> bool:
        return "ai_assistant" in self.features

    @property
    def monthly_price(self) -> Decimal:
        """The price of 30 days, rounded to kopecks (for comparing plans)."""
        return (self.price * 30 / self.period_days).quantize(Decimal("0.01"))


def _plan(raw: Any, where: str) -> Plan:
    if not isinstance(raw, dict):
        raise PlansError(f"{where}: a plan must be an object")
    plan_id = raw.get("id")
    if not isinstance(plan_id, str) or not _ID_RE.match(plan_id):
        raise PlansError(f"{where}: id must be 1-32 of a-z, 0-9, '_' or '-'")
    title = raw.get("title")
    if isinstance(title, str):
        title = {"ru": title}
    if (
        not isinstance(title, dict)
        or not title.get("ru")
        or not all(isinstance(v, str) for v in title.values())
    ):
        raise PlansError(f"{where}: title must be a string or {{'ru': ..., 'en': ...}}")
    price_raw = raw.get("price_rub")
    if not isinstance(price_raw, str | int) or isinstance(price_raw, bool):
        raise PlansError(f'{where}: price_rub must be a string like "990.00" (no floats)')
    try:
        price = Decimal(str(price_raw))
    except InvalidOperation:
        raise PlansError(f"{where}: price_rub {price_raw!r} is not a number") from None
    if not price.is_finite() or price <= 0 or price != price.quantize(Decimal("0.01")):
        raise PlansError(f"{where}: price_rub must be positive with at most two decimals")
    days = raw.get("period_days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3660:
        raise PlansError(f"{where}: period_days must be an integer 1..3660")
    features = raw.get("features", [])
    if not isinstance(features, list) or any(f not in FEATURES for f in features):
        raise PlansError(f"{where}: features must be a list of {', '.join(FEATURES)}")
    placement = raw.get("placement", "dedicated")
    if placement not in PLACEMENTS:
        raise PlansError(f"{where}: placement must be one of {', '.join(PLACEMENTS)}")
    return Plan(
        plan_id, dict(title), price.quantize(Decimal("0.01")), days, tuple(features), placement
    )


def parse_plans(text: str, where: str = "plans") -> tuple[Plan, ...]:
    try:
        data = json.loads(text, parse_float=lambda s: (_ for _ in ()).throw(PlansError(s)))
    except json.JSONDecodeError as exc:
        raise PlansError(f"{where}: not valid JSON ({exc})") from None
    except PlansError as exc:
        raise PlansError(f"{where}: prices must be strings, found the float {exc}") from None
    items = data.get("plans") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise PlansError(f'{where}: expected {{"plans": [ ... ]}} with at least one plan')
    plans = tuple(_plan(raw, f"{where}: plan #{i}") for i, raw in enumerate(items, start=1))
    ids = [p.id for p in plans]
    if len(set(ids)) != len(ids):
        raise PlansError(f"{where}: plan ids must be unique")
    return plans


def load_plans(path: str | Path = "") -> tuple[Plan, ...]:
    file = Path(path) if path else DEFAULT_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlansError(f"cannot read the plans file {file}: {exc.strerror}") from None
    return parse_plans(text, str(file))


class Catalog:
    """The plans by id, in the order they are shown."""

    def __init__(self, plans: tuple[Plan, ...]) -> None:
        self.plans = plans
        self._by_id = {p.id: p for p in plans}

    def get(self, plan_id: str) -> Plan | None:
        return self._by_id.get(plan_id)

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.plans)

    def placement(self, plan_id: str) -> str:
        """Where the plan's tenants run by default; a plan not in the catalogue: dedicated."""
        plan = self._by_id.get(plan_id)
        return "dedicated" if plan is None else plan.placement

    def features(self, plan_id: str) -> tuple[str, ...] | None:
        """The features of a plan, or None when the catalogue has no such plan."""
        plan = self._by_id.get(plan_id)
        return None if plan is None else plan.features


def default_catalog() -> Catalog:
    """The built-in catalogue (what the master uses unless told otherwise)."""
    return Catalog(load_plans())
