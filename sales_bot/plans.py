"""Plans on sale. The catalogue itself lives in `core.plans` (the master reads the same file to
enforce each plan's features); this module keeps the sales bot's imports and its price format.
"""

from __future__ import annotations

from decimal import Decimal

from core.plans import (
    DEFAULT_FILE,
    FEATURES,
    Catalog,
    Plan,
    PlansError,
    load_plans,
    parse_plans,
)

__all__ = [
    "DEFAULT_FILE",
    "FEATURES",
    "Catalog",
    "Plan",
    "PlansError",
    "format_rub",
    "load_plans",
    "parse_plans",
]


def format_rub(amount: Decimal) -> str:
    """`Decimal("2490.00")` -> `2 490 ₽`; kopecks only when there are some."""
    whole = amount.quantize(Decimal("0.01"))
    rubles = int(whole)
    kopecks = int((whole - rubles) * 100)
    text = f"{rubles:,}".replace(",", "\u00a0")
    return f"{text},{kopecks:02d}\u00a0₽" if kopecks else f"{text}\u00a0₽"
